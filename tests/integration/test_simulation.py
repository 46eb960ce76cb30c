"""The demo bus as a user meets it: real time, drifting values."""

from __future__ import annotations

import itertools
import time

from homeassistant.config_entries import SOURCE_USER, ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType

from custom_components.hearth.bus import bus_registry
from custom_components.hearth.const import DOMAIN
from custom_components.hearth.drivers.bme280 import CHIP_ID_BME280, REG_CHIP_ID
from custom_components.hearth.emulators.environment import INDOOR_WANDER
from custom_components.hearth.simulation import DEMO_ADDRESSES, SimulatedBus

from .conftest import SkippingClock


async def test_demo_bus_in_real_time(hass: HomeAssistant) -> None:
    """Without any test clock: the flow creates the demo bus and adds a BME280 from it."""
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"next_step_id": "simulated"}
    )
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"device": "76:bme280"}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()
    assert result["result"].state is ConfigEntryState.LOADED
    simulated = bus_registry(hass).simulated
    assert simulated is not None and simulated.clock is time.monotonic
    state = hass.states.get("sensor.bme280_0x76_on_simulated_bus_temperature")
    assert abs(float(state.state) - simulated.ambient.temperature) < 0.05


def test_room_drifts_slowly_within_bounds() -> None:
    """Over hours the room changes, never beyond the plausible indoor range."""
    clock = SkippingClock()
    simulated = SimulatedBus(clock=clock.now, sleep=clock.sleep)
    bus = simulated.bus
    temperatures = []
    for _ in range(48):
        clock.sleep(1800)
        assert bus.read_byte_data(DEMO_ADDRESSES["bme280"], REG_CHIP_ID) == CHIP_ID_BME280
        temperatures.append(simulated.ambient.temperature)
    wander = INDOOR_WANDER["temperature"]
    assert all(wander.low <= t <= wander.high for t in temperatures)
    assert max(temperatures) - min(temperatures) > 0.5  # it does move
    # Slowly: half an hour moves it far less than the whole range.
    steps = [abs(b - a) for a, b in itertools.pairwise(temperatures)]
    assert max(steps) < (wander.high - wander.low) / 2
