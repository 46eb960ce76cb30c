"""UART sensors through real pseudo-terminals: streams, faults, unplugging, duty cycles."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

import pytest
from homeassistant.config_entries import ConfigEntryState
from homeassistant.const import ATTR_DEVICE_CLASS, ATTR_UNIT_OF_MEASUREMENT, STATE_UNAVAILABLE
from homeassistant.core import Event, EventStateChangedData, HomeAssistant
from homeassistant.helpers import issue_registry as ir
from homeassistant.helpers.event import async_track_state_change_event
from homeassistant.setup import async_setup_component
from homeassistant.util import dt as dt_util
from pytest_homeassistant_custom_component.common import MockConfigEntry, async_fire_time_changed

from custom_components.hearth import coordinator as coordinator_module
from custom_components.hearth import device as device_module
from custom_components.hearth.const import DOMAIN
from custom_components.hearth.emulators.mhz19 import MHZ19BEmulator
from custom_components.hearth.emulators.pms5003 import PMS5003Emulator
from custom_components.hearth.emulators.sds011 import SDS011Emulator
from custom_components.hearth.emulators.senseair_s8 import (
    HR_ABC_PERIOD,
    SenseairS8Emulator,
)

from .conftest import PluggedPort, uart_entry, wait_for

LOGGER_NAME = "custom_components.hearth"
FRAME_INTERVAL = 0.02


def _state(hass: HomeAssistant, entity_id: str) -> str:
    state = hass.states.get(entity_id)
    return state.state if state is not None else "missing"


async def _setup(hass: HomeAssistant, entry: MockConfigEntry) -> None:
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.LOADED


async def _later(hass: HomeAssistant, seconds: float) -> None:
    """Fire Home Assistant's timers (backoff, duty cycle) as if `seconds` had passed."""
    async_fire_time_changed(hass, dt_util.utcnow() + timedelta(seconds=seconds))
    await asyncio.sleep(0)


async def test_pms5003_stream_survives_line_faults(hass: HomeAssistant, plugged) -> None:
    """Garbage, split frames and corrupted frames: states only ever show valid frames."""
    emulator = PMS5003Emulator(pm1=5.0, pm25=8.0, pm10=11.0, interval=FRAME_INTERVAL)
    port: PluggedPort = plugged(emulator)
    await port.plug()
    entry = uart_entry(hass, "pms5003", str(port.link))
    await _setup(hass, entry)

    pm25 = "sensor.pms5003_on_port_pm2_5"
    assert float(_state(hass, "sensor.pms5003_on_port_pm1")) == 5.0
    assert float(_state(hass, pm25)) == 8.0
    assert float(_state(hass, "sensor.pms5003_on_port_pm10")) == 11.0
    attributes = hass.states.get(pm25).attributes
    assert attributes[ATTR_DEVICE_CLASS] == "pm25"
    assert attributes[ATTR_UNIT_OF_MEASUREMENT] == "μg/m³"

    seen: list[str] = []

    def record(event: Event[EventStateChangedData]) -> None:
        if (new := event.data["new_state"]) is not None:
            seen.append(new.state)

    unsubscribe = async_track_state_change_event(hass, [pm25], record)
    # Noise that starts like a header, then frames split across reads, then corrupted ones.
    emulator.garbage_before_next(b"\x42\x4d\x00\x1c\xff\x00\x42")
    emulator.split_next(3)
    emulator.corrupt_next(4)
    emulator.pm25 = 30.0
    emulator.pm10 = 35.0
    await wait_for(lambda: _state(hass, pm25) == "30.0")
    unsubscribe()

    assert set(seen) <= {"8.0", "30.0"}
    device = entry.runtime_data.device
    assert device.transfer_errors >= 4  # each corrupted frame failed its checksum
    assert entry.runtime_data.last_update_success
    await hass.config_entries.async_unload(entry.entry_id)


