"""The "propose a task" form: its schema, the cheap checks, and the backend's refusals.

Pure functions, so the options flow only orchestrates. The checks mirror the
backend's TaskSpec validation (mpc_backend/protocol/task.py) where they are cheap
(range, grid, buckets, committee), so most mistakes show on their field before
anything is sent; whatever the backend still refuses is mapped onto the form too.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from typing import Any

import voluptuous as vol
from homeassistant.helpers.selector import (
    NumberSelector,
    NumberSelectorConfig,
    NumberSelectorMode,
    SelectSelector,
    SelectSelectorConfig,
    SelectSelectorMode,
    TextSelector,
)

from .errors import BackendRejected

CONF_METRIC = "metric"
CONF_UNIT = "unit"
CONF_LOW = "low"
CONF_HIGH = "high"
CONF_RESOLUTION = "resolution"
CONF_STATS = "stats"
CONF_BUCKETS = "buckets"
CONF_PERIOD_MINUTES = "period_minutes"
CONF_MIN_CONTRIBUTORS = "min_contributors"
CONF_COMMITTEE_SIZE = "committee_size"
CONF_THRESHOLD = "threshold"
CONF_DP_EPSILON = "dp_epsilon"

# What the backend's TaskSpec accepts, in its order.
STATS = ("count", "sum", "mean", "variance", "stddev", "histogram", "quantiles")
NEEDS_BUCKETS = frozenset({"histogram", "quantiles"})
MIN_CONTRIBUTORS = 3  # below this a released mean tells each contributor the other's reading
MAX_PERIOD_MINUTES = 7 * 24 * 60
MAX_BUCKET_EDGES = 256

# The backend names the spec field it refuses; this is the form field that holds it.
BACKEND_FIELDS = {
    "task_id": CONF_METRIC,
    "metric": CONF_METRIC,
    "unit": CONF_UNIT,
    "low": CONF_LOW,
    "high": CONF_HIGH,
    "resolution": CONF_RESOLUTION,
    "stats": CONF_STATS,
    "buckets": CONF_BUCKETS,
    "period_s": CONF_PERIOD_MINUTES,
    "min_contributors": CONF_MIN_CONTRIBUTORS,
    "k": CONF_COMMITTEE_SIZE,
    "t": CONF_THRESHOLD,
    "dp_epsilon": CONF_DP_EPSILON,
}


def _number(
    minimum: float | None = None, maximum: float | None = None, step: float | str = "any",
    unit: str | None = None,
) -> NumberSelector:
    config = NumberSelectorConfig(mode=NumberSelectorMode.BOX, step=step)
    if minimum is not None:
        config["min"] = minimum
    if maximum is not None:
        config["max"] = maximum
    if unit is not None:
        config["unit_of_measurement"] = unit
    return NumberSelector(config)


def propose_schema() -> vol.Schema:
    """The form; optional fields left empty let the backend choose (k, t) or add nothing."""
    return vol.Schema(
        {
            vol.Required(CONF_METRIC): TextSelector(),
            vol.Optional(CONF_UNIT): TextSelector(),
            vol.Required(CONF_LOW): _number(),
            vol.Required(CONF_HIGH): _number(),
            vol.Required(CONF_RESOLUTION, default=0.1): _number(minimum=0),
            vol.Required(CONF_STATS, default=["count", "mean"]): SelectSelector(
                SelectSelectorConfig(
                    options=list(STATS),
                    multiple=True,
                    mode=SelectSelectorMode.LIST,
                    translation_key=CONF_STATS,
                )
            ),
            vol.Optional(CONF_BUCKETS): TextSelector(),
            vol.Required(CONF_PERIOD_MINUTES, default=60): _number(
                1, MAX_PERIOD_MINUTES, 1, "min"
            ),
            vol.Required(CONF_MIN_CONTRIBUTORS, default=5): _number(MIN_CONTRIBUTORS, None, 1),
            vol.Optional(CONF_COMMITTEE_SIZE): _number(3, None, 1),
            vol.Optional(CONF_THRESHOLD): _number(1, None, 1),
            vol.Optional(CONF_DP_EPSILON): _number(0, None),
        }
    )


def _steps(span: float, resolution: float) -> int | None:
    """``span / resolution`` if it is a whole number of steps (float-tolerant, as the backend)."""
    ratio = span / resolution
    steps = round(ratio)
    return steps if abs(ratio - steps) <= 1e-9 * max(1, steps) else None


def parse_buckets(text: str) -> tuple[float, ...]:
    """``"18, 20,22"`` -> (18.0, 20.0, 22.0); ValueError if a part is not a finite number."""
    edges = tuple(float(part) for part in text.replace(";", ",").split(",") if part.strip())
    if not all(math.isfinite(edge) for edge in edges):
        raise ValueError("bucket edges must be finite")
    return edges


def _bucket_error(
    edges: tuple[float, ...], low: float, high: float, resolution: float | None
) -> str | None:
    if len(edges) > MAX_BUCKET_EDGES:
        return "buckets_too_many"
    if any(not low < edge <= high for edge in edges):
        return "buckets_outside_range"
    if any(b <= a for a, b in itertools.pairwise(edges)):
        return "buckets_not_increasing"
    if resolution is not None and any(_steps(e - low, resolution) is None for e in edges):
        return "buckets_off_grid"
    return None


def _range_errors(data: Mapping[str, Any], errors: dict[str, str]) -> float | None:
    """Checks low/high/resolution; the resolution if the buckets can be checked against it."""
    low, high, resolution = data[CONF_LOW], data[CONF_HIGH], data[CONF_RESOLUTION]
    if not low < high:
        errors[CONF_HIGH] = "high_not_above_low"
        return None
    if not resolution > 0:
        errors[CONF_RESOLUTION] = "resolution_positive"
        return None
    if _steps(high - low, resolution) is None:
        errors[CONF_RESOLUTION] = "resolution_off_grid"
        return None
    return float(resolution)


def _bucket_errors(
    data: Mapping[str, Any], stats: list[str], resolution: float | None, errors: dict[str, str]
) -> tuple[float, ...]:
    try:
        edges = parse_buckets(data.get(CONF_BUCKETS) or "")
    except ValueError:
        errors[CONF_BUCKETS] = "buckets_invalid"
        return ()
    if NEEDS_BUCKETS.intersection(stats) and not edges:
        errors[CONF_BUCKETS] = "buckets_required"
    elif edges and not NEEDS_BUCKETS.intersection(stats):
        errors[CONF_BUCKETS] = "buckets_unused"
    elif CONF_HIGH not in errors and (
        error := _bucket_error(edges, data[CONF_LOW], data[CONF_HIGH], resolution)
    ):
        errors[CONF_BUCKETS] = error
    return edges


def _committee_errors(data: Mapping[str, Any], errors: dict[str, str]) -> None:
    k, t = data.get(CONF_COMMITTEE_SIZE), data.get(CONF_THRESHOLD)
    if (k is None) != (t is None):
        errors[CONF_THRESHOLD if t is None else CONF_COMMITTEE_SIZE] = "committee_incomplete"
    elif k is not None and t is not None and k < 2 * t + 1:
        # t members may lie about a household's report; 2t + 1 seats outvote them.
        errors[CONF_THRESHOLD] = "threshold_too_high"


def spec_from_input(data: Mapping[str, Any]) -> tuple[dict[str, Any] | None, dict[str, str]]:
    """The task body for ``POST /tasks``, or None and the form's errors."""
    errors: dict[str, str] = {}
    stats = [s for s in STATS if s in data.get(CONF_STATS, ())]
    if not stats:
        errors[CONF_STATS] = "stats_required"
    resolution = _range_errors(data, errors)
    edges = _bucket_errors(data, stats, resolution, errors)
    _committee_errors(data, errors)
    for field in (CONF_MIN_CONTRIBUTORS, CONF_COMMITTEE_SIZE, CONF_THRESHOLD):
        value = data.get(field)
        if value is not None and value != int(value):  # counts of households: never rounded
            errors[field] = "whole_number"
    epsilon = data.get(CONF_DP_EPSILON)
    if epsilon is not None and not epsilon > 0:
        errors[CONF_DP_EPSILON] = "dp_epsilon_positive"
    if not str(data[CONF_METRIC]).strip():
        errors[CONF_METRIC] = "metric_required"
    if errors:
        return None, errors
    spec: dict[str, Any] = {
        "metric": str(data[CONF_METRIC]).strip(),
        "unit": str(data.get(CONF_UNIT) or "").strip(),
        "low": float(data[CONF_LOW]),
        "high": float(data[CONF_HIGH]),
        "resolution": float(data[CONF_RESOLUTION]),
        "stats": stats,
        "buckets": list(edges),
        "period_s": round(data[CONF_PERIOD_MINUTES] * 60),
        "min_contributors": int(data[CONF_MIN_CONTRIBUTORS]),
    }
    if epsilon is not None:
        spec["dp_epsilon"] = float(epsilon)
    if data.get(CONF_COMMITTEE_SIZE) is not None:
        spec["k"] = int(data[CONF_COMMITTEE_SIZE])
        spec["t"] = int(data[CONF_THRESHOLD])
    return spec, errors


def refusal_errors(err: BackendRejected, data: Mapping[str, Any]) -> dict[str, str]:
    """The form errors for a refused proposal (the flow adds the message placeholders)."""
    if err.code == "invalid_task":
        return {BACKEND_FIELDS.get(err.field or "", "base"): "invalid_task"}
    if err.code == "task_exists":
        return {CONF_METRIC: "task_exists"}
    if err.code == "too_few_members":
        given = data.get(CONF_COMMITTEE_SIZE) is not None
        return {CONF_COMMITTEE_SIZE if given else "base": "too_few_members"}
    if err.code == "too_many_tasks":
        return {"base": "too_many_tasks"}
    if err.code == "peer_error":  # a non-founder's node could not reach the founder
        return {"base": "founder_unreachable"}
    return {"base": "backend_refused"}
