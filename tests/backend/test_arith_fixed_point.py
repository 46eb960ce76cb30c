"""FixedPoint: worked examples, sums through Shamir sharing, capacity and range checks."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mpc_backend.arith import FieldRNG, FixedPoint, P, aggregate_and_reconstruct, shamir_share

RANGES = [(-40.0, 85.0, 0.01), (0.0, 5000.0, 1.0), (-1.0, 1.0, 0.001), (300.0, 10000.0, 0.5)]


def test_worked_example_temperature() -> None:
    fp = FixedPoint(-40, 85, 0.01)
    assert fp.levels == 12_500
    q = fp.encode([-40.0, 85.0, 21.37, 0.0, -12.5])
    np.testing.assert_array_equal(q, [0, 12_500, 6_137, 4_000, 2_750])
    assert q.dtype == np.uint64
    # -40 + 85 + 21.37 = 66.37 from the encoded sum 18637
    assert fp.decode_sum(18_637, 3) == pytest.approx(66.37, abs=1e-9)
    # (-40)^2 + 85^2 + 21.37^2 = 9281.6769 from sum q^2 = 193912769
    np.testing.assert_array_equal(
        fp.encode_squares([-40.0, 85.0, 21.37]), [0, 156_250_000, 37_662_769]
    )
    assert fp.decode_sum_of_squares(193_912_769, 18_637, 3) == pytest.approx(9281.6769, abs=1e-6)


def test_negative_readings_use_the_offset() -> None:
    fp = FixedPoint(-1, 1, 0.5)
    np.testing.assert_array_equal(fp.encode([-1.0, -0.5, 0.0, 0.5, 1.0]), [0, 1, 2, 3, 4])
    assert fp.decode_sum(0, 4) == -4.0
    assert fp.decode_sum(1, 1) == -0.5


@settings(max_examples=60)
@given(st.data(), st.sampled_from(RANGES), st.integers(1, 40), st.binary(min_size=32, max_size=32))
def test_sums_through_shamir_sharing_match_plaintext(
    data: st.DataObject, spec: tuple[float, float, float], count: int, seed: bytes
) -> None:
    low, high, resolution = spec
    fp = FixedPoint(low, high, resolution)
    values = data.draw(st.lists(st.floats(low, high), min_size=count, max_size=count))
    rng = FieldRNG(seed)
    t, k = 1, 3
    shares = [
        shamir_share(np.concatenate([fp.encode([v]), fp.encode_squares([v])]), t, k, rng)
        for v in values
    ]
    stacks = [np.stack([s[j] for s in shares]) for j in range(k)]
    sum_q, sum_q2 = (int(v) for v in aggregate_and_reconstruct(stacks, [1, 2, 3], t))

    # Each reading moves by at most resolution / 2 when quantised.
    assert fp.decode_sum(sum_q, count) == pytest.approx(
        math.fsum(values), abs=count * resolution / 2 + 1e-9 * count * max(abs(low), abs(high))
    )
    bound = max(abs(low), abs(high))
    assert fp.decode_sum_of_squares(sum_q2, sum_q, count) == pytest.approx(
        math.fsum(v * v for v in values), abs=count * (bound * resolution + resolution**2) + 1e-6
    )


def test_decode_works_on_vectors_of_sums() -> None:
    fp = FixedPoint(0, 10, 0.5)
    totals = np.array([0, 20, 40], np.uint64)
    np.testing.assert_allclose(fp.decode_sum(totals, 2), [0.0, 10.0, 20.0])


@pytest.mark.parametrize("spec", RANGES)
@pytest.mark.parametrize("degree", [1, 2])
def test_capacity_boundary_is_p_over_2(spec: tuple[float, float, float], degree: int) -> None:
    fp = FixedPoint(*spec)
    limit = fp.max_count(degree)
    assert 2 * limit * fp.levels**degree <= P  # the worst-case sum stays at most P / 2
    assert 2 * (limit + 1) * fp.levels**degree > P
    fp.check_capacity(limit, degree=degree)
    with pytest.raises(
        ValueError, match=rf"{limit + 1} values .* could exceed P / 2.*at most {limit}"
    ):
        fp.check_capacity(limit + 1, degree=degree)


def test_overflowing_counts_are_refused_when_decoding() -> None:
    fp = FixedPoint(0, 2**40, 1)
    with pytest.raises(ValueError, match="could exceed P / 2"):
        fp.decode_sum(0, 2**20 + 1)
    with pytest.raises(ValueError, match="could exceed P / 2"):
        fp.decode_sum_of_squares(0, 0, 2)
    with pytest.raises(ValueError, match="could exceed P / 2"):
        fp.encode_squares([1.0])


@pytest.mark.parametrize("value", [85.01, -40.5, 1e9, float("nan"), float("inf")])
def test_readings_outside_the_range_are_refused(value: float) -> None:
    fp = FixedPoint(-40, 85, 0.01)
    with pytest.raises(
        ValueError,
        match=rf"value {re.escape(repr(value))} \(element 1\) is outside .* \[-40\.0, 85\.0\]",
    ):
        fp.encode([20.0, value, 30.0])


@pytest.mark.parametrize(
    ("args", "error", "message"),
    [
        ((5, 5, 0.1), ValueError, "low must be below high, got low=5, high=5"),
        ((6, 5, 0.1), ValueError, "low must be below high"),
        ((0, 1, 0), ValueError, "resolution must be positive, got 0"),
        ((0, 1, -0.1), ValueError, "resolution must be positive"),
        ((0, 1, 0.3), ValueError, r"must be a whole number of resolution steps"),
        ((0, float("inf"), 1), ValueError, "high must be finite"),
        ((0, 2**62, 1), ValueError, "levels exceeds P / 2; use a coarser resolution"),
        (("0", 1, 1), TypeError, "low must be a real number, got '0'"),
        ((0, 1, None), TypeError, "resolution must be a real number, got None"),
    ],
)
def test_bad_encoder_parameters_are_refused(args: tuple, error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        FixedPoint(*args)


def test_bad_decode_arguments_are_refused() -> None:
    fp = FixedPoint(0, 10, 1)
    with pytest.raises(ValueError, match=r"total = 31 is outside \[0, 30\], the possible sums"):
        fp.decode_sum(31, 3)
    with pytest.raises(
        ValueError, match=r"total\.flat\[1\] = 31 exceeds the largest possible sum 30"
    ):
        fp.decode_sum(np.array([0, 31], np.uint64), 3)
    with pytest.raises(TypeError, match="total must have dtype uint64, got float64"):
        fp.decode_sum(np.array([1.0]), 3)  # type: ignore[call-overload]
    with pytest.raises(ValueError, match="count must be non-negative, got -1"):
        fp.decode_sum(0, -1)
    with pytest.raises(ValueError, match=r"degree must be 1 .* or 2 .*, got 3"):
        fp.check_capacity(1, degree=3)
    with pytest.raises(ValueError, match=r"total_squares = 301 is outside \[0, 300\]"):
        fp.decode_sum_of_squares(301, 30, 3)
