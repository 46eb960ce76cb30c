"""Slow, obviously-correct reference arithmetic (Python integers) and the uniformity
statistic for the arith tests.

Written independently of mpc_backend.arith: object arrays of Python ints for the
element-wise operations, plain polynomial evaluation for Shamir sharing, and
Gauss-Jordan elimination on the Vandermonde system (not Lagrange's formula) for
interpolation.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

P = 2**61 - 1
RING = 2**64


def _ints(a: np.ndarray) -> np.ndarray:
    return a.astype(object)


def _back(a: np.ndarray) -> np.ndarray:
    return np.array(a.tolist(), dtype=np.uint64).reshape(a.shape)


def field_add(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return _back((_ints(a) + _ints(b)) % P)


def field_sub(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return _back((_ints(a) - _ints(b)) % P)


def field_neg(a: np.ndarray) -> np.ndarray:
    return _back((-_ints(a)) % P)


def field_mul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return _back((_ints(a) * _ints(b)) % P)


def field_scale(a: np.ndarray, c: int) -> np.ndarray:
    return _back((_ints(a) * c) % P)


def field_sum_rows(x: np.ndarray) -> np.ndarray:
    return _back(_ints(x).sum(axis=0) % P if x.shape[0] else np.zeros(x.shape[1], object))


def ring_add(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return _back((_ints(a) + _ints(b)) % RING)


def ring_sub(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return _back((_ints(a) - _ints(b)) % RING)


def ring_sum_rows(x: np.ndarray) -> np.ndarray:
    return _back(_ints(x).sum(axis=0) % RING)


def evaluate(coefficients: Sequence[int], x: int) -> int:
    """sum_m coefficients[m] x^m mod P (coefficients[0] is the constant term)."""
    return sum(c * pow(x, m, P) for m, c in enumerate(coefficients)) % P


def interpolate(xs: Sequence[int], ys: Sequence[int]) -> list[int]:
    """Coefficients (constant first) of the unique polynomial of degree < len(xs) through
    the points, by Gauss-Jordan elimination of the Vandermonde system mod P."""
    n = len(xs)
    rows = [[pow(x, m, P) for m in range(n)] + [y % P] for x, y in zip(xs, ys, strict=True)]
    for col in range(n):
        pivot = next(r for r in range(col, n) if rows[r][col])
        rows[col], rows[pivot] = rows[pivot], rows[col]
        inverse = pow(rows[col][col], P - 2, P)
        rows[col] = [v * inverse % P for v in rows[col]]
        for r in range(n):
            if r != col and rows[r][col]:
                factor = rows[r][col]
                rows[r] = [(v - factor * w) % P for v, w in zip(rows[r], rows[col], strict=True)]
    return [row[n] for row in rows]


def chi_square(counts: np.ndarray) -> float:
    """Pearson's statistic of bucket counts against the uniform distribution."""
    expected = counts.sum() / counts.size
    return float(((counts - expected) ** 2 / expected).sum())


def chi_square_limit(df: int, z: float = 6.0) -> float:
    """About the 1 - 1e-9 quantile of chi^2(df) (z = 6 standard deviations, by the
    Wilson-Hilferty approximation): a uniform sample essentially never exceeds it."""
    a = 2 / (9 * df)
    return df * (1 - a + z * math.sqrt(a)) ** 3
