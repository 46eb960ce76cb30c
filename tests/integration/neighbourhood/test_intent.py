"""Assist: the HearthGetNeighbourhood intent, directly and through the sentences file."""

from __future__ import annotations

import shutil
import statistics
from pathlib import Path

import pytest
from homeassistant.components import conversation
from homeassistant.core import Context, HomeAssistant
from homeassistant.helpers import intent
from homeassistant.setup import async_setup_component
from pytest_homeassistant_custom_component.common import MockConfigEntry

import custom_components.hearth.neighbourhood as neighbourhood
from custom_components.hearth.neighbourhood.const import INTENT_GET_NEIGHBOURHOOD

from .conftest import wait_for
from .fake_backend import FakeBackend

SENTENCES = Path(neighbourhood.__file__).parent / "sentences" / "en" / "hearth.yaml"
VALUES = [19.37, 21.52, 23.04]


async def _ask(hass: HomeAssistant, metric: str, statistic: str | None = None
               ) -> intent.IntentResponse:
    slots = {"metric": {"value": metric}}
    if statistic is not None:
        slots["statistic"] = {"value": statistic}
    return await intent.async_handle(hass, "test", INTENT_GET_NEIGHBOURHOOD, slots)


@pytest.fixture
async def released(hass: HomeAssistant, backend: FakeBackend, loaded: MockConfigEntry) -> None:
    backend.publish("indoor_temperature", 77, VALUES)
    await wait_for(hass, lambda: loaded.runtime_data.coordinator.data.released)


@pytest.mark.usefixtures("released")
async def test_answers_with_the_mean_by_default(hass: HomeAssistant) -> None:
    response = await _ask(hass, "indoor temperature")
    assert response.response_type is intent.IntentResponseType.ACTION_DONE
    assert response.speech_slots == {
        "metric_name": "Indoor temperature",
        "statistic": "mean",
        "value": f"{statistics.fmean(VALUES):.2f}",
        "unit": "°C",
        "contributors": 3,
        "round": 77,
    }
    assert [s.entity_id for s in response.matched_states] == [
        "sensor.neighbourhood_indoor_temperature_mean"
    ]


@pytest.mark.usefixtures("released")
@pytest.mark.parametrize(
    ("metric", "statistic", "key", "expected"),
    [
        ("Indoor_Temperature", "spread", "stddev", f"{statistics.pstdev(VALUES):.2f}"),
        ("indoor_temperature", "homes", "contributors", "3"),
        # Bins [18,20) [20,22) [22,24) hold one reading each: rank 1.5 is mid-[20,22).
        ("indoor temperature", "median", "p50", "21.00"),
    ],
)
async def test_other_statistics(
    hass: HomeAssistant, metric: str, statistic: str, key: str, expected: str
) -> None:
    response = await _ask(hass, metric, statistic)
    assert response.speech_slots["statistic"] == key
    assert response.speech_slots["value"] == expected


@pytest.mark.usefixtures("released")
@pytest.mark.parametrize(
    ("metric", "statistic", "message"),
    [
        ("rainfall", None, "The neighbourhood does not compute rainfall"),
        ("indoor temperature", "sum", "does not compute the sum of Indoor temperature"),
    ],
)
async def test_unknown_metric_or_statistic(
    hass: HomeAssistant, metric: str, statistic: str | None, message: str
) -> None:
    response = await _ask(hass, metric, statistic)
    assert response.response_type is intent.IntentResponseType.ERROR
    assert response.error_code is intent.IntentResponseErrorCode.NO_VALID_TARGETS
    assert message in response.speech["plain"]["speech"]


async def test_no_result_yet(hass: HomeAssistant, loaded: MockConfigEntry) -> None:
    response = await _ask(hass, "indoor temperature")
    assert response.response_type is intent.IntentResponseType.ERROR
    assert "no neighbourhood result for Indoor temperature yet" in (
        response.speech["plain"]["speech"]
    )


@pytest.mark.usefixtures("released")
@pytest.mark.parametrize(
    ("sentence", "answer"),
    [
        (
            "What is the neighbourhood's average indoor temperature?",
            f"The neighbourhood average indoor temperature is "
            f"{statistics.fmean(VALUES):.2f} °C, from 3 homes.",
        ),
        (
            "what's the median indoor temperature in the neighborhood",
            "The neighbourhood median indoor temperature is 21.00 °C, from 3 homes.",
        ),
        (
            "How many homes contribute to indoor temperature",
            "3 homes contributed to indoor temperature in the last released round.",
        ),
    ],
)
async def test_assist_with_the_shipped_sentences(
    hass: HomeAssistant, sentence: str, answer: str
) -> None:
    """The documented install step (copy the file to custom_sentences/en/) works."""
    target = Path(hass.config.path("custom_sentences", "en", "hearth.yaml"))
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(SENTENCES, target)
    assert await async_setup_component(hass, "homeassistant", {})
    assert await async_setup_component(hass, "conversation", {})
    result = await conversation.async_converse(hass, sentence, None, Context(), "en")
    response = result.response
    assert response.intent is not None and response.intent.intent_type == "HearthGetNeighbourhood"
    assert " ".join(response.speech["plain"]["speech"].split()) == answer
