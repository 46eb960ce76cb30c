"""Arithmetic in the ring Z/2^64 and additive n-of-n sharing over it.

uint64 arithmetic already wraps modulo 2^64, so numpy's own compiled (SIMD)
ufuncs are the kernels; these wrappers add the argument checks.
"""

from __future__ import annotations

import numpy as np

from ._checks import U64Array, party_count, same_shape, uint64_array
from .rng import FieldRNG


def ring_add(a: U64Array, b: U64Array) -> U64Array:
    """(a + b) mod 2^64, element-wise."""
    x = uint64_array(a, "a")
    y = uint64_array(b, "b")
    same_shape(x, y, "a", "b")
    return np.add(x, y)


def ring_sub(a: U64Array, b: U64Array) -> U64Array:
    """(a - b) mod 2^64, element-wise."""
    x = uint64_array(a, "a")
    y = uint64_array(b, "b")
    same_shape(x, y, "a", "b")
    return np.subtract(x, y)


def ring_sum_rows(x: U64Array) -> U64Array:
    """Column sums mod 2^64 of a 2-D (m, n) array."""
    return uint64_array(x, "x", ndim=2).sum(axis=0, dtype=np.uint64)


def ring_share(secrets: U64Array, n: int, rng: FieldRNG) -> U64Array:
    """Additive n-of-n sharing: an (n, len) array whose rows sum to `secrets` mod 2^64.

    The first n - 1 rows are uniform words; the last is secrets minus their sum.
    All n rows are needed to recover anything.
    """
    values = uint64_array(secrets, "secrets", ndim=1)
    parties = party_count(n, "n", minimum=2)
    if not isinstance(rng, FieldRNG):
        raise TypeError(f"rng must be a FieldRNG, got {type(rng).__name__}")
    shares = np.empty((parties, values.size), np.uint64)
    shares[:-1] = rng.uint64((parties - 1) * values.size).reshape(parties - 1, values.size)
    np.subtract(values, shares[:-1].sum(axis=0, dtype=np.uint64), out=shares[-1])
    return shares
