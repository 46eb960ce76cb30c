"""The contributor: one mean of the period's valid states per round, sent before it ends."""

from __future__ import annotations

import logging
from datetime import datetime

import pytest
from freezegun.api import FrozenDateTimeFactory
from homeassistant.const import (
    ATTR_DEVICE_CLASS,
    ATTR_UNIT_OF_MEASUREMENT,
    STATE_UNAVAILABLE,
    STATE_UNKNOWN,
)
from homeassistant.core import HomeAssistant
from homeassistant.helpers.aiohttp_client import async_get_clientsession
from homeassistant.util import dt as dt_util
from pytest_homeassistant_custom_component.common import async_fire_time_changed

from custom_components.hearth.neighbourhood.client import BackendClient
from custom_components.hearth.neighbourhood.contributor import (
    NoValidState,
    TaskContributor,
    send_margin,
)
from custom_components.hearth.neighbourhood.models import TaskSpec

from .fake_backend import TEMP_TASK, FakeBackend

SOURCE = "sensor.living_room_temperature"
CELSIUS = {ATTR_UNIT_OF_MEASUREMENT: "°C", ATTR_DEVICE_CLASS: "temperature"}
FAHRENHEIT = {ATTR_UNIT_OF_MEASUREMENT: "°F", ATTR_DEVICE_CLASS: "temperature"}
PERIOD = TEMP_TASK["period_s"]
ROUND = 29_000_000  # a round of the 60 s task, in 2025


def at(round_id: int, offset_s: float) -> datetime:
    return dt_util.utc_from_timestamp(round_id * PERIOD + offset_s)


def send_time(round_id: int) -> datetime:
    return at(round_id, PERIOD - send_margin(PERIOD))


async def _advance(hass: HomeAssistant, freezer: FrozenDateTimeFactory, when: datetime) -> None:
    freezer.move_to(when)
    async_fire_time_changed(hass, when)
    await hass.async_block_till_done()


@pytest.fixture
async def contributor(hass: HomeAssistant, backend: FakeBackend) -> TaskContributor:
    client = BackendClient(async_get_clientsession(hass), backend.url, backend.token)
    return TaskContributor(hass, client, TaskSpec.from_json(TEMP_TASK), SOURCE)


async def test_sends_the_mean_of_the_rounds_valid_states(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    backend: FakeBackend,
    contributor: TaskContributor,
) -> None:
    """The state in force at the start counts, then every valid change, converted to °C."""
    freezer.move_to(at(ROUND, 5))
    hass.states.async_set(SOURCE, "20.0", CELSIUS)
    stop = contributor.start()
    for state, attributes in (
        ("21.0", CELSIUS),
        (STATE_UNAVAILABLE, CELSIUS),
        (STATE_UNKNOWN, CELSIUS),
        ("not a number", CELSIUS),
        ("nan", CELSIUS),
        ("75.2", FAHRENHEIT),  # 24.0 °C
        ("55", {ATTR_UNIT_OF_MEASUREMENT: "%", ATTR_DEVICE_CLASS: "humidity"}),
        ("22.0", CELSIUS),
    ):
        hass.states.async_set(SOURCE, state, attributes)
    await hass.async_block_till_done()
    assert backend.readings == []  # nothing before the round's send time

    await _advance(hass, freezer, send_time(ROUND))
    assert len(backend.readings) == 1
    sent = backend.readings[0]
    assert sent["round"] == ROUND
    assert sent["value"] == pytest.approx((20.0 + 21.0 + 24.0 + 22.0) / 4)
    stop()


async def test_attribute_only_changes_are_not_new_samples(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    backend: FakeBackend,
    contributor: TaskContributor,
) -> None:
    """A state re-written with new attributes is the same reading, not another sample."""
    freezer.move_to(at(ROUND, 5))
    hass.states.async_set(SOURCE, "20.0", CELSIUS)
    stop = contributor.start()
    for battery in (90, 80, 70):  # attribute updates only
        hass.states.async_set(SOURCE, "20.0", {**CELSIUS, "battery": battery})
    hass.states.async_set(SOURCE, "30.0", CELSIUS)
    await _advance(hass, freezer, send_time(ROUND))
    assert [r["value"] for r in backend.readings] == [pytest.approx((20.0 + 30.0) / 2)]
    stop()


async def test_a_round_without_valid_states_sends_nothing(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    backend: FakeBackend,
    contributor: TaskContributor,
) -> None:
    freezer.move_to(at(ROUND, 1))
    hass.states.async_set(SOURCE, STATE_UNAVAILABLE, CELSIUS)
    stop = contributor.start()
    hass.states.async_set(SOURCE, STATE_UNKNOWN, CELSIUS)
    await _advance(hass, freezer, send_time(ROUND))
    assert backend.readings == []

    # The next round starts from the state in force (still unknown), then one valid change.
    await _advance(hass, freezer, at(ROUND + 1, 10))
    hass.states.async_set(SOURCE, "19.5", CELSIUS)
    await _advance(hass, freezer, send_time(ROUND + 1))
    assert backend.readings == [
        {"task": "indoor_temperature", "value": 19.5, "round": ROUND + 1}
    ]

    # A round where the sensor simply keeps its value still contributes that value.
    await _advance(hass, freezer, send_time(ROUND + 2))
    assert [r["round"] for r in backend.readings] == [ROUND + 1, ROUND + 2]
    assert backend.readings[-1]["value"] == 19.5
    stop()


