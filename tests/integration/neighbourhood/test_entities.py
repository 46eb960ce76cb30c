"""Entities, the hearth_result event, unavailability and recovery, diagnostics."""

from __future__ import annotations

import logging
import statistics

import pytest
from homeassistant.components.sensor import SensorDeviceClass, SensorStateClass
from homeassistant.config_entries import SOURCE_REAUTH
from homeassistant.const import (
    ATTR_DEVICE_CLASS,
    ATTR_FRIENDLY_NAME,
    ATTR_UNIT_OF_MEASUREMENT,
    STATE_OFF,
    STATE_ON,
    STATE_UNAVAILABLE,
    STATE_UNKNOWN,
)
from homeassistant.core import Event, HomeAssistant
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers import entity_registry as er
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.hearth.const import DOMAIN
from custom_components.hearth.diagnostics import async_get_config_entry_diagnostics
from custom_components.hearth.neighbourhood import coordinator as coordinator_module
from custom_components.hearth.neighbourhood.client import BackendClient
from custom_components.hearth.neighbourhood.const import CONF_TOKEN, EVENT_RESULT

from .conftest import neighbourhood_entry, wait_for
from .fake_backend import POWER_TASK, TEMP_TASK, FakeBackend, plain_statistics

MEAN = "sensor.neighbourhood_indoor_temperature_mean"
STDDEV = "sensor.neighbourhood_indoor_temperature_standard_deviation"
MEDIAN = "sensor.neighbourhood_indoor_temperature_median"
CONTRIBUTORS = "sensor.neighbourhood_indoor_temperature_contributors"
LAST_ROUND = "sensor.neighbourhood_indoor_temperature_last_round"
CONNECTIVITY = "binary_sensor.neighbourhood_backend"
VALUES = [19.0, 21.5, 23.0, 22.0]


def value(hass: HomeAssistant, entity_id: str) -> float:
    return float(hass.states.get(entity_id).state)


async def test_sensors_show_the_latest_released_round(
    hass: HomeAssistant, backend: FakeBackend, entry: MockConfigEntry
) -> None:
    backend.publish("indoor_temperature", 100, VALUES)
    backend.publish("indoor_temperature", 101, [20.0], status="insufficient",
                    reason="1 contributor, 3 needed")
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()

    assert value(hass, MEAN) == pytest.approx(statistics.fmean(VALUES))
    assert value(hass, STDDEV) == pytest.approx(statistics.pstdev(VALUES))
    assert value(hass, CONTRIBUTORS) == len(VALUES)
    # Bins [-20,18) [18,20) [20,22) [22,24) [24,40] hold 0,1,1,2,0 readings; rank 0.5 * 4 = 2
    # ends bin [20,22), so the histogram median is its upper edge, 22.0.
    assert value(hass, MEDIAN) == pytest.approx(22.0)

    mean = hass.states.get(MEAN)
    assert mean.attributes[ATTR_FRIENDLY_NAME] == "Neighbourhood Indoor temperature mean"
    assert mean.attributes[ATTR_UNIT_OF_MEASUREMENT] == "°C"
    assert mean.attributes[ATTR_DEVICE_CLASS] == SensorDeviceClass.TEMPERATURE
    assert mean.attributes["state_class"] == SensorStateClass.MEASUREMENT
    stddev = hass.states.get(STDDEV)
    assert stddev.attributes[ATTR_DEVICE_CLASS] == SensorDeviceClass.TEMPERATURE_DELTA
    contributors = hass.states.get(CONTRIBUTORS)
    assert contributors.attributes["round"] == 100
    assert [b["count"] for b in contributors.attributes["histogram"]] == [0, 1, 1, 2, 0]

    last = hass.states.get(LAST_ROUND)
    assert last.state == "insufficient"
    assert last.attributes == last.attributes | {"round": 101,
                                                 "reason": "1 contributor, 3 needed"}
    assert hass.states.get("sensor.neighbourhood_members_online").state == "3"
    assert hass.states.get("sensor.neighbourhood_committee_seats").state == "1"
    assert hass.states.get(CONNECTIVITY).state == STATE_ON

    registry = er.async_get(hass)
    p10 = registry.async_get("sensor.neighbourhood_indoor_temperature_10th_percentile")
    assert p10 is not None and p10.disabled_by is er.RegistryEntryDisabler.INTEGRATION
    assert registry.async_get(MEAN).unique_id == f"{backend.node_id}_indoor_temperature_mean"
    device = dr.async_get(hass).async_get_device_by_identifier(
        (DOMAIN, f"neighbourhood_{backend.node_id}"), entry.entry_id
    )
    assert device is not None and device.name == "Neighbourhood"
    assert device.entry_type is dr.DeviceEntryType.SERVICE

    assert await hass.config_entries.async_unload(entry.entry_id)


