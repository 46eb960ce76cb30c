"""Report encoding: vector layout and the [1, q, q^2, one-hot] blocks."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from mpc_backend.arith import P
from mpc_backend.protocol import TaskSpec, encode_report, vector_layout, vector_length


def make_spec(**overrides: Any) -> TaskSpec:
    data: dict[str, Any] = {
        "metric": "street_pm25",
        "unit": "µg/m³",
        "low": 0,
        "high": 250,
        "resolution": 0.5,
        "stats": ["count", "sum", "mean", "variance", "stddev", "histogram", "quantiles"],
        "buckets": [12, 35.5, 55.5, 150.5],
        "period_s": 600,
        "min_contributors": 3,
    }
    data.update(overrides)
    return TaskSpec.from_dict(data)


@pytest.mark.parametrize(
    ("stats", "buckets", "layout"),
    [
        (["count"], [], {"count": (0, 1)}),
        (["sum"], [], {"count": (0, 1), "sum_q": (1, 2)}),
        (["count", "mean"], [], {"count": (0, 1), "sum_q": (1, 2)}),
        (["stddev"], [], {"count": (0, 1), "sum_q": (1, 2), "sum_q2": (2, 3)}),
        (["histogram"], [10, 20], {"count": (0, 1), "histogram": (1, 4)}),
        (
            ["quantiles", "variance"],
            [10, 20, 250],
            {"count": (0, 1), "sum_q": (1, 2), "sum_q2": (2, 3), "histogram": (3, 7)},
        ),
    ],
)
def test_layout_holds_only_what_the_stats_need(
    stats: list[str], buckets: list[float], layout: dict[str, tuple[int, int]]
) -> None:
    spec = make_spec(stats=stats, buckets=buckets)
    assert {k: (s.start, s.stop) for k, s in vector_layout(spec).items()} == layout
    assert vector_length(spec) == max(stop for _, stop in layout.values())


@pytest.mark.parametrize(
    ("value", "q", "bin_index"),
    [
        (0.0, 0, 0),  # low itself, first bin [0, 12)
        (11.7, 23, 0),
        (11.9, 24, 1),  # quantised to 12.0, the first edge: bins are [edge, next edge)
        (35.4, 71, 2),  # quantised to 35.5, the second edge
        (35.0, 70, 1),
        (100.2, 200, 3),
        (250.0, 500, 4),  # high itself lands in the last (closed) bin
    ],
)
def test_encode_report_blocks(value: float, q: int, bin_index: int) -> None:
    spec = make_spec()
    onehot = [0] * 5
    onehot[bin_index] = 1
    vec = encode_report(spec, value)
    assert vec.dtype == np.uint64
    assert vec.tolist() == [1, q, q * q, *onehot]


@given(st.floats(min_value=-20, max_value=50, allow_nan=False))
def test_encode_matches_rounding_to_the_grid(value: float) -> None:
    spec = make_spec(low=-20, high=50, resolution=0.1, buckets=[0, 18.5, 50])
    vec = encode_report(spec, value).tolist()
    q = round((value + 20) / 0.1)
    # Bin from the quantised value compared with the edges on the grid (200, 385, 700).
    expected_bin = sum(q >= e for e in (200, 385, 700))
    assert vec[:3] == [1, q, q * q]
    assert vec[3:] == [int(i == expected_bin) for i in range(4)]
    assert all(0 <= v < P for v in vec)


@pytest.mark.parametrize("value", [-0.01, 250.5, math.nan, math.inf, -math.inf])
def test_out_of_range_values_are_refused(value: float) -> None:
    with pytest.raises(ValueError, match=r"outside the task range \[0.0, 250.0\] of 'street_pm25'"):
        encode_report(make_spec(), value)


@pytest.mark.parametrize("value", ["12", True, None])
def test_non_numbers_are_refused(value: Any) -> None:
    with pytest.raises(ValueError, match="value must be a number"):
        encode_report(make_spec(), value)


def test_numpy_scalars_are_accepted() -> None:
    spec = make_spec()
    assert encode_report(spec, np.float32(35.0)).tolist() == encode_report(spec, 35).tolist()
