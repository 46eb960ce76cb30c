"""Shamir secret sharing over GF(P), vectorised over many secrets at once.

A degree-t sharing hides each secret s in f(x) = s + c_1 x + ... + c_t x^t with
uniform random c_m; share i is f(xs[i]). Any t shares are jointly uniform and
independent of s; any t + 1 determine it: s = f(0) = sum_j lambda_j f(x_j) with
the Lagrange coefficients at zero. Because reconstruction is linear, members can
add the shares they hold first and reconstruct only the total
(`aggregate_and_reconstruct`).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import numpy as np

from . import _field
from ._checks import MAX_PARTIES, P, U64Array, integer, noncanonical, party_count, uint64_array
from .field import field_sum_rows
from .rng import FieldRNG

# Secrets per keystream draw in shamir_share: large enough to amortise the Python calls
# into OpenSSL and the kernel, small enough that the t words per secret stay in L2
# (4096-65536 measured for 2-of-5; 16384-32768 are best).
_SHARE_BLOCK = 16384


def shamir_share(
    secrets: U64Array,
    t: int,
    k: int,
    rng: FieldRNG,
    xs: Sequence[int] | None = None,
    out: U64Array | None = None,
) -> U64Array:
    """Share each element of the 1-D `secrets` with a degree-t polynomial.

    Returns a (k, n) array whose row i is the share at x = xs[i] (default 1..k);
    any t + 1 rows reconstruct, any t reveal nothing. The coefficients are the
    next t * n elements of `rng`, secret i taking elements i*t .. i*t + t - 1 as
    its coefficients of x^1 .. x^t. `out`, if given, is a C-contiguous (k, n)
    uint64 array that receives the shares and is returned (its contents are
    undefined if an error is raised): a hot loop that reuses one spares the kernel
    mapping and zeroing fresh pages for every large result.
    """
    values = uint64_array(secrets, "secrets", ndim=1)
    degree, count = _degree_and_count(t, k)
    points = _x_coordinates(range(1, count + 1) if xs is None else xs, "xs")
    if len(points) != count:
        raise ValueError(f"xs must have k = {count} x-coordinates, got {len(points)}")
    if not isinstance(rng, FieldRNG):
        raise TypeError(f"rng must be a FieldRNG, got {type(rng).__name__}")
    n = values.size
    shares = np.empty((count, n), np.uint64) if out is None else _output(out, values, count)
    scratch = np.empty(degree * min(_SHARE_BLOCK, max(n, 1)), np.uint64)
    draw, accept = rng._keystream_into, rng._accept  # the RNG's drawing steps, fused in
    if _field.share(values, degree, np.array(points, np.uint64), shares, scratch, draw, accept):
        raise noncanonical("secrets", values)
    return shares


def shamir_reconstruct(
    shares: U64Array | Sequence[U64Array],
    xs: Sequence[int],
    t: int,
) -> U64Array:
    """Recover the (n,) secrets from >= t + 1 shares of a degree-t sharing.

    `shares` is a 2-D array with one share per row, or a sequence of 1-D arrays;
    share j was taken at x = xs[j]. The first t + 1 shares are used and any
    further ones are ignored (not checked for consistency).
    """
    degree = integer(t, "t")
    if not 1 <= degree < MAX_PARTIES:
        raise ValueError(f"t must be between 1 and {MAX_PARTIES - 1}, got {degree}")
    rows = _share_rows(shares)
    if len(rows) < degree + 1:
        raise ValueError(
            f"need at least t + 1 = {degree + 1} shares to reconstruct a degree-{degree} "
            f"sharing, got {len(rows)}"
        )
    points = _x_coordinates(xs, "xs")
    if len(points) != len(rows):
        raise ValueError(f"got {len(rows)} shares but {len(points)} x-coordinates in xs")
    used = rows[: degree + 1]
    out = np.empty(used[0].size, np.uint64)
    weights = np.array(_lagrange_at_zero(points[: degree + 1]), np.uint64)
    if _field.lincomb(used, weights, out):
        bad = next(j for j, row in enumerate(used) if (row >= P).any())
        raise noncanonical(f"shares[{bad}]", used[bad])
    return out


def aggregate_and_reconstruct(
    per_member_share_stacks: Sequence[U64Array],
    xs: Sequence[int],
    t: int,
) -> U64Array:
    """Sum of all contributors' secrets from the committee members' share stacks.

    Member j (at x = xs[j]) holds a (contributors, n) stack: one share row per
    contributor, contributors in the same order at every member. Each member's
    rows add up to its share of the total, which is then reconstructed.
    """
    stacks = [
        uint64_array(stack, f"per_member_share_stacks[{j}]", ndim=2)
        for j, stack in enumerate(per_member_share_stacks)
    ]
    shapes = {stack.shape for stack in stacks}
    if len(shapes) > 1:
        raise ValueError(
            "every member must hold the same (contributors, n) stack of shares, got shapes "
            f"{sorted(shapes)}; agree on the contributor set first"
        )
    return shamir_reconstruct([field_sum_rows(stack) for stack in stacks], xs, t)


def lagrange_at_zero(xs: Sequence[int]) -> tuple[int, ...]:
    """Coefficients lambda_j with f(0) = sum_j lambda_j f(xs[j]) for deg f < len(xs).

    Cached per x-set, so a committee pays for them once.
    """
    return _lagrange_at_zero(_x_coordinates(xs, "xs"))


@functools.lru_cache(maxsize=1024)
def _lagrange_at_zero(xs: tuple[int, ...]) -> tuple[int, ...]:
    weights = []
    for j, xj in enumerate(xs):
        numerator = denominator = 1
        for m, xm in enumerate(xs):
            if m != j:
                numerator = numerator * xm % P
                denominator = denominator * (xm - xj) % P
        weights.append(numerator * pow(denominator, -1, P) % P)
    return tuple(weights)


def _degree_and_count(t: object, k: object) -> tuple[int, int]:
    count = party_count(k, "k", minimum=2)
    degree = integer(t, "t")
    if degree < 1:
        raise ValueError(f"t must be at least 1 (t = 0 would hand out the secret), got {degree}")
    if degree >= count:
        raise ValueError(
            f"t must be below k: t + 1 = {degree + 1} shares reconstruct, "
            f"but only k = {count} are made"
        )
    return degree, count


def _output(out: object, secrets: U64Array, k: int) -> U64Array:
    """Check a caller's buffer for the k shares of the secrets."""
    shape = (k, secrets.size)
    make = f"make one with np.empty({shape}, np.uint64)"
    if not isinstance(out, np.ndarray):
        raise TypeError(f"out must be a numpy array or None, got {type(out).__name__}; {make}")
    if out.dtype != np.uint64:
        raise TypeError(f"out must have dtype uint64 (native byte order), got {out.dtype}; {make}")
    if out.shape != shape:
        raise ValueError(f"out must have shape (k, n) = {shape}, got {out.shape}; {make}")
    if not out.flags.c_contiguous:
        raise ValueError(f"out must be C-contiguous (not a strided view); {make}")
    if not out.flags.writeable:
        raise ValueError(f"out must be writeable; {make}")
    if np.may_share_memory(out, secrets):  # exact here: both are contiguous
        raise ValueError("out must not overlap secrets: the shares would overwrite them")
    return out


