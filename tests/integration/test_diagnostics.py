"""Diagnostics: useful for a bug report, without the adapter's serial number."""

from __future__ import annotations

from homeassistant.core import HomeAssistant
from pytest_homeassistant_custom_component.components.diagnostics import (
    get_diagnostics_for_config_entry,
)
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.hearth.emulators.mhz19 import MHZ19BEmulator
from custom_components.hearth.simulation import DEMO_ADDRESSES, SimulatedBus

from .conftest import PluggedPort, i2c_entry, uart_entry


async def test_uart_diagnostics_redact_the_port(
    hass: HomeAssistant, hass_client: ClientSessionGenerator, plugged
) -> None:
    """The by-id path (and the title derived from it) never appear."""
    port: PluggedPort = plugged(MHZ19BEmulator(co2=900.0))
    await port.plug()
    entry = uart_entry(hass, "mhz19b", str(port.link))
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()

    diagnostics = await get_diagnostics_for_config_entry(hass, hass_client, entry)
    assert str(port.link) not in str(diagnostics)
    assert diagnostics["entry"] == {
        "title": "**REDACTED**",
        "unique_id": "**REDACTED**",
        "data": {"kind": "uart", "port": "**REDACTED**", "model": "mhz19b"},
        "options": {},
    }
    assert diagnostics["device"] == {
        "model": "MH-Z19B",
        "manufacturer": "Winsen",
        "connected": True,
        "streaming": False,
        "transfer_errors": 0,
    }
    assert diagnostics["data"] == {"co2": 900.0}
    assert diagnostics["coordinator"]["last_update_success"] is True
    assert diagnostics["coordinator"]["update_interval_seconds"] == 60
    await hass.config_entries.async_unload(entry.entry_id)


async def test_diagnostics_after_a_failure(
    hass: HomeAssistant, hass_client: ClientSessionGenerator, simulated: SimulatedBus
) -> None:
    """The last error and the cleaning counters are included."""
    entry = i2c_entry(hass, "bh1750", DEMO_ADDRESSES["bh1750"], options={"outlier_filter": True})
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    simulated.emulated.detach(DEMO_ADDRESSES["bh1750"])
    await entry.runtime_data.async_refresh()

    diagnostics = await get_diagnostics_for_config_entry(hass, hass_client, entry)
    assert diagnostics["entry"]["data"]["address"] == 0x23
    assert diagnostics["device"]["connected"] is False
    assert diagnostics["device"]["transfer_errors"] == 1
    assert diagnostics["cleaning"] == {"implausible": 0, "outliers": 0, "filter_window": 5}
    assert diagnostics["coordinator"]["last_update_success"] is False
    assert "no_ack" in diagnostics["coordinator"]["last_exception"]
