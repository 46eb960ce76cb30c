"""Argument checks shared by the field, ring, Shamir and RNG wrappers."""

from __future__ import annotations

import numbers
from typing import Final, TypeAlias

import numpy as np
from numpy.typing import NDArray

U64Array: TypeAlias = NDArray[np.uint64]

P: Final[int] = (1 << 61) - 1
"""The field modulus, the Mersenne prime 2^61 - 1."""

MAX_PARTIES: Final[int] = 256
"""Most shares one sharing may have: committees are 3-50 hubs, and Lagrange
coefficients cost O(k^2) Python integer operations per new x-set."""


def uint64_array(x: object, name: str, ndim: int | None = None) -> U64Array:
    """Return x as a C-contiguous uint64 array (copying only if it is strided)."""
    if not isinstance(x, np.ndarray):
        raise TypeError(
            f"{name} must be a numpy array of dtype uint64, got {type(x).__name__}; "
            f"build one with np.asarray(values, dtype=np.uint64)"
        )
    if x.dtype != np.uint64:
        raise TypeError(
            f"{name} must have dtype uint64 (native byte order), got {x.dtype}; "
            f"convert non-negative integers with .astype(np.uint64)"
        )
    if ndim is not None and x.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D, got shape {x.shape}")
    if x.ndim == 0:
        raise ValueError(f"{name} must have at least one dimension; wrap it with np.atleast_1d")
    return np.ascontiguousarray(x)


def same_shape(a: U64Array, b: U64Array, a_name: str, b_name: str) -> None:
    if a.shape != b.shape:
        raise ValueError(
            f"{a_name} and {b_name} must have the same shape, got {a.shape} and {b.shape}"
        )


def integer(value: object, name: str) -> int:
    """Return value as a Python int; bool and non-integral numbers are rejected."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    return int(value)


def party_count(value: object, name: str, minimum: int) -> int:
    """An integer number of shares or parties in [minimum, MAX_PARTIES]."""
    count = integer(value, name)
    if not minimum <= count <= MAX_PARTIES:
        raise ValueError(f"{name} must be between {minimum} and {MAX_PARTIES}, got {count}")
    return count


def noncanonical(name: str, x: U64Array) -> ValueError:
    """The error for an operand holding a value >= P; call only once a kernel flagged it."""
    flat = x.reshape(-1)
    index = int(np.flatnonzero(flat >= P)[0])
    return ValueError(
        f"{name} must hold canonical field elements (< P = 2**61 - 1), but "
        f"{name}.flat[{index}] = {int(flat[index])}; reduce values mod P first"
    )
