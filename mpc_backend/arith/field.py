"""Element-wise GF(p) arithmetic, p = 2^61 - 1, on numpy uint64 arrays.

Operands must hold canonical elements (< P); results always do. Each function
checks its operands inside the same compiled pass that computes the result, so
validation costs no extra sweep over memory. Outputs are new arrays.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from . import _field
from ._checks import P, U64Array, integer, noncanonical, same_shape, uint64_array

_BinaryKernel = Callable[[U64Array, U64Array, U64Array], bool]


def _binary(kernel: _BinaryKernel, a: object, b: object) -> U64Array:
    x = uint64_array(a, "a")
    y = uint64_array(b, "b")
    same_shape(x, y, "a", "b")
    out = np.empty(x.shape, np.uint64)
    if kernel(x.reshape(-1), y.reshape(-1), out.reshape(-1)):
        if (x >= P).any():
            raise noncanonical("a", x)
        raise noncanonical("b", y)
    return out


def field_add(a: U64Array, b: U64Array) -> U64Array:
    """(a + b) mod P, element-wise; a and b have the same shape."""
    return _binary(_field.add, a, b)


def field_sub(a: U64Array, b: U64Array) -> U64Array:
    """(a - b) mod P, element-wise."""
    return _binary(_field.sub, a, b)


def field_mul(a: U64Array, b: U64Array) -> U64Array:
    """(a * b) mod P, element-wise."""
    return _binary(_field.mul, a, b)


def field_neg(a: U64Array) -> U64Array:
    """(-a) mod P, element-wise."""
    x = uint64_array(a, "a")
    out = np.empty(x.shape, np.uint64)
    if _field.neg(x.reshape(-1), out.reshape(-1)):
        raise noncanonical("a", x)
    return out


def field_scale(a: U64Array, c: int) -> U64Array:
    """(c * a) mod P for an integer scalar c (any sign or size; it is reduced mod P)."""
    x = uint64_array(a, "a")
    scalar = integer(c, "c") % P
    out = np.empty(x.shape, np.uint64)
    if _field.scale(x.reshape(-1), scalar, out.reshape(-1)):
        raise noncanonical("a", x)
    return out


def field_sum_rows(x: U64Array) -> U64Array:
    """Column sums mod P of a 2-D (m, n) array: the (n,) sum of its m rows."""
    rows = uint64_array(x, "x", ndim=2)
    out = np.empty(rows.shape[1], np.uint64)
    if rows.shape[0] == 0:
        out.fill(0)
    elif _field.sum_rows(rows, out):
        raise noncanonical("x", rows)
    return out