async def test_a_task_without_results_is_unknown(
    hass: HomeAssistant, backend: FakeBackend, loaded: MockConfigEntry
) -> None:
    assert hass.states.get(MEAN).state == STATE_UNKNOWN
    assert hass.states.get(LAST_ROUND).state == STATE_UNKNOWN
    assert hass.states.get(CONTRIBUTORS).attributes.get("histogram") is None


async def test_units_and_classes_follow_the_task(
    hass: HomeAssistant, backend: FakeBackend, entry: MockConfigEntry
) -> None:
    backend.tasks = [dict(POWER_TASK)]
    readings = [420.0, 1310.0, 95.0, 2480.0]
    backend.publish("power", 7, readings)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    total = hass.states.get("sensor.neighbourhood_household_power_sum")
    assert float(total.state) == pytest.approx(sum(readings))
    assert total.attributes[ATTR_DEVICE_CLASS] == SensorDeviceClass.POWER
    assert total.attributes[ATTR_UNIT_OF_MEASUREMENT] == "W"
    mean = hass.states.get("sensor.neighbourhood_household_power_mean")
    assert float(mean.state) == pytest.approx(statistics.fmean(readings))
    assert hass.states.get("sensor.neighbourhood_household_power_median") is None


async def test_spread_and_totals_of_temperatures(
    hass: HomeAssistant, backend: FakeBackend, entry: MockConfigEntry
) -> None:
    """A spread of temperatures is a temperature delta; a sum of them is no temperature."""
    backend.tasks = [TEMP_TASK | {"stats": ["count", "sum", "mean", "variance", "stddev"],
                                  "buckets": []}]
    readings = [19.0, 22.0, 23.5]
    backend.publish("indoor_temperature", 8, readings)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    total = hass.states.get("sensor.neighbourhood_indoor_temperature_sum")
    assert float(total.state) == pytest.approx(sum(readings))
    assert total.attributes[ATTR_UNIT_OF_MEASUREMENT] == "°C"
    assert ATTR_DEVICE_CLASS not in total.attributes
    variance = er.async_get(hass).async_get("sensor.neighbourhood_indoor_temperature_variance")
    assert variance.disabled_by is er.RegistryEntryDisabler.INTEGRATION
    assert variance.unit_of_measurement == "(°C)²"


async def test_a_task_the_federation_dropped(
    hass: HomeAssistant, backend: FakeBackend, caplog: pytest.LogCaptureFixture
) -> None:
    """Options naming a task the backend no longer has: a warning, no contributor."""
    entry = neighbourhood_entry(hass, backend.url, backend.token, backend.node_id,
                                {"street_noise": "sensor.noise"})
    assert await hass.config_entries.async_setup(entry.entry_id)
    assert entry.runtime_data.contributors == {}
    assert "street_noise, which the neighbourhood no longer has" in caplog.text


async def test_new_rounds_arrive_by_stream_and_fire_the_event(
    hass: HomeAssistant, backend: FakeBackend, entry: MockConfigEntry
) -> None:
    """Only new released rounds are announced: not history, not insufficient rounds."""
    backend.publish("indoor_temperature", 100, VALUES)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await wait_for(hass, lambda: backend.open_streams)
    events: list[Event] = []
    hass.bus.async_listen(EVENT_RESULT, events.append)

    fresh = [18.5, 20.5, 24.5]
    backend.publish("indoor_temperature", 102, fresh)
    await wait_for(hass, lambda: hass.states.get(CONTRIBUTORS).state == "3")
    assert value(hass, MEAN) == pytest.approx(statistics.fmean(fresh))
    assert len(events) == 1
    data = events[0].data
    assert data["config_entry_id"] == entry.entry_id
    assert (data["task"], data["round"], data["contributors"]) == ("indoor_temperature", 102, 3)
    expected = plain_statistics(TEMP_TASK, fresh)
    assert data["statistics"]["mean"] == pytest.approx(statistics.fmean(fresh))
    assert data["statistics"]["histogram"] == expected["histogram"]
    assert data["statistics"]["quantiles"] == pytest.approx(expected["quantiles"])

    backend.publish("indoor_temperature", 103, [21.0], status="insufficient")
    await wait_for(hass, lambda: hass.states.get(LAST_ROUND).state == "insufficient")
    assert value(hass, MEAN) == pytest.approx(statistics.fmean(fresh))
    assert len(events) == 1


