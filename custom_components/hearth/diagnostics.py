"""Diagnostics: what a bug report needs, without the adapter serial numbers in by-id paths."""

from __future__ import annotations

from typing import Any

from homeassistant.components.diagnostics import REDACTED, async_redact_data
from homeassistant.core import HomeAssistant

from .const import CONF_KIND, CONF_PORT
from .coordinator import SensorConfigEntry, StreamingCoordinator
from .neighbourhood import diagnostics as neighbourhood_diagnostics
from .neighbourhood.const import KIND_NEIGHBOURHOOD

# /dev/serial/by-id/ names carry the USB adapter's serial number; titles repeat it.
TO_REDACT = {CONF_PORT, "title", "unique_id"}


async def async_get_config_entry_diagnostics(
    hass: HomeAssistant, entry: SensorConfigEntry
) -> dict[str, Any]:
    """Entry settings, device state, counters and the latest values."""
    if entry.data.get(CONF_KIND) == KIND_NEIGHBOURHOOD:
        return await neighbourhood_diagnostics.async_get_config_entry_diagnostics(hass, entry)
    coordinator = entry.runtime_data
    device = coordinator.device
    interval = coordinator.update_interval
    last_exception = repr(coordinator.last_exception)
    if port := entry.data.get(CONF_PORT):
        last_exception = last_exception.replace(port, REDACTED)
    return {
        "entry": async_redact_data(
            {
                "title": entry.title,
                "unique_id": entry.unique_id,
                "data": dict(entry.data),
                "options": dict(entry.options),
            },
            TO_REDACT,
        ),
        "device": {
            "model": device.name,
            "manufacturer": device.manufacturer,
            "connected": device.connected,
            "streaming": device.streaming,
            "transfer_errors": device.transfer_errors,
        },
        "cleaning": {
            "implausible": coordinator.cleaner.stats.implausible,
            "outliers": coordinator.cleaner.stats.outliers,
            "filter_window": coordinator.cleaner.filter_window,
        },
        "coordinator": {
            "last_update_success": coordinator.last_update_success,
            "last_exception": last_exception,
            "update_interval_seconds": interval.total_seconds() if interval else None,
            **(
                {"phase": coordinator.phase, "duty_cycle_seconds": coordinator.duty_cycle_seconds}
                if isinstance(coordinator, StreamingCoordinator)
                else {}
            ),
        },
        "data": coordinator.data,
    }
