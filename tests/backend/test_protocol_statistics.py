"""Decoding aggregates, checked against plaintext statistics computed with numpy."""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mpc_backend.arith import (
    FieldRNG,
    P,
    field_add,
    field_sum_rows,
    shamir_reconstruct,
    shamir_share,
)
from mpc_backend.protocol import (
    TaskSpec,
    component_scales,
    decode_aggregate,
    encode_report,
    noise_vector,
    to_field,
    vector_layout,
)

ALL_STATS = ["count", "sum", "mean", "variance", "stddev", "histogram", "quantiles"]
PERCENTILES = {
    "p10": Fraction(1, 10),
    "p25": Fraction(1, 4),
    "p50": Fraction(1, 2),
    "p75": Fraction(3, 4),
    "p90": Fraction(9, 10),
}


def make_spec(**overrides: Any) -> TaskSpec:
    data: dict[str, Any] = {
        "metric": "indoor_temperature",
        "low": -20,
        "high": 50,
        "resolution": 0.1,
        "stats": ALL_STATS,
        "buckets": [0, 15, 18, 19.5, 21, 24, 30, 50],
        "period_s": 3600,
        "min_contributors": 3,
    }
    data.update(overrides)
    return TaskSpec.from_dict(data)


def aggregate(spec: TaskSpec, values: np.ndarray) -> np.ndarray:
    return field_sum_rows(np.stack([encode_report(spec, float(v)) for v in values]))


def truth(spec: TaskSpec, values: np.ndarray) -> dict[str, Any]:
    """Plaintext statistics of the values quantised to the task's grid, via numpy."""
    codes = np.rint((values - spec.low) / spec.resolution).astype(np.int64)
    xq = spec.low + codes * spec.resolution
    grid_edges = np.rint((np.array(spec.buckets) - spec.low) / spec.resolution)
    # np.histogram: bins [a, b) except the last, which is closed, as in the task's semantics.
    hist = np.histogram(codes, bins=np.concatenate(([0], grid_edges, [spec.levels])))[0]
    ordered = np.sort(xq)
    n = len(ordered)
    # Inverted-CDF quantile: the ceil(p * n)-th smallest value.
    quantiles = {k: float(ordered[math.ceil(p * n) - 1]) for k, p in PERCENTILES.items()}
    return {
        "count": n,
        "sum": float(np.sum(xq)),
        "mean": float(np.mean(xq)),
        "variance": float(np.var(xq)),
        "stddev": float(np.std(xq)),
        "histogram": hist.tolist(),
        "quantiles": quantiles,
    }


def assert_matches_truth(spec: TaskSpec, got: dict[str, Any], values: np.ndarray) -> None:
    want = truth(spec, values)
    res = spec.resolution
    assert set(got) == {"count", *spec.stats}
    assert got["count"] == want["count"]
    if "sum" in got:
        assert got["sum"] == pytest.approx(want["sum"], rel=1e-9, abs=res * 1e-6)
    if "mean" in got:
        assert got["mean"] == pytest.approx(want["mean"], rel=1e-9, abs=res * 1e-6)
        # Quantisation moves each value by at most half a step.
        assert abs(got["mean"] - float(np.mean(values))) <= res / 2 + 1e-9
    if "variance" in got:
        assert got["variance"] == pytest.approx(want["variance"], rel=1e-9, abs=res**2 * 1e-6)
    if "stddev" in got:
        assert got["stddev"] == pytest.approx(want["stddev"], rel=1e-9, abs=res * 1e-6)
    edges = [spec.low, *spec.buckets, spec.high]
    if "histogram" in got:
        assert got["histogram"] == [
            {"low": edges[j], "high": edges[j + 1], "count": c}
            for j, c in enumerate(want["histogram"])
        ]
    if "quantiles" in got:
        assert list(got["quantiles"]) == list(PERCENTILES)
        for name, exact in want["quantiles"].items():
            # The estimate lies in the bin holding the exact quantile: error <= that bin's width.
            j = int(np.searchsorted(edges[1:-1], exact, side="right"))
            assert edges[j] - 1e-9 <= got["quantiles"][name] <= edges[j + 1] + 1e-9, name
        estimates = list(got["quantiles"].values())
        assert estimates == sorted(estimates)


def test_decode_matches_numpy_on_random_readings() -> None:
    spec = make_spec()
    rng = np.random.default_rng(20240611)
    values = np.concatenate(
        [
            np.clip(rng.normal(20.5, 2.5, size=400), -20, 50),
            [-20.0, 50.0, 15.0, 19.5, 30.0],  # range ends and bucket edges themselves
        ]
    )
    got = decode_aggregate(spec, aggregate(spec, values), noisy=False)
    assert_matches_truth(spec, got, values)


