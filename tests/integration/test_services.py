"""The calibrate_co2 and set_automatic_calibration actions on SCD4x, MH-Z19B and Senseair S8."""

from __future__ import annotations

import asyncio
import errno
from datetime import timedelta

import pytest
import voluptuous as vol
from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from homeassistant.helpers import device_registry as dr
from homeassistant.setup import async_setup_component
from homeassistant.util import dt as dt_util
from pytest_homeassistant_custom_component.common import MockConfigEntry, async_fire_time_changed

from custom_components.hearth.const import DOMAIN
from custom_components.hearth.emulators.mhz19 import MHZ19BEmulator
from custom_components.hearth.emulators.senseair_s8 import (
    ACK_BACKGROUND_CALIBRATION,
    HR_ABC_PERIOD,
    HR_ACKNOWLEDGEMENT,
    SenseairS8Emulator,
)
from custom_components.hearth.simulation import DEMO_ADDRESSES, SimulatedBus

from .conftest import PluggedPort, i2c_entry, uart_entry, wait_for

SCD4X = DEMO_ADDRESSES["scd4x"]


async def _setup(hass: HomeAssistant, entry: MockConfigEntry) -> None:
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()


async def _call(hass: HomeAssistant, service: str, data: dict) -> None:
    await hass.services.async_call(DOMAIN, service, data, blocking=True)


async def test_scd4x_forced_recalibration(hass: HomeAssistant, simulated: SimulatedBus) -> None:
    """The chip's correction makes the next reading equal the reference."""
    simulated.ambient.co2 = 640.0
    entry = i2c_entry(hass, "scd4x", SCD4X)
    await _setup(hass, entry)
    chip = simulated.emulated.devices[SCD4X]
    chip.co2_bias = 75.0  # a drifted sensor
    simulated.sleep(5)
    async_fire_time_changed(hass, dt_util.utcnow() + timedelta(seconds=61))
    await hass.async_block_till_done(wait_background_tasks=True)
    co2 = "sensor.scd4x_0x62_carbon_dioxide"
    assert float(hass.states.get(co2).state) == 715

    await _call(hass, "calibrate_co2", {"config_entry_id": entry.entry_id, "target_ppm": 640})
    assert chip.co2_bias == 0
    simulated.sleep(5)
    async_fire_time_changed(hass, dt_util.utcnow() + timedelta(seconds=122))
    await hass.async_block_till_done(wait_background_tasks=True)
    assert float(hass.states.get(co2).state) == 640


async def test_scd4x_automatic_self_calibration_by_device(
    hass: HomeAssistant, simulated: SimulatedBus
) -> None:
    """Targeting the device works too; the setting is persisted to the chip's EEPROM."""
    entry = i2c_entry(hass, "scd4x", SCD4X)
    await _setup(hass, entry)
    chip = simulated.emulated.devices[SCD4X]
    assert chip.asc_enabled
    device = dr.async_get(hass).async_get_device_by_identifier(
        (DOMAIN, entry.entry_id), entry.entry_id
    )
    await _call(hass, "set_automatic_calibration", {"device_id": device.id, "enabled": False})
    assert not chip.asc_enabled
    assert chip.eeprom.asc_enabled is False
    assert chip.measuring  # periodic measurement was restarted


async def test_mhz19b_actions(hass: HomeAssistant, plugged) -> None:
    """Zero-point calibration to 400 ppm and ABC off; other targets are refused."""
    emulator = MHZ19BEmulator(co2=650.0)
    port: PluggedPort = plugged(emulator)
    await port.plug()
    entry = uart_entry(hass, "mhz19b", str(port.link))
    await _setup(hass, entry)

    with pytest.raises(ServiceValidationError) as refused:
        await _call(hass, "calibrate_co2", {"config_entry_id": entry.entry_id, "target_ppm": 800})
    assert refused.value.translation_key == "invalid_calibration"
    assert "400 ppm" in str(refused.value)
    assert emulator.offset == 0

    await _call(hass, "calibrate_co2", {"config_entry_id": entry.entry_id, "target_ppm": 400})
    await wait_for(lambda: emulator.offset == -250.0)
    await _call(
        hass, "set_automatic_calibration", {"config_entry_id": entry.entry_id, "enabled": False}
    )
    await wait_for(lambda: not emulator.abc_enabled)
    await hass.config_entries.async_unload(entry.entry_id)


@pytest.mark.parametrize(
    ("service", "data"),
    [("calibrate_co2", {"target_ppm": 400}), ("set_automatic_calibration", {"enabled": False})],
)
async def test_action_waiting_behind_a_failing_poll(
    hass: HomeAssistant, plugged, service: str, data: dict
) -> None:
    """The poll holding the port fails and closes it while the action waits its turn:
    the action fails with the translated error instead of crashing on a closed port."""
    emulator = MHZ19BEmulator(co2=650.0)
    port: PluggedPort = plugged(emulator)
    await port.plug()
    entry = uart_entry(hass, "mhz19b", str(port.link))
    await _setup(hass, entry)
    device = entry.runtime_data.device

    async with device._exchange:  # the poll's exchange
        action = hass.async_create_task(
            _call(hass, service, {"config_entry_id": entry.entry_id, **data})
        )
        await asyncio.sleep(0.05)
        assert not action.done()  # queued behind the poll
        await device.async_disconnect()  # what a poll that lost the port does
    with pytest.raises(HomeAssistantError) as failed:
        await action
    assert failed.value.translation_key == "action_failed"
    assert f"[Errno {errno.ENODEV}]" in failed.value.translation_placeholders["error"]
    assert (emulator.offset, emulator.abc_enabled) == (0, True)  # nothing reached the sensor
    await hass.config_entries.async_unload(entry.entry_id)


