"""Exact discrete Laplace sampling and DP calibration, against closed forms.

Sample sizes and tolerances: every empirical check allows 6 standard errors of
its estimator, so a correct sampler fails a given check with probability about
2e-9; a wrong distribution (e.g. scale off by 10 %) is many standard errors out.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest

from mpc_backend.arith import P
from mpc_backend.protocol import (
    TaskSpec,
    component_scales,
    discrete_laplace,
    noise_vector,
    to_field,
    vector_length,
)
from mpc_backend.protocol.noise import bernoulli_exp


def laplace_pmf(z: int, scale: float) -> float:
    r = math.exp(-1 / scale)
    return (1 - r) / (1 + r) * r ** abs(z)


def laplace_variance(scale: float) -> float:
    r = math.exp(-1 / scale)
    return 2 * r / (1 - r) ** 2


def laplace_fourth_moment(scale: float) -> float:
    return sum(laplace_pmf(z, scale) * z**4 for z in range(-4000, 4001))


@pytest.mark.parametrize("gamma", [Fraction(0), Fraction(1, 3), Fraction(1), Fraction(5, 2)])
def test_bernoulli_exp_frequency(gamma: Fraction) -> None:
    n = 20_000
    hits = sum(bernoulli_exp(gamma) for _ in range(n))
    p = math.exp(-gamma)
    assert abs(hits / n - p) <= 6 * math.sqrt(p * (1 - p) / n) + 1e-12


def test_bernoulli_exp_refuses_negative_gamma() -> None:
    with pytest.raises(ValueError, match="gamma must be >= 0"):
        bernoulli_exp(Fraction(-1, 2))


@pytest.mark.parametrize("scale", [Fraction(5, 2), Fraction(1, 2)])
def test_discrete_laplace_matches_closed_form(scale: Fraction) -> None:
    n = 60_000
    samples = np.array([discrete_laplace(scale) for _ in range(n)], dtype=np.int64)
    s = float(scale)
    var = laplace_variance(s)
    assert abs(samples.mean()) <= 6 * math.sqrt(var / n)
    # Standard error of the sample variance of a zero-mean variable: sqrt((mu4 - var^2) / n).
    assert abs(np.mean(samples.astype(float) ** 2) - var) <= 6 * math.sqrt(
        (laplace_fourth_moment(s) - var**2) / n
    )
    for z in range(-4, 5):
        p = laplace_pmf(z, s)
        freq = np.count_nonzero(samples == z) / n
        assert abs(freq - p) <= 6 * math.sqrt(p * (1 - p) / n), z
    # P(0) closed form tanh(1 / (2 s)), written independently of the pmf above.
    p0 = math.tanh(1 / (2 * s))
    assert abs(np.count_nonzero(samples == 0) / n - p0) <= 6 * math.sqrt(p0 * (1 - p0) / n)


def test_discrete_laplace_huge_scale_uses_exact_integers() -> None:
    scale = Fraction(10**15 + 1, 1000)  # the size a sum-of-squares component can need
    n = 3000
    samples = [discrete_laplace(scale) for _ in range(n)]
    assert all(isinstance(z, int) for z in samples)
    # E|Z| ~= scale for large scales; the mean of |Z| has sd ~= scale / sqrt(n).
    mean_abs = sum(abs(z) for z in samples) / n
    assert abs(mean_abs / float(scale) - 1) <= 6 / math.sqrt(n)


def test_discrete_laplace_refuses_non_positive_scale() -> None:
    with pytest.raises(ValueError, match="scale must be > 0"):
        discrete_laplace(Fraction(0))


def make_spec(**overrides: object) -> TaskSpec:
    data: dict[str, object] = {
        "metric": "power_w",
        "low": 0,
        "high": 5000,
        "resolution": 10,
        "stats": ["count", "mean", "stddev", "histogram"],
        "buckets": [500, 1000, 2000],
        "period_s": 900,
        "min_contributors": 5,
        "dp_epsilon": 1.0,
    }
    data.update(overrides)
    return TaskSpec.from_dict(data)


@pytest.mark.parametrize("epsilon", [1.0, 0.3, 2.5, 0.1234567])
def test_budget_split_composes_to_epsilon(epsilon: float) -> None:
    spec = make_spec()
    q = 500  # (5000 - 0) / 10
    sensitivity = {"count": 1, "sum_q": q, "sum_q2": q * q, "histogram": 1}
    scales = component_scales(spec, epsilon)
    assert set(scales) == set(sensitivity)
    # Basic composition of the Laplace mechanisms: sum of sensitivity / scale.
    spent = sum(Fraction(sensitivity[c]) / scales[c] for c in scales)
    assert spent <= Fraction(epsilon)
    assert spent >= Fraction(epsilon) * Fraction(999, 1000)  # rounding up wastes little
    for c, s in scales.items():
        exact = Fraction(sensitivity[c]) * 4 / Fraction(epsilon)
        assert exact <= s < exact + Fraction(1, 1000)


def test_noise_vector_components_have_their_scales() -> None:
    spec = make_spec(dp_epsilon=4.0, high=50, resolution=1, buckets=[5, 10, 20])
    scales = component_scales(spec, 4.0)
    n = 4000
    samples = np.stack([noise_vector(spec) for _ in range(n)])
    assert samples.shape == (n, vector_length(spec)) and samples.dtype == np.int64
    per_position = ["count", "sum_q", "sum_q2"] + ["histogram"] * 4
    for j, name in enumerate(per_position):
        s = float(scales[name])
        var = laplace_variance(s)
        sd_of_var = math.sqrt((laplace_fourth_moment(s) - var**2) / n) if s < 200 else None
        got = float(np.mean(samples[:, j].astype(float) ** 2))
        if sd_of_var is not None:
            assert abs(got - var) <= 6 * sd_of_var, name
        else:  # large scales: E|Z| ~= scale, sd of the mean ~= scale / sqrt(n)
            assert abs(np.mean(np.abs(samples[:, j])) / s - 1) <= 6 / math.sqrt(n), name


def test_noise_vector_needs_an_epsilon() -> None:
    spec = make_spec(dp_epsilon=None)
    with pytest.raises(ValueError, match="has no dp_epsilon"):
        noise_vector(spec)
    assert noise_vector(spec, 2.0).shape == (vector_length(spec),)
    with pytest.raises(ValueError, match="dp_epsilon must be a finite number > 0"):
        noise_vector(spec, 0.0)


def test_to_field_maps_signed_values_into_the_field() -> None:
    signed = np.array([0, 1, -1, 12345, -(2**40), P - 1, -(P - 1)], dtype=np.int64)
    field = to_field(signed)
    assert field.dtype == np.uint64
    assert field.tolist() == [int(v) % P for v in signed]
    assert field.tolist()[2] == P - 1
    with pytest.raises(ValueError, match="below the field modulus"):
        to_field(np.array([P], dtype=np.int64))
    with pytest.raises(ValueError, match="below the field modulus"):
        to_field(np.array([-P], dtype=np.int64))