def test_variance_is_shift_invariant_and_exact_for_large_offsets() -> None:
    # Power readings near the top of a wide range: the naive E[x^2] - E[x]^2 in floats
    # would lose digits; the integer-domain computation does not.
    spec = make_spec(low=0, high=20000, resolution=1, buckets=[], stats=["variance", "mean"])
    values = np.array([19999.0, 20000.0, 19998.0, 19999.0])
    got = decode_aggregate(spec, aggregate(spec, values), noisy=False)
    assert got["variance"] == pytest.approx(0.5, abs=1e-12)
    assert got["mean"] == pytest.approx(19999.0, abs=1e-9)


@st.composite
def spec_and_values(draw: st.DrawFn) -> tuple[TaskSpec, np.ndarray]:
    low = draw(st.integers(-1000, 1000)) / 4
    resolution = draw(st.sampled_from([0.01, 0.1, 0.25, 1.0, 5.0]))
    levels = draw(st.integers(1, 2000))
    high = low + levels * resolution
    edge_steps = draw(st.lists(st.integers(1, levels), unique=True, max_size=12).map(sorted))
    stats = draw(st.lists(st.sampled_from(ALL_STATS), unique=True, min_size=1))
    if not edge_steps and {"histogram", "quantiles"} & set(stats):
        edge_steps = [levels]
    if not {"histogram", "quantiles"} & set(stats):
        edge_steps = []
    spec = make_spec(
        low=low,
        high=high,
        resolution=resolution,
        buckets=[low + s * resolution for s in edge_steps],
        stats=stats,
    )
    values = draw(
        st.lists(st.floats(min_value=low, max_value=high, allow_nan=False), min_size=1, max_size=40)
    )
    return spec, np.array(values)


@settings(max_examples=150, deadline=None)
@given(spec_and_values())
def test_decode_matches_numpy_for_random_tasks(case: tuple[TaskSpec, np.ndarray]) -> None:
    spec, values = case
    # Sum with Python integers mod P, independently of the Cython kernels.
    rows = [[int(v) for v in encode_report(spec, float(x))] for x in values]
    total = np.array([sum(col) % P for col in zip(*rows, strict=True)], dtype=np.uint64)
    assert_matches_truth(spec, decode_aggregate(spec, total, noisy=False), values)


@pytest.mark.parametrize(
    ("t", "k", "subsets"), [(1, 3, [[1, 2], [1, 3], [2, 3]]), (2, 5, [[1, 3, 5], [2, 4, 5]])]
)
def test_shamir_shared_reports_decode_to_the_plaintext_statistics(
    t: int, k: int, subsets: list[list[int]]
) -> None:
    spec = make_spec(t=t, k=k)
    values = np.random.default_rng(7).uniform(-20, 50, size=60)
    rng = FieldRNG()
    member_sums = np.zeros((k, len(encode_report(spec, 0.0))), dtype=np.uint64)
    for v in values:
        shares = shamir_share(encode_report(spec, float(v)), t, k, rng)
        member_sums = field_add(member_sums, shares)  # each member adds the share it received
    for xs in subsets:
        total = shamir_reconstruct(member_sums[[x - 1 for x in xs]], xs, t)
        assert_matches_truth(spec, decode_aggregate(spec, total, noisy=False), values)
    # A single member's sum is uniformly random: it does not decode.
    with pytest.raises(ValueError, match="inconsistent"):
        decode_aggregate(spec, member_sums[0], noisy=False)


def test_only_requested_statistics_are_returned() -> None:
    spec = make_spec(stats=["mean"], buckets=[])
    got = decode_aggregate(spec, aggregate(spec, np.array([20.0, 21.0])), noisy=False)
    assert got == {"count": 2, "mean": pytest.approx(20.5)}
    spec = make_spec(stats=["histogram"], buckets=[20])
    got = decode_aggregate(spec, aggregate(spec, np.array([19.9, 20.0, 21.0])), noisy=False)
    assert got == {
        "count": 3,
        "histogram": [
            {"low": -20.0, "high": 20.0, "count": 1},
            {"low": 20.0, "high": 50.0, "count": 2},
        ],
    }


def _signed_to_field(values: list[int]) -> np.ndarray:
    return np.array([v % P for v in values], dtype=np.uint64)