async def test_mean_is_clipped_to_the_task_range(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    backend: FakeBackend,
    contributor: TaskContributor,
) -> None:
    """The backend only encodes values in [low, high]; an outlier counts as the limit."""
    freezer.move_to(at(ROUND, 1))
    hass.states.async_set(SOURCE, "85.0", CELSIUS)
    stop = contributor.start()
    await _advance(hass, freezer, send_time(ROUND))
    assert backend.readings[0]["value"] == TEMP_TASK["high"]
    stop()


async def test_starting_inside_the_send_margin_waits_for_the_next_round(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    backend: FakeBackend,
    contributor: TaskContributor,
) -> None:
    freezer.move_to(at(ROUND, PERIOD - 1))
    hass.states.async_set(SOURCE, "20.0", CELSIUS)
    stop = contributor.start()
    await _advance(hass, freezer, at(ROUND + 1, 0.5))
    assert backend.readings == []
    await _advance(hass, freezer, send_time(ROUND + 1))
    assert [(r["round"], r["value"]) for r in backend.readings] == [(ROUND + 1, 20.0)]
    stop()


async def test_contribute_now_replaces_the_rounds_mean(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    backend: FakeBackend,
    contributor: TaskContributor,
) -> None:
    """After an explicit contribution the scheduled one for that round is skipped."""
    freezer.move_to(at(ROUND, 1))
    hass.states.async_set(SOURCE, "20.0", CELSIUS)
    stop = contributor.start()
    hass.states.async_set(SOURCE, "23.0", CELSIUS)
    receipt = await contributor.contribute_now()
    assert (receipt.task, receipt.round, receipt.duplicate) == ("indoor_temperature", ROUND, False)
    await _advance(hass, freezer, send_time(ROUND))
    assert [(r["round"], r["value"]) for r in backend.readings] == [(ROUND, 23.0)]

    hass.states.async_set(SOURCE, STATE_UNAVAILABLE, CELSIUS)
    with pytest.raises(NoValidState):
        await contributor.contribute_now()
    stop()


async def test_stop_ends_collection_and_sending(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    backend: FakeBackend,
    contributor: TaskContributor,
) -> None:
    freezer.move_to(at(ROUND, 1))
    hass.states.async_set(SOURCE, "20.0", CELSIUS)
    contributor.start()()
    hass.states.async_set(SOURCE, "21.0", CELSIUS)
    await _advance(hass, freezer, send_time(ROUND))
    assert contributor.samples == [20.0]
    assert backend.readings == []


async def test_a_failed_send_loses_only_that_round(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    backend: FakeBackend,
    contributor: TaskContributor,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Backend down: nothing raised (the coordinator warns). Backend refusing: a warning."""
    freezer.move_to(at(ROUND, 1))
    hass.states.async_set(SOURCE, "21.0", CELSIUS)
    stop = contributor.start()
    await backend.stop()
    await _advance(hass, freezer, send_time(ROUND))
    assert "refused" not in caplog.text

    await backend.start()
    backend.spec("indoor_temperature")["high"] = 20.0
    await _advance(hass, freezer, send_time(ROUND + 1))
    assert backend.readings == []
    assert "refused this home's indoor_temperature reading for round" in caplog.text
    assert "outside the task range" in caplog.text

    backend.spec("indoor_temperature")["high"] = 40.0
    await _advance(hass, freezer, send_time(ROUND + 2))
    assert [(r["round"], r["value"]) for r in backend.readings] == [(ROUND + 2, 21.0)]
    stop()


async def test_a_lasting_refusal_warns_once(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    backend: FakeBackend,
    contributor: TaskContributor,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The same refusal every period: one warning; again after a reading got through."""
    caplog.set_level(logging.DEBUG, "custom_components.hearth")
    freezer.move_to(at(ROUND, 1))
    hass.states.async_set(SOURCE, "21.0", CELSIUS)
    stop = contributor.start()

    def refusals(level: int) -> list[str]:
        return [r.getMessage() for r in caplog.records
                if r.levelno == level and "refused this home's" in r.getMessage()]

    backend.spec("indoor_temperature")["high"] = 20.0
    for round_id in range(ROUND, ROUND + 3):
        await _advance(hass, freezer, send_time(round_id))
    assert backend.readings == []
    assert len(refusals(logging.WARNING)) == 1
    assert f"round {ROUND}:" in refusals(logging.WARNING)[0]
    assert len(refusals(logging.DEBUG)) == 2

    backend.spec("indoor_temperature")["high"] = 40.0
    await _advance(hass, freezer, send_time(ROUND + 3))
    assert [r["round"] for r in backend.readings] == [ROUND + 3]
    backend.spec("indoor_temperature")["high"] = 20.0
    await _advance(hass, freezer, send_time(ROUND + 4))
    assert len(refusals(logging.WARNING)) == 2
    assert f"round {ROUND + 4}:" in refusals(logging.WARNING)[1]
    stop()


async def test_missing_entity_or_refused_token_send_nothing(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    backend: FakeBackend,
    contributor: TaskContributor,
) -> None:
    """A source entity that does not exist yet; then a token the backend no longer takes
    (the coordinator starts reauth; the contributor just loses the round)."""
    freezer.move_to(at(ROUND, 1))
    stop = contributor.start()
    await _advance(hass, freezer, send_time(ROUND))
    with pytest.raises(NoValidState):
        await contributor.contribute_now()

    hass.states.async_set(SOURCE, "21.0", CELSIUS)
    backend.token = "rotated"
    await _advance(hass, freezer, send_time(ROUND + 1))
    assert backend.readings == []
    assert contributor.samples == [21.0]  # the next round goes on collecting
    stop()
