"""TaskSpec validation, task_id derivation and the JSON form."""

from __future__ import annotations

import json
import math
import re
from typing import Any

import pytest

from mpc_backend.arith import P
from mpc_backend.protocol import MAX_CONTRIBUTORS, TaskSpec, derive_task_id


def spec_dict(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "metric": "indoor_temperature",
        "unit": "°C",
        "low": -20,
        "high": 50,
        "resolution": 0.1,
        "stats": ["count", "mean", "stddev", "histogram", "quantiles"],
        "buckets": [0, 15, 18, 21, 24, 30],
        "period_s": 3600,
        "min_contributors": 5,
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def test_json_round_trip_derives_task_id_and_defaults() -> None:
    spec = TaskSpec.from_dict(spec_dict())
    assert spec.task_id == "indoor_temperature"
    assert (spec.k, spec.t, spec.dp_epsilon) == (3, 1, None)
    assert spec.levels == 700  # (50 - -20) / 0.1
    assert spec.bucket_steps == (200, 350, 380, 410, 440, 500)
    wire = json.loads(json.dumps(spec.to_dict()))
    assert wire["stats"] == ["count", "mean", "stddev", "histogram", "quantiles"]
    assert wire["buckets"] == [0.0, 15.0, 18.0, 21.0, 24.0, 30.0]
    assert TaskSpec.from_dict(wire) == spec
    assert hash(TaskSpec.from_dict(wire)) == hash(spec)


def test_given_task_id_is_kept() -> None:
    assert TaskSpec.from_dict(spec_dict(task_id="street_temp_v2")).task_id == "street_temp_v2"


@pytest.mark.parametrize(
    ("metric", "slug"),
    [
        ("indoor_temperature", "indoor_temperature"),
        ("Indoor Température (°C)", "indoor_temperature_c"),
        ("  PM2.5 -- street  ", "pm2_5_street"),
        ("x" * 80, "x" * 64),
    ],
)
def test_derive_task_id(metric: str, slug: str) -> None:
    assert derive_task_id(metric) == slug


def test_derive_task_id_refuses_names_without_letters() -> None:
    with pytest.raises(ValueError, match="give task_id explicitly"):
        derive_task_id("°°°")


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"low": 50, "high": 50}, r"low \(50.0\) must be less than high"),
        ({"low": "cold"}, "low must be a number"),
        ({"high": math.inf}, "high must be finite"),
        ({"resolution": 0}, "resolution must be > 0"),
        ({"resolution": 0.3}, "resolution 0.3 must divide the range"),
        ({"stats": []}, "stats must name at least one"),
        ({"stats": ["count", "median"]}, r"stats has unknown names \['median'\]"),
        ({"stats": ["mean", "mean"]}, "stats lists a statistic twice"),
        ({"stats": "mean"}, "stats must be a list"),
        ({"buckets": []}, "buckets .* are required for histogram and quantiles"),
        ({"stats": ["mean"]}, "buckets are only used by histogram and quantiles"),
        ({"buckets": [0, 18, 15]}, "buckets must be strictly increasing"),
        ({"buckets": [0, 15, 15]}, "buckets must be strictly increasing"),
        ({"buckets": [-20, 15]}, r"bucket edge -20.0 must lie within \(-20.0, 50.0\]"),
        ({"buckets": [15, 60]}, "bucket edge 60.0 must lie within"),
        ({"buckets": [15.05]}, "bucket edge 15.05 is not on the resolution grid"),
        ({"buckets": list(range(-19, 50)) * 4}, "at most 256 edges"),
        ({"period_s": 5}, "period_s must be 10 seconds to 7 days, got 5"),
        ({"period_s": 8 * 86400}, "period_s must be 10 seconds to 7 days"),
        ({"period_s": 60.5}, "period_s must be a whole number"),
        ({"min_contributors": 1}, "min_contributors must be at least 3, got 1"),
        ({"min_contributors": 2}, "at least 3, got 2: a released mean over two contributors "
                                  "tells each the other's reading; use at least 3"),
        ({"min_contributors": True}, "min_contributors must be a whole number"),
        ({"dp_epsilon": 0}, "dp_epsilon must be > 0"),
        ({"dp_epsilon": -1.0}, "dp_epsilon must be > 0"),
        ({"t": 0}, "t must be at least 1"),
        ({"k": 2, "t": 2}, r"k \(2\) must be at least 2t \+ 1 = 5"),
        ({"k": 4, "t": 2}, r"k \(4\) must be at least 2t \+ 1 = 5: with fewer seats"),
        ({"task_id": "Bad Id!"}, "task_id 'Bad Id!' must be 1-64 characters"),
        ({"metric": " ", "task_id": "t1"}, "metric must be a non-empty name"),
        ({"metric": ""}, "metric .. has no letters or digits to derive a task_id"),
        ({"unit": 3}, "unit must be a string"),
        ({"min_contributor": 3}, r"unknown fields \['min_contributor'\]"),
    ],
)
def test_invalid_specs_name_the_field(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        TaskSpec.from_dict(spec_dict(**overrides))


def test_three_contributors_is_the_least_accepted() -> None:
    assert TaskSpec.from_dict(spec_dict(min_contributors=3)).min_contributors == 3


def test_missing_fields_are_listed() -> None:
    data = spec_dict()
    del data["low"], data["period_s"]
    with pytest.raises(ValueError, match="missing required fields: low, period_s"):
        TaskSpec.from_dict(data)


def test_from_dict_refuses_non_objects() -> None:
    with pytest.raises(ValueError, match="must be a JSON object"):
        TaskSpec.from_dict(["metric"])  # type: ignore[arg-type]


def _squares_spec(levels: int, **extra: Any) -> TaskSpec:
    return TaskSpec.from_dict(
        spec_dict(low=0, high=levels, resolution=1, stats=["variance"], buckets=None, **extra)
    )


def test_overflow_boundary_for_sum_of_squares_without_noise() -> None:
    # Largest Q with MAX_CONTRIBUTORS * Q^2 < P // 2, computed independently of the module.
    limit = P // 2
    q_max = math.isqrt((limit - 1) // MAX_CONTRIBUTORS)
    assert MAX_CONTRIBUTORS * q_max**2 < limit <= MAX_CONTRIBUTORS * (q_max + 1) ** 2
    assert _squares_spec(q_max).levels == q_max
    with pytest.raises(ValueError, match="sum_q2 total could exceed") as err:
        _squares_spec(q_max + 1)
    suggested = float(re.search(r"resolution to at least ([0-9.e+-]+)", str(err.value))[1])
    needed = (q_max + 1) / q_max  # span / largest admissible step count
    assert needed <= suggested <= needed * 1.01


def test_fine_resolution_error_suggests_a_usable_resolution() -> None:
    with pytest.raises(ValueError, match="resolution 1e-06 over") as err:
        TaskSpec.from_dict(spec_dict(resolution=1e-6, buckets=None, stats=["stddev"]))
    suggested = float(re.search(r"resolution to at least ([0-9.e+-]+)", str(err.value))[1])
    q_max = math.isqrt((P // 2 - 1) // MAX_CONTRIBUTORS)
    assert 70 / q_max <= suggested <= 70 / q_max * 1.01
    # The mean alone only needs Q * MAX_CONTRIBUTORS < P / 2, so the same range is fine.
    assert TaskSpec.from_dict(spec_dict(resolution=1e-6, buckets=None, stats=["mean"])).levels == (
        70_000_000
    )


def test_noise_headroom_is_part_of_the_overflow_check() -> None:
    q_max = math.isqrt((P // 2 - 1) // MAX_CONTRIBUTORS)
    levels = q_max // 2
    assert _squares_spec(levels).levels == levels
    # epsilon 0.001 over 3 components: k * 50 tails of scale 3000 * Q^2 dwarf 100000 * Q^2.
    with pytest.raises(ValueError, match=r"plus DP noise.*or raise dp_epsilon"):
        _squares_spec(levels, dp_epsilon=0.001)
    with pytest.raises(ValueError, match="dp_epsilon 1e-16 is so small that the count noise"):
        TaskSpec.from_dict(spec_dict(dp_epsilon=1e-16))