@pytest.mark.parametrize(
    ("block", "delta", "problem"),
    [
        ("count", 1, "does not add up"),
        ("count", -5, r"count -3 outside \[0, 100000\]"),
        ("count", 10**5, r"count 100002 outside \[0, 100000\]"),
        ("sum_q", 10**6, "sum of codes"),
        ("sum_q2", -200, "impossible for sum"),
        ("histogram", 1, "does not add up"),
    ],
)
def test_inconsistent_noise_free_aggregates_are_refused(
    block: str, delta: int, problem: str
) -> None:
    spec = make_spec()
    total = [int(v) for v in aggregate(spec, np.array([20.0, 21.0]))]
    total[vector_layout(spec)[block].start] += delta
    with pytest.raises(ValueError, match=f"inconsistent .*{problem}"):
        decode_aggregate(spec, _signed_to_field(total), noisy=False)


@pytest.mark.parametrize(
    ("total", "message"),
    [
        (np.zeros(3, dtype=np.uint64), r"length 12, got uint64 with shape \(3,\)"),
        (np.zeros(12, dtype=np.int64), "must be a uint64 vector"),
        (np.full(12, P, dtype=np.uint64), "reduce it modulo P"),
    ],
)
def test_malformed_aggregates_are_refused(total: np.ndarray, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        decode_aggregate(make_spec(), total, noisy=True)


def assert_well_formed(spec: TaskSpec, got: dict[str, Any]) -> None:
    assert isinstance(got["count"], int) and got["count"] >= 0
    span = spec.high - spec.low
    if got["count"] == 0:
        assert got["mean"] is got["variance"] is got["stddev"] is None
    else:
        assert spec.low <= got["mean"] <= spec.high
        assert 0 <= got["variance"] <= span**2 / 4 + 1e-9
        assert got["stddev"] == pytest.approx(math.sqrt(got["variance"]))
    assert got["count"] * spec.low <= got["sum"] <= got["count"] * spec.high
    assert all(b["count"] >= 0 for b in got["histogram"])
    if sum(b["count"] for b in got["histogram"]) == 0:
        assert got["quantiles"] is None
    else:
        estimates = list(got["quantiles"].values())
        assert estimates == sorted(estimates)
        assert all(spec.low <= q <= spec.high and math.isfinite(q) for q in estimates)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(-(P // 2), P // 2), min_size=12, max_size=12))
def test_noisy_decoding_is_well_formed_for_any_vector(signed: list[int]) -> None:
    spec = make_spec(dp_epsilon=1.0)
    assert_well_formed(spec, decode_aggregate(spec, _signed_to_field(signed), noisy=True))


def test_noisy_decoding_clamps_to_possible_values() -> None:
    spec = make_spec(dp_epsilon=1.0)
    lay = vector_layout(spec)
    vec = [0] * 12
    vec[0], vec[lay["sum_q"].start], vec[lay["sum_q2"].start] = 4, 10**9, -(10**12)
    got = decode_aggregate(spec, _signed_to_field(vec), noisy=True)
    assert (got["count"], got["sum"], got["mean"], got["variance"]) == (4, 200.0, 50.0, 0.0)
    vec[0], vec[lay["sum_q"].start] = -2, -5
    got = decode_aggregate(spec, _signed_to_field(vec), noisy=True)
    assert (got["count"], got["sum"], got["mean"], got["quantiles"]) == (0, 0.0, None, None)


def test_noisy_release_is_close_to_the_truth_for_many_contributors() -> None:
    spec = make_spec(dp_epsilon=5.0)
    values = np.clip(np.random.default_rng(3).normal(21, 2, size=3000), -20, 50)
    total = aggregate(spec, values)
    for _ in range(spec.k):  # every committee member adds its own noise vector
        total = field_sum_rows(np.stack([total, to_field(noise_vector(spec))]))
    got = decode_aggregate(spec, total, noisy=True)
    assert_well_formed(spec, got)
    want = truth(spec, values)
    scales = component_scales(spec, 5.0)
    # Sum of k discrete Laplace draws: sd = sqrt(k * var) < sqrt(2 k) * scale; allow 8 sd.
    sd = {name: math.sqrt(2 * spec.k) * float(s) for name, s in scales.items()}
    assert abs(got["count"] - want["count"]) <= 8 * sd["count"]
    noisy_n = got["count"]
    # mean = low + res * sum_q / count: bound by the noise in both sum_q and count.
    mean_err = spec.resolution * (8 * sd["sum_q"] + spec.levels * 8 * sd["count"]) / noisy_n
    assert abs(got["mean"] - want["mean"]) <= mean_err
    for b, c in zip(got["histogram"], want["histogram"], strict=True):
        assert abs(b["count"] - c) <= 8 * sd["histogram"]