def _x_coordinates(xs: object, name: str) -> tuple[int, ...]:
    if isinstance(xs, np.ndarray):
        xs = xs.tolist()
    if not isinstance(xs, Sequence) or isinstance(xs, str | bytes):
        raise TypeError(f"{name} must be a sequence of integers, got {type(xs).__name__}")
    points = tuple(integer(x, f"{name}[{i}]") for i, x in enumerate(xs))
    if not points:
        raise ValueError(f"{name} must not be empty")
    if len(points) > MAX_PARTIES:
        raise ValueError(f"{name} has {len(points)} x-coordinates; at most {MAX_PARTIES} allowed")
    for i, x in enumerate(points):
        if not 0 < x < P:
            raise ValueError(
                f"{name}[{i}] = {x} is not a valid x-coordinate: it must be in [1, P - 1] "
                f"(x = 0 is where the secret sits)"
            )
    if len(set(points)) != len(points):
        duplicates = sorted({x for x in points if points.count(x) > 1})
        raise ValueError(f"{name} must be distinct, but {duplicates} appear more than once")
    return points


def _share_rows(shares: object) -> list[U64Array]:
    if isinstance(shares, np.ndarray):
        stack = uint64_array(shares, "shares", ndim=2)
        return list(stack)
    if not isinstance(shares, Sequence):
        raise TypeError(
            "shares must be a 2-D uint64 array (one share per row) or a sequence of "
            f"1-D uint64 arrays, got {type(shares).__name__}"
        )
    rows = [uint64_array(row, f"shares[{j}]", ndim=1) for j, row in enumerate(shares)]
    for j, row in enumerate(rows):
        if row.size != rows[0].size:
            raise ValueError(
                f"all shares must have the same length, but shares[0] has {rows[0].size} "
                f"elements and shares[{j}] has {row.size}"
            )
    return rows
