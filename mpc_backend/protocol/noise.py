"""Differential-privacy noise: exact discrete Laplace from ``secrets`` only.

Neighbouring relation: add/remove one household's report (unbounded DP). A round
releases the task's components (see ``TaskSpec.components``), with L1 sensitivity

    count 1,  sum_q Q,  sum_q2 Q^2,  histogram 1 (one bin changes by one)

where Q = (high - low) / resolution. The budget ``epsilon`` is split equally over
the m released components (basic composition): component c gets epsilon / m and
discrete Laplace noise of scale ``sensitivity_c * m / epsilon``, rounded *up* to
a multiple of 1/1000 so the rational sampler below applies and privacy is never
weaker than asked. Each committee member adds its own full-scale noise vector,
so the release stays epsilon-DP even if all other members collude (and the
total noise is k times the variance of one vector).

The sampler is Algorithm 1 + 2 of Canonne, Kamath, Steinke, "The Discrete
Gaussian for Differential Privacy" (NeurIPS 2020): integer arithmetic and
uniform integers only, so there is no floating-point leakage. P[Z = z] is
proportional to exp(-|z| / scale).
"""

from __future__ import annotations

import math
import secrets
from fractions import Fraction
from typing import TYPE_CHECKING

import numpy as np

from mpc_backend.arith import P

if TYPE_CHECKING:
    from .task import TaskSpec

# Noise magnitudes beyond NOISE_TAIL * scale have probability < e^-50 per sample;
# TaskSpec validation keeps k such tails plus all reports below P/2.
NOISE_TAIL = 50
_SCALE_DENOMINATOR = 1000


def _bernoulli(p: Fraction) -> bool:
    return secrets.randbelow(p.denominator) < p.numerator


def bernoulli_exp(gamma: Fraction) -> bool:
    """Exact Bernoulli(exp(-gamma)) for rational gamma >= 0 (CKS Algorithm 1)."""
    if gamma < 0:
        raise ValueError(f"gamma must be >= 0, got {gamma}")
    while gamma > 1:
        if not bernoulli_exp(Fraction(1)):
            return False
        gamma -= 1
    k = 1
    while _bernoulli(gamma / k):
        k += 1
    return k % 2 == 1


def discrete_laplace(scale: Fraction) -> int:
    """Exact sample with P[Z = z] proportional to exp(-|z| / scale) (CKS Algorithm 2)."""
    if scale <= 0:
        raise ValueError(f"scale must be > 0, got {scale}")
    t, s = scale.numerator, scale.denominator
    while True:
        u = secrets.randbelow(t)
        if not bernoulli_exp(Fraction(u, t)):
            continue
        v = 0
        while bernoulli_exp(Fraction(1)):
            v += 1
        y = (u + t * v) // s
        negative = secrets.randbelow(2) == 1
        if negative and y == 0:
            continue
        return -y if negative else y


def component_scales(spec: TaskSpec, epsilon: float) -> dict[str, Fraction]:
    """Discrete Laplace scale per released component name for total budget ``epsilon``."""
    if not (math.isfinite(epsilon) and epsilon > 0):
        raise ValueError(f"dp_epsilon must be a finite number > 0, got {epsilon}")
    comps = spec.components
    eps = Fraction(epsilon)
    return {
        c.name: Fraction(
            math.ceil(c.sensitivity * len(comps) / eps * _SCALE_DENOMINATOR), _SCALE_DENOMINATOR
        )
        for c in comps
    }


def noise_vector(spec: TaskSpec, epsilon: float | None = None) -> np.ndarray:
    """One member's noise for ``spec`` (int64, length ``vector_length(spec)``).

    ``epsilon`` defaults to ``spec.dp_epsilon``.
    """
    eps = spec.dp_epsilon if epsilon is None else epsilon
    if eps is None:
        raise ValueError(f"task {spec.task_id!r} has no dp_epsilon; it is released without noise")
    scales = component_scales(spec, eps)
    samples = [discrete_laplace(scales[c.name]) for c in spec.components for _ in range(c.size)]
    return np.array(samples, dtype=np.int64)


def to_field(values: np.ndarray) -> np.ndarray:
    """Signed integers (|n| < P) as field elements: n >= 0 -> n, n < 0 -> P - |n|."""
    signed = np.asarray(values, dtype=np.int64)
    if signed.size and (int(signed.min()) <= -P or int(signed.max()) >= P):
        raise ValueError("noise magnitude must be below the field modulus P")
    return (signed % np.int64(P)).astype(np.uint64)