async def test_stream_survives_an_unexpected_error(
    hass: HomeAssistant,
    backend: FakeBackend,
    entry: MockConfigEntry,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """An error nobody foresaw is logged once and the stream is retried, not abandoned."""
    monkeypatch.setattr(coordinator_module, "STREAM_BACKOFF_MAX_S", 0.05)
    real_stream = BackendClient.stream_results
    calls = 0

    def flaky_stream(self: BackendClient, *args: object, **kwargs: object) -> object:
        nonlocal calls
        calls += 1
        if calls <= 2:
            raise RuntimeError("a bug")
        return real_stream(self, *args, **kwargs)

    monkeypatch.setattr(BackendClient, "stream_results", flaky_stream)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await wait_for(hass, lambda: backend.open_streams)
    assert calls == 3
    loud = [r for r in caplog.records
            if r.name == "custom_components.hearth" and r.levelno >= logging.WARNING]
    assert [r.getMessage() for r in loud] == ["Hearth result stream failed; retrying"]
    assert loud[0].exc_info is not None  # once, with the traceback

    backend.publish("indoor_temperature", 100, VALUES)
    await wait_for(hass, lambda: hass.states.get(CONTRIBUTORS).state == str(len(VALUES)))


async def test_tasks_added_later_get_sensors(
    hass: HomeAssistant, backend: FakeBackend, loaded: MockConfigEntry
) -> None:
    assert hass.states.get("sensor.neighbourhood_household_power_mean") is None
    backend.tasks.append(dict(POWER_TASK))
    await loaded.runtime_data.coordinator.async_refresh()
    await hass.async_block_till_done()
    assert hass.states.get("sensor.neighbourhood_household_power_mean").state == STATE_UNKNOWN


async def test_backend_down_and_back(
    hass: HomeAssistant,
    backend: FakeBackend,
    loaded: MockConfigEntry,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """One warning when it goes, one info when it is back; rounds missed are caught up."""
    backend.publish("indoor_temperature", 100, VALUES)
    await wait_for(hass, lambda: hass.states.get(CONTRIBUTORS).state == "4")
    events: list[Event] = []
    hass.bus.async_listen(EVENT_RESULT, events.append)
    coordinator = loaded.runtime_data.coordinator
    caplog.set_level(logging.INFO, "custom_components.hearth")

    await backend.stop()
    await wait_for(hass, lambda: hass.states.get(CONNECTIVITY).state == STATE_OFF)
    assert hass.states.get(MEAN).state == STATE_UNAVAILABLE
    assert hass.states.get(CONNECTIVITY).state == STATE_OFF  # off, not unavailable
    await coordinator.async_refresh()  # the poll fails too: no second warning
    await hass.async_block_till_done()
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "unavailable" in warnings[0].getMessage()

    backend.publish("indoor_temperature", 101, [20.0, 22.0, 21.0])  # released while away
    await backend.start()
    await wait_for(hass, lambda: hass.states.get(CONNECTIVITY).state == STATE_ON, timeout=15)
    await wait_for(hass, lambda: hass.states.get(CONTRIBUTORS).state == "3", timeout=15)
    assert value(hass, MEAN) == pytest.approx(21.0)
    assert [e.data["round"] for e in events] == [101]
    await coordinator.async_refresh()
    recovered = [r for r in caplog.records if "reachable again" in r.getMessage()]
    assert len(recovered) == 1 and recovered[0].levelno == logging.INFO
    assert len([r for r in caplog.records if r.levelno == logging.WARNING]) == 1


async def test_refused_token_starts_reauth(
    hass: HomeAssistant, backend: FakeBackend, loaded: MockConfigEntry
) -> None:
    backend.token = "rotated"
    # The stream, reconnecting after a backend restart, is refused as well.
    streams = backend.requests.count("GET /api/v1/results/stream")
    await backend.stop()
    await backend.start()
    await wait_for(hass, lambda: backend.requests.count("GET /api/v1/results/stream") > streams,
                   timeout=10)
    await loaded.runtime_data.coordinator.async_refresh()
    await hass.async_block_till_done()
    flows = hass.config_entries.flow.async_progress_by_handler(DOMAIN)
    assert [f["context"]["source"] for f in flows] == [SOURCE_REAUTH]
    assert hass.states.get(MEAN).state == STATE_UNAVAILABLE
    assert hass.states.get(CONNECTIVITY).state == STATE_OFF


async def test_leaving_the_federation_makes_sensors_unavailable(
    hass: HomeAssistant, backend: FakeBackend, loaded: MockConfigEntry
) -> None:
    backend.federation = None
    await loaded.runtime_data.coordinator.async_refresh()
    await hass.async_block_till_done()
    assert hass.states.get(MEAN).state == STATE_UNAVAILABLE
    assert hass.states.get(CONNECTIVITY).state == STATE_OFF


async def test_diagnostics_redact_the_token(
    hass: HomeAssistant, backend: FakeBackend, loaded: MockConfigEntry
) -> None:
    backend.publish("indoor_temperature", 100, VALUES)
    await wait_for(hass, lambda: hass.states.get(CONTRIBUTORS).state == "4")
    diagnostics = await async_get_config_entry_diagnostics(hass, loaded)
    assert diagnostics["entry"]["data"][CONF_TOKEN] == "**REDACTED**"
    assert backend.token not in repr(diagnostics)
    assert diagnostics["status"]["node_id"] == backend.node_id
    assert diagnostics["released"]["indoor_temperature"]["round"] == 100
    assert diagnostics["online"] is True