async def test_unplug_and_replug(
    hass: HomeAssistant, plugged, caplog: pytest.LogCaptureFixture
) -> None:
    """Unplugged: unavailable, one error, a repair issue; re-plugged: back, one info."""
    emulator = SDS011Emulator(pm25=12.3, pm10=20.1, interval=FRAME_INTERVAL)
    port: PluggedPort = plugged(emulator)
    await port.plug()
    entry = uart_entry(hass, "sds011", str(port.link))
    await _setup(hass, entry)
    pm10 = "sensor.sds011_on_port_pm10"
    assert float(_state(hass, pm10)) == 20.1
    caplog.set_level(logging.INFO, logger=LOGGER_NAME)
    caplog.clear()
    issues = ir.async_get(hass)
    issue_id = f"device_node_{entry.entry_id}"

    await port.unplug()
    coordinator = entry.runtime_data
    await wait_for(lambda: coordinator.phase == "backoff")
    assert _state(hass, pm10) == STATE_UNAVAILABLE
    # The reconnect attempt after the first backoff finds the port missing.
    await _later(hass, 1.5)
    await wait_for(
        lambda: (
            issues.async_get_issue(DOMAIN, issue_id) is not None and coordinator.phase == "backoff"
        )
    )
    issue = issues.async_get_issue(DOMAIN, issue_id)
    assert issue.translation_key == "node_missing"
    assert issue.translation_placeholders == {"title": entry.title, "path": str(port.link)}
    assert _state(hass, pm10) == STATE_UNAVAILABLE

    emulator.pm10 = 44.4
    await port.plug()
    await _later(hass, 2.5)  # the second backoff is 2 s
    await wait_for(lambda: _state(hass, pm10) == "44.4")
    assert issues.async_get_issue(DOMAIN, issue_id) is None

    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1, [r.getMessage() for r in errors]
    recovered = [r for r in caplog.records if "receiving data again" in r.getMessage()]
    assert len(recovered) == 1
    await hass.config_entries.async_unload(entry.entry_id)


async def test_duty_cycle_sleeps_the_fan(hass: HomeAssistant, plugged) -> None:
    """Every 120 s: asleep until 30 s before the reading, then awake until it is taken."""
    emulator = PMS5003Emulator(pm25=10.0, interval=FRAME_INTERVAL)
    port: PluggedPort = plugged(emulator)
    await port.plug()
    entry = uart_entry(hass, "pms5003", str(port.link), options={"scan_interval": 120})
    await _setup(hass, entry)
    pm25 = "sensor.pms5003_on_port_pm2_5"
    assert float(_state(hass, pm25)) == 10.0

    coordinator = entry.runtime_data
    await wait_for(lambda: coordinator.phase == "sleeping")
    assert emulator.asleep
    emulator.pm25 = 25.0
    await asyncio.sleep(5 * FRAME_INTERVAL)
    assert float(_state(hass, pm25)) == 10.0  # asleep: no frames, no new state

    await _later(hass, 91)  # 120 s period - 30 s warm-up
    await wait_for(lambda: coordinator.phase == "warming_up")
    await wait_for(lambda: not emulator.asleep)
    await asyncio.sleep(5 * FRAME_INTERVAL)
    assert float(_state(hass, pm25)) == 10.0  # warming up: frames are ignored
    await _later(hass, 31)
    await wait_for(lambda: _state(hass, pm25) == "25.0")
    await wait_for(lambda: coordinator.phase == "sleeping")
    assert emulator.asleep
    await hass.config_entries.async_unload(entry.entry_id)


