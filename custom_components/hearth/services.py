"""Device actions: CO2 calibration and automatic baseline correction."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import voluptuous as vol
from homeassistant.config_entries import ConfigEntryState
from homeassistant.const import ATTR_DEVICE_ID
from homeassistant.core import HomeAssistant, ServiceCall, callback
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from homeassistant.helpers import config_validation as cv
from homeassistant.helpers import device_registry as dr

from .const import (
    ATTR_CONFIG_ENTRY_ID,
    ATTR_ENABLED,
    ATTR_TARGET_PPM,
    CONF_KIND,
    DOMAIN,
    SENSOR_KINDS,
    SERVICE_CALIBRATE_CO2,
    SERVICE_SET_AUTOMATIC_CALIBRATION,
)
from .coordinator import SensorConfigEntry, SensorCoordinator
from .drivers.errors import DriverError

# The range every supported sensor's output covers (the SCD4x accepts up to 40 000).
TARGET_PPM_RANGE = (300, 10_000)

_TARGET = {
    vol.Exclusive(ATTR_CONFIG_ENTRY_ID, "target"): cv.string,
    vol.Exclusive(ATTR_DEVICE_ID, "target"): cv.string,
}

CALIBRATE_CO2_SCHEMA = vol.All(
    vol.Schema(
        {
            **_TARGET,
            vol.Required(ATTR_TARGET_PPM): vol.All(vol.Coerce(int), vol.Range(*TARGET_PPM_RANGE)),
        }
    ),
    cv.has_at_least_one_key(ATTR_CONFIG_ENTRY_ID, ATTR_DEVICE_ID),
)
SET_AUTOMATIC_CALIBRATION_SCHEMA = vol.All(
    vol.Schema({**_TARGET, vol.Required(ATTR_ENABLED): cv.boolean}),
    cv.has_at_least_one_key(ATTR_CONFIG_ENTRY_ID, ATTR_DEVICE_ID),
)


def _entry_for_call(hass: HomeAssistant, call: ServiceCall) -> SensorConfigEntry:
    if (device_id := call.data.get(ATTR_DEVICE_ID)) is not None:
        device = dr.async_get(hass).async_get(device_id)
        entry_ids = device.config_entries if device is not None else set()
    else:
        entry_ids = {call.data[ATTR_CONFIG_ENTRY_ID]}
    for entry_id in entry_ids:
        entry = hass.config_entries.async_get_entry(entry_id)
        if entry is not None and entry.domain == DOMAIN:
            break
    else:
        raise ServiceValidationError(translation_domain=DOMAIN, translation_key="target_not_found")
    if entry.data.get(CONF_KIND) not in SENSOR_KINDS:
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="not_a_sensor",
            translation_placeholders={"title": entry.title},
        )
    if entry.state is not ConfigEntryState.LOADED:
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="entry_not_loaded",
            translation_placeholders={"title": entry.title},
        )
    return entry


def _co2_coordinator(hass: HomeAssistant, call: ServiceCall) -> SensorCoordinator:
    entry = _entry_for_call(hass, call)
    coordinator = entry.runtime_data
    if not coordinator.device.supports_co2_calibration:
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="co2_calibration_unsupported",
            translation_placeholders={"title": entry.title, "model": coordinator.device.name},
        )
    if not coordinator.device.connected:
        raise HomeAssistantError(
            translation_domain=DOMAIN,
            translation_key="device_unavailable",
            translation_placeholders={"title": entry.title},
        )
    return coordinator


async def _async_run(coordinator: SensorCoordinator, action: Callable[[], Awaitable[None]]) -> None:
    try:
        await action()
    except ValueError as err:
        # The sensor cannot take this target (MH-Z19B and S8 only know fresh air).
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="invalid_calibration",
            translation_placeholders={"error": str(err)},
        ) from err
    except (DriverError, OSError) as err:
        raise HomeAssistantError(
            translation_domain=DOMAIN,
            translation_key="action_failed",
            translation_placeholders={"title": coordinator.config_entry.title, "error": str(err)},
        ) from err


@callback
def async_setup_services(hass: HomeAssistant) -> None:
    """Register the integration's actions."""

    async def async_calibrate_co2(call: ServiceCall) -> None:
        coordinator = _co2_coordinator(hass, call)
        target: int = call.data[ATTR_TARGET_PPM]
        await _async_run(coordinator, lambda: coordinator.device.async_calibrate_co2(target))

    async def async_set_automatic_calibration(call: ServiceCall) -> None:
        coordinator = _co2_coordinator(hass, call)
        enabled: bool = call.data[ATTR_ENABLED]
        await _async_run(
            coordinator, lambda: coordinator.device.async_set_automatic_calibration(enabled)
        )

    hass.services.async_register(
        DOMAIN, SERVICE_CALIBRATE_CO2, async_calibrate_co2, schema=CALIBRATE_CO2_SCHEMA
    )
    hass.services.async_register(
        DOMAIN,
        SERVICE_SET_AUTOMATIC_CALIBRATION,
        async_set_automatic_calibration,
        schema=SET_AUTOMATIC_CALIBRATION_SCHEMA,
    )