async def test_senseair_s8_actions(hass: HomeAssistant, plugged) -> None:
    """Background calibration is confirmed by the acknowledgement flag; ABC period 0 = off."""
    emulator = SenseairS8Emulator(co2=520.0)
    port: PluggedPort = plugged(emulator)
    await port.plug()
    entry = uart_entry(hass, "senseair_s8", str(port.link))
    await _setup(hass, entry)
    await _call(
        hass, "set_automatic_calibration", {"config_entry_id": entry.entry_id, "enabled": False}
    )
    assert emulator.holding[HR_ABC_PERIOD] == 0
    await _call(hass, "calibrate_co2", {"config_entry_id": entry.entry_id, "target_ppm": 400})
    assert emulator.offset == -120.0
    assert emulator.holding[HR_ACKNOWLEDGEMENT] & ACK_BACKGROUND_CALIBRATION
    await hass.config_entries.async_unload(entry.entry_id)


async def test_chip_without_co2_calibration(hass: HomeAssistant, simulated: SimulatedBus) -> None:
    """A BME280 has nothing to calibrate: a translated validation error names it."""
    entry = i2c_entry(hass, "bme280", DEMO_ADDRESSES["bme280"])
    await _setup(hass, entry)
    with pytest.raises(ServiceValidationError) as refused:
        await _call(hass, "calibrate_co2", {"config_entry_id": entry.entry_id, "target_ppm": 420})
    assert refused.value.translation_key == "co2_calibration_unsupported"
    assert refused.value.translation_placeholders == {"title": entry.title, "model": "BME280"}


async def test_unknown_and_unloaded_targets(hass: HomeAssistant, simulated: SimulatedBus) -> None:
    """A foreign entry id, an unknown device, an entry that is not loaded."""
    assert await async_setup_component(hass, DOMAIN, {})  # actions exist without entries
    with pytest.raises(ServiceValidationError) as missing:
        await _call(hass, "calibrate_co2", {"config_entry_id": "nope", "target_ppm": 420})
    assert missing.value.translation_key == "target_not_found"
    with pytest.raises(ServiceValidationError) as missing_device:
        await _call(hass, "set_automatic_calibration", {"device_id": "nope", "enabled": True})
    assert missing_device.value.translation_key == "target_not_found"

    other = MockConfigEntry(domain=DOMAIN, title="Street", data={"kind": "neighbourhood"})
    other.add_to_hass(hass)
    with pytest.raises(ServiceValidationError) as not_sensor:
        await _call(hass, "calibrate_co2", {"config_entry_id": other.entry_id, "target_ppm": 420})
    assert not_sensor.value.translation_key == "not_a_sensor"

    entry = i2c_entry(hass, "scd4x", SCD4X)
    with pytest.raises(ServiceValidationError) as unloaded:
        await _call(hass, "calibrate_co2", {"config_entry_id": entry.entry_id, "target_ppm": 420})
    assert unloaded.value.translation_key == "entry_not_loaded"
    assert entry.state is ConfigEntryState.NOT_LOADED


async def test_action_failure_is_translated(hass: HomeAssistant, simulated: SimulatedBus) -> None:
    """The chip vanishes between poll and action: a HomeAssistantError, not a traceback."""
    entry = i2c_entry(hass, "scd4x", SCD4X)
    await _setup(hass, entry)
    simulated.emulated.detach(SCD4X)
    with pytest.raises(HomeAssistantError) as failed:
        await _call(hass, "calibrate_co2", {"config_entry_id": entry.entry_id, "target_ppm": 420})
    assert failed.value.translation_key == "action_failed"
    # Now known to be disconnected: refused up front until it reads again.
    with pytest.raises(HomeAssistantError) as unavailable:
        await _call(hass, "calibrate_co2", {"config_entry_id": entry.entry_id, "target_ppm": 420})
    assert unavailable.value.translation_key == "device_unavailable"


@pytest.mark.parametrize(
    "data",
    [
        {"target_ppm": 420},  # no target
        {"config_entry_id": "x", "device_id": "y", "target_ppm": 420},  # two targets
        {"config_entry_id": "x", "target_ppm": 50},  # below any reference gas
    ],
)
async def test_schema_rejects(hass: HomeAssistant, simulated: SimulatedBus, data: dict) -> None:
    """Malformed calls never reach a sensor."""
    i2c_entry(hass, "bme280", DEMO_ADDRESSES["bme280"])
    assert await hass.config_entries.async_setup(
        hass.config_entries.async_entries(DOMAIN)[0].entry_id
    )
    with pytest.raises(vol.Invalid):
        await _call(hass, "calibrate_co2", data)