async def test_update_entity_while_the_fan_sleeps(
    hass: HomeAssistant, plugged, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """update_entity does not read beside the reader task: the sleeping fan sends no
    frame, so such a read could only time out and make the entities unavailable."""
    # Short, so a stray read fails within the test rather than after 10 s.
    monkeypatch.setattr(device_module, "SERIAL_READ_TIMEOUT_SECONDS", 0.3)
    assert await async_setup_component(hass, "homeassistant", {})
    emulator = PMS5003Emulator(pm25=10.0, interval=FRAME_INTERVAL)
    port: PluggedPort = plugged(emulator)
    await port.plug()
    entry = uart_entry(hass, "pms5003", str(port.link), options={"scan_interval": 120})
    await _setup(hass, entry)
    pm25 = "sensor.pms5003_on_port_pm2_5"
    coordinator = entry.runtime_data
    await wait_for(lambda: coordinator.phase == "sleeping")
    assert emulator.asleep

    reads = 0
    real_read = coordinator.device.async_read

    async def counting_read() -> dict[str, float]:
        nonlocal reads
        reads += 1
        return await real_read()

    monkeypatch.setattr(coordinator.device, "async_read", counting_read)
    caplog.set_level(logging.INFO, logger=LOGGER_NAME)
    caplog.clear()
    await hass.services.async_call(
        "homeassistant", "update_entity", {"entity_id": pm25}, blocking=True
    )
    await hass.async_block_till_done()

    assert reads == 0
    assert _state(hass, pm25) == "10.0"
    assert coordinator.last_update_success
    assert coordinator.phase == "sleeping"
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    await hass.config_entries.async_unload(entry.entry_id)


async def test_duty_cycle_after_unplugging(hass: HomeAssistant, plugged) -> None:
    """Unplugged while the fan sleeps: the wake-up fails, then the replugged sensor is
    woken and given its warm-up before the next reading is published."""
    emulator = PMS5003Emulator(pm25=10.0, interval=FRAME_INTERVAL)
    port: PluggedPort = plugged(emulator)
    await port.plug()
    entry = uart_entry(hass, "pms5003", str(port.link), options={"scan_interval": 120})
    await _setup(hass, entry)
    pm25 = "sensor.pms5003_on_port_pm2_5"
    coordinator = entry.runtime_data
    await wait_for(lambda: coordinator.phase == "sleeping")

    await port.unplug()
    await _later(hass, 91)
    await wait_for(lambda: coordinator.phase in ("backoff", "warming_up"))
    if coordinator.phase == "warming_up":
        # The wake-up command was written before the driver saw the pty close; the
        # loss then shows at the reading after the warm-up.
        await _later(hass, 31)
        await wait_for(lambda: coordinator.phase == "backoff")
    assert _state(hass, pm25) == STATE_UNAVAILABLE

    emulator.pm25 = 33.0
    await port.plug()  # a new device powers up awake
    await _later(hass, 2)  # the first backoff
    await wait_for(lambda: coordinator.phase == "warming_up")
    await asyncio.sleep(5 * FRAME_INTERVAL)
    assert _state(hass, pm25) == STATE_UNAVAILABLE  # frames arrive, but it is warming up
    await _later(hass, 31)
    await wait_for(lambda: _state(hass, pm25) == "33.0")
    await hass.config_entries.async_unload(entry.entry_id)


async def test_continuous_mode_throttles_publishing(
    hass: HomeAssistant, plugged, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Frames inside the publish interval are read (the stream stays in sync) but do not
    become state; the first frame after it does."""
    monkeypatch.setattr(coordinator_module, "CONTINUOUS_PUBLISH_SECONDS", 3600.0)
    emulator = PMS5003Emulator(pm25=10.0, interval=None)  # frames only when emitted
    port: PluggedPort = plugged(emulator)
    await port.plug()
    entry = uart_entry(hass, "pms5003", str(port.link))
    setup = hass.async_create_task(hass.config_entries.async_setup(entry.entry_id))
    # Setup wakes the fan (the sensor may be asleep from a duty cycle), then waits for
    # a frame: send it once the wake-up command has arrived.
    await wait_for(lambda: emulator.received != b"")
    await asyncio.sleep(0.05)
    emulator.emit()
    assert await setup
    pm25 = "sensor.pms5003_on_port_pm2_5"
    assert _state(hass, pm25) == "10.0"

    for value in (20.0, 30.0, 40.0):
        emulator.pm25 = value
        emulator.emit()
        await asyncio.sleep(0.05)
    assert _state(hass, pm25) == "10.0"

    monkeypatch.setattr(coordinator_module, "CONTINUOUS_PUBLISH_SECONDS", 0.0)
    emulator.pm25 = 50.0
    for _ in range(3):  # one may still be consumed by the loop's last throttled read
        emulator.emit()
        await asyncio.sleep(0.05)
    await wait_for(lambda: _state(hass, pm25) == "50.0")
    await hass.config_entries.async_unload(entry.entry_id)


async def test_mhz19b_polling(hass: HomeAssistant, plugged) -> None:
    """Polled every 60 s; a muted sensor goes unavailable and comes back."""
    emulator = MHZ19BEmulator(co2=650.0)
    port: PluggedPort = plugged(emulator)
    await port.plug()
    entry = uart_entry(hass, "mhz19b", str(port.link))
    await _setup(hass, entry)
    co2 = "sensor.mhz19b_on_port_carbon_dioxide"
    assert float(_state(hass, co2)) == 650
    assert entry.runtime_data.update_interval == timedelta(seconds=60)

    emulator.responding = False
    await _later(hass, 61)
    await wait_for(lambda: _state(hass, co2) == STATE_UNAVAILABLE)
    emulator.responding = True
    emulator.co2 = 700.0
    await _later(hass, 61)
    await wait_for(lambda: _state(hass, co2) == "700.0")
    await hass.config_entries.async_unload(entry.entry_id)


async def test_senseair_s8_polling(hass: HomeAssistant, plugged) -> None:
    """Modbus exchange; a meter-status error is a sensor error, not a value."""
    emulator = SenseairS8Emulator(co2=520.0)
    port: PluggedPort = plugged(emulator)
    await port.plug()
    entry = uart_entry(hass, "senseair_s8", str(port.link))
    await _setup(hass, entry)
    co2 = "sensor.senseair_s8_on_port_carbon_dioxide"
    assert float(_state(hass, co2)) == 520

    emulator.meter_status = 0x01  # fatal error
    await _later(hass, 61)
    await wait_for(lambda: _state(hass, co2) == STATE_UNAVAILABLE)
    emulator.meter_status = 0
    await _later(hass, 61)
    await wait_for(lambda: _state(hass, co2) == "520.0")
    assert emulator.holding[HR_ABC_PERIOD] == 180
    await hass.config_entries.async_unload(entry.entry_id)
