"""Assist: "what is the neighbourhood's average indoor temperature?".

The handler finds the task by its metric (id, name, or the words the entity
names use), picks the statistic (the mean unless another is asked for), and
answers with speech slots, which the response template in
``sentences/<language>/hearth.yaml`` turns into a sentence in the user's
language. Failures are spoken from the integration's translated exceptions.
"""

from __future__ import annotations

import re
from typing import Any

import voluptuous as vol
from homeassistant.helpers import config_validation as cv
from homeassistant.helpers import entity_registry as er
from homeassistant.helpers import intent
from homeassistant.helpers.translation import async_get_translations

from ..const import DOMAIN
from .const import INTENT_GET_NEIGHBOURHOOD
from .entity import metric_name
from .models import TaskSpec
from .runtime import NeighbourhoodConfigEntry
from .sensor import AGGREGATES
from .services import loaded_entries
from .units import display_precision

# Spoken or typed statistic names -> the sensor key that shows the statistic.
STATISTIC_ALIASES: dict[str, str] = {
    "mean": "mean",
    "average": "mean",
    "avg": "mean",
    "median": "p50",
    "p50": "p50",
    "middle": "p50",
    "stddev": "stddev",
    "standard deviation": "stddev",
    "spread": "stddev",
    "deviation": "stddev",
    "variance": "variance",
    "sum": "sum",
    "total": "sum",
    "contributors": "contributors",
    "count": "contributors",
    "homes": "contributors",
    "households": "contributors",
    "p10": "p10",
    "p25": "p25",
    "lower quartile": "p25",
    "p75": "p75",
    "upper quartile": "p75",
    "p90": "p90",
}
# Sensor key -> how to read it and which task statistic it needs (None: always there).
_AGGREGATES = {d.key: d for d in AGGREGATES}
DEFAULT_ORDER = ("mean", "p50", "sum", "contributors")


def _words(text: str) -> str:
    return " ".join(re.sub(r"[^0-9a-z]+", " ", text.lower()).split())


def _offers(spec: TaskSpec, key: str) -> bool:
    need = _AGGREGATES[key].stat
    return need is None or need in spec.stats


def find_task(
    entries: list[NeighbourhoodConfigEntry], metric: str
) -> tuple[NeighbourhoodConfigEntry, TaskSpec] | None:
    """The task whose id, metric or display name matches the spoken words."""
    wanted = _words(metric)
    for entry in entries:
        for spec in entry.runtime_data.coordinator.data.specs.values():
            names = {_words(spec.task_id), _words(spec.metric), _words(metric_name(spec.metric))}
            if wanted in names:
                return entry, spec
    return None


class GetNeighbourhoodIntent(intent.IntentHandler):
    """Answer with a statistic of a neighbourhood task's latest released round."""

    intent_type = INTENT_GET_NEIGHBOURHOOD
    description = (
        "Gets a neighbourhood statistic (mean, median, spread, number of contributing homes) "
        "that neighbouring homes computed together without revealing their own readings"
    )

    @property
    def slot_schema(self) -> dict[Any, Any]:
        return {
            vol.Required("metric"): cv.string,
            vol.Optional("statistic"): cv.string,
        }

    async def async_handle(self, intent_obj: intent.Intent) -> intent.IntentResponse:
        hass = intent_obj.hass
        slots = self.async_validate_slots(intent_obj.slots)
        metric = slots["metric"]["value"]
        asked = slots.get("statistic", {}).get("value")
        response = intent_obj.create_response()

        async def fail(key: str, **placeholders: str) -> intent.IntentResponse:
            texts = await async_get_translations(
                hass, intent_obj.language, "exceptions", {DOMAIN}
            )
            message = texts.get(f"component.{DOMAIN}.exceptions.{key}.message", key)
            response.async_set_error(
                intent.IntentResponseErrorCode.NO_VALID_TARGETS, message.format(**placeholders)
            )
            return response

        found = find_task(loaded_entries(hass), metric)
        if found is None:
            return await fail("intent_unknown_metric", metric=metric)
        entry, spec = found
        name = metric_name(spec.metric)
        if asked is None:
            key = next(k for k in DEFAULT_ORDER if _offers(spec, k))
        else:
            key = STATISTIC_ALIASES.get(_words(asked), "")
            if not key or not _offers(spec, key):
                return await fail("intent_unknown_statistic", statistic=asked, metric=name)
        result = entry.runtime_data.coordinator.data.released.get(spec.task_id)
        value = None if result is None else _AGGREGATES[key].value_fn(result)
        if result is None or value is None:
            return await fail("intent_no_result", metric=name)

        digits = 0 if key == "contributors" else display_precision(spec.resolution, 1)
        response.async_set_speech_slots(
            {
                "metric_name": name,
                "statistic": key,
                "value": f"{value:.{digits}f}",
                "unit": spec.unit if key not in ("contributors", "variance") else "",
                "contributors": result.contributors,
                "round": result.round,
            }
        )
        node_id = entry.runtime_data.coordinator.data.status.node_id
        unique_id = f"{node_id}_{spec.task_id}_{key}"
        entity_id = er.async_get(hass).async_get_entity_id("sensor", DOMAIN, unique_id)
        if entity_id is not None and (state := hass.states.get(entity_id)) is not None:
            response.async_set_states([state])
        return response
