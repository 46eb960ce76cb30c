"""Shamir sharing over GF(P): correctness against the reference, linearity, secrecy, errors."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from mpc_backend.arith import (
    MAX_PARTIES,
    FieldRNG,
    P,
    aggregate_and_reconstruct,
    field_add,
    field_scale,
    lagrange_at_zero,
    shamir_reconstruct,
    shamir_share,
)
from tests.backend import arith_reference as ref

SCHEMES = [(1, 2), (1, 3), (2, 3), (2, 5), (3, 4), (4, 7)]  # (t, k)
elements = st.one_of(st.sampled_from([0, 1, P - 1]), st.integers(0, P - 1))
secret_vectors = hnp.arrays(np.uint64, st.integers(0, 12), elements=elements)
seeds = st.binary(min_size=32, max_size=32)


def distinct_xs(k: int) -> st.SearchStrategy[list[int]]:
    """k distinct x-coordinates, small (the common case) or anywhere in [1, P - 1]."""
    x = st.one_of(st.integers(1, 300), st.integers(2**32 - 2, 2**32 + 2), st.integers(1, P - 1))
    return st.lists(x, min_size=k, max_size=k, unique=True)


@settings(max_examples=40)
@given(secret_vectors, st.sampled_from(SCHEMES), seeds)
def test_every_subset_of_t_plus_1_or_more_shares_reconstructs(
    secrets: np.ndarray, scheme: tuple[int, int], seed: bytes
) -> None:
    t, k = scheme
    shares = shamir_share(secrets, t, k, FieldRNG(seed))
    assert shares.shape == (k, secrets.size)
    for size in range(t + 1, k + 1):
        for subset in itertools.combinations(range(k), size):
            xs = [j + 1 for j in subset]
            np.testing.assert_array_equal(shamir_reconstruct(shares[list(subset)], xs, t), secrets)
            rows = [shares[j] for j in reversed(subset)]
            np.testing.assert_array_equal(shamir_reconstruct(rows, xs[::-1], t), secrets)


@settings(max_examples=60)
@given(st.data(), secret_vectors, st.sampled_from(SCHEMES), seeds)
def test_shares_are_a_degree_t_polynomial_through_the_secret(
    data: st.DataObject, secrets: np.ndarray, scheme: tuple[int, int], seed: bytes
) -> None:
    t, k = scheme
    xs = data.draw(distinct_xs(k))
    shares = shamir_share(secrets, t, k, FieldRNG(seed), xs=xs)
    for i in range(secrets.size):
        ys = [int(v) for v in shares[:, i]]
        poly = ref.interpolate(xs[: t + 1], ys[: t + 1])
        assert poly[0] == int(secrets[i])
        assert [ref.evaluate(poly, x) for x in xs] == ys
        np.testing.assert_array_equal(
            shamir_reconstruct(shares[:, i : i + 1], xs, t), secrets[i : i + 1]
        )


def x_points(kind: str, k: int) -> list[int]:
    """x-coordinates: 1..k (forward differences for t <= 4), 2..k+1 (Horner, x < 2^32)
    or large ones (Horner with two-limb x)."""
    if kind == "default":
        return list(range(1, k + 1))
    if kind == "shifted":
        return list(range(2, k + 2))
    return [P - 1 - 977 * j for j in range(k)]


def polynomial_rows(secrets: np.ndarray, coefficients: np.ndarray, xs: list[int]) -> np.ndarray:
    """f(x) = secrets + sum_m coefficients[:, m - 1] x^m for each x, from the element-wise
    field operations (themselves checked against the Python-integer reference)."""
    rows = []
    for x in xs:
        row = secrets
        for m in range(coefficients.shape[1]):
            term = field_scale(np.ascontiguousarray(coefficients[:, m]), x ** (m + 1))
            row = field_add(row, term)
        rows.append(row)
    return np.stack(rows)


@pytest.mark.parametrize(("t", "k"), [(1, 3), (2, 5), (3, 9), (4, 7), (5, 8)])
@pytest.mark.parametrize("xs", ["default", "shifted", "large"])
def test_shares_equal_reference_evaluation_of_the_drawn_coefficients(
    t: int, k: int, xs: str
) -> None:
    """Secret i's coefficients of x^1..x^t are the next t field elements of the RNG."""
    n = 40_003  # three keystream blocks of 16384 secrets, many kernel tiles, odd tail
    points = x_points(xs, k)
    secrets = FieldRNG(b"s" * 32).field_elements(n)
    secrets[:3] = [0, 1, P - 1]
    secrets[-1] = P - 1
    shares = shamir_share(secrets, t, k, FieldRNG(bytes(32)), xs=points)
    coefficients = FieldRNG(bytes(32)).field_elements(t * n).reshape(n, t)
    for i in (0, 1, 2, 7, 8, 511, 512, 16383, 16384, 32768, n - 2, n - 1):
        poly = [int(secrets[i]), *(int(c) for c in coefficients[i])]
        assert [int(v) for v in shares[:, i]] == [ref.evaluate(poly, x) for x in points]
    np.testing.assert_array_equal(shares, polynomial_rows(secrets, coefficients, points))


@pytest.mark.parametrize(("t", "k", "n"), [(2, 5, 420_001), (4, 6, 350_000)])
def test_large_outputs_written_with_streaming_stores_are_exact(t: int, k: int, n: int) -> None:
    """Outputs of 16 MiB and more take the streaming-store path; an odd n leaves every
    other row unaligned to 16 bytes."""
    secrets = FieldRNG(b"L" * 32).field_elements(n)
    shares = shamir_share(secrets, t, k, FieldRNG(b"l" * 32))
    coefficients = FieldRNG(b"l" * 32).field_elements(t * n).reshape(n, t)
    expected = polynomial_rows(secrets, coefficients, x_points("default", k))
    np.testing.assert_array_equal(shares, expected)
    for i in (0, 1, n // 2, n - 1):
        poly = [int(secrets[i]), *(int(c) for c in coefficients[i])]
        assert [int(v) for v in shares[:, i]] == [ref.evaluate(poly, x) for x in range(1, k + 1)]


class RejectingRNG(FieldRNG):
    """FieldRNG whose keystream has words that mask to P at given stream positions."""

    __slots__ = ("_drawn", "_rejects")

    def __init__(self, seed: bytes, rejects: set[int]) -> None:
        super().__init__(seed)
        self._drawn = 0
        self._rejects = rejects

    def _keystream_into(self, words: np.ndarray) -> None:
        super()._keystream_into(words)
        for position in self._rejects:
            if self._drawn <= position < self._drawn + words.size:
                words[position - self._drawn] = 2**64 - 1  # masks to P
        self._drawn += words.size


def test_rejected_draws_are_skipped_in_stream_order() -> None:
    """Words that mask to P, in the first and a later keystream block, are dropped and the
    coefficients continue with the next words, exactly as field_elements draws them."""
    t, k, n = 2, 5, 20_000
    rejects = {5, 6, 32_768 + 9}  # two adjacent in block 0, one in block 1
    secrets = FieldRNG(b"r" * 32).field_elements(n)
    shares = shamir_share(secrets, t, k, RejectingRNG(bytes(32), rejects))
    raw = FieldRNG(bytes(32)).uint64(t * n + len(rejects))
    raw[sorted(rejects)] = 2**64 - 1
    kept = raw & np.uint64(P)
    coefficients = kept[kept != P].reshape(n, t)
    np.testing.assert_array_equal(
        coefficients, RejectingRNG(bytes(32), rejects).field_elements(t * n).reshape(n, t)
    )
    np.testing.assert_array_equal(shares, polynomial_rows(secrets, coefficients, [1, 2, 3, 4, 5]))
    for i in (0, 1, 2, 3, 4, 16_383, 16_384, 16_388, n - 1):
        poly = [int(secrets[i]), *(int(c) for c in coefficients[i])]
        assert [int(v) for v in shares[:, i]] == [ref.evaluate(poly, x) for x in range(1, 6)]


def test_out_receives_the_same_shares_as_a_fresh_array() -> None:
    secrets = FieldRNG(b"o" * 32).field_elements(3001)
    out = np.full((5, 3001), 7, np.uint64)
    result = shamir_share(secrets, 2, 5, FieldRNG(bytes(32)), out=out)
    assert result is out
    np.testing.assert_array_equal(out, shamir_share(secrets, 2, 5, FieldRNG(bytes(32))))


def read_only(shape: tuple[int, int]) -> np.ndarray:
    array = np.empty(shape, np.uint64)
    array.setflags(write=False)
    return array


def test_bad_out_is_refused() -> None:
    base = np.arange(12, dtype=np.uint64)
    secrets = base[:4]
    cases: list[tuple[object, type, str]] = [
        ([[0] * 4] * 3, TypeError, "out must be a numpy array or None, got list"),
        (np.empty((3, 4), np.int64), TypeError, "out must have dtype uint64 .*got int64"),
        (np.empty((3, 4), ">u8"), TypeError, "out must have dtype uint64 .*got >u8"),
        (np.empty((4, 3), np.uint64), ValueError, r"shape \(k, n\) = \(3, 4\), got \(4, 3\)"),
        (np.empty((3, 8), np.uint64)[:, ::2], ValueError, "must be C-contiguous"),
        (read_only((3, 4)), ValueError, "must be writeable"),
        (base.reshape(3, 4), ValueError, "must not overlap secrets"),
    ]
    for out, error, message in cases:
        with pytest.raises(error, match=message):
            shamir_share(secrets, 1, 3, FieldRNG(bytes(32)), out=out)  # type: ignore[arg-type]
    np.testing.assert_array_equal(base, np.arange(12, dtype=np.uint64))  # nothing written


@settings(max_examples=40)
@given(secret_vectors, st.sampled_from(SCHEMES), seeds, st.integers(0, P - 1))
def test_sharing_is_linear(
    secrets: np.ndarray, scheme: tuple[int, int], seed: bytes, c: int
) -> None:
    t, k = scheme
    rng = FieldRNG(seed)
    other = rng.field_elements(secrets.size)
    summed = field_add(shamir_share(secrets, t, k, rng), shamir_share(other, t, k, rng))
    scaled = field_scale(shamir_share(secrets, t, k, rng), c)
    for subset in itertools.combinations(range(1, k + 1), t + 1):
        rows = [j - 1 for j in subset]
        np.testing.assert_array_equal(
            shamir_reconstruct(summed[rows], subset, t), ref.field_add(secrets, other)
        )
        np.testing.assert_array_equal(
            shamir_reconstruct(scaled[rows], subset, t), ref.field_scale(secrets, c)
        )


def test_aggregate_and_reconstruct_returns_the_sum_of_contributions() -> None:
    t, k, n = 2, 5, 300
    rng = FieldRNG(b"a" * 32)
    contributions = [rng.field_elements(n) for _ in range(9)]
    shares = [shamir_share(c, t, k, rng) for c in contributions]
    stacks = [np.stack([s[j] for s in shares]) for j in range(k)]  # what member j holds
    expected = ref.field_sum_rows(np.stack(contributions))
    np.testing.assert_array_equal(aggregate_and_reconstruct(stacks, range(1, k + 1), t), expected)
    np.testing.assert_array_equal(aggregate_and_reconstruct(stacks[2:], [3, 4, 5], t), expected)


@given(st.integers(2, 8).flatmap(distinct_xs), seeds)
def test_lagrange_coefficients_recover_f_at_zero(xs: list[int], seed: bytes) -> None:
    poly = [int(v) for v in FieldRNG(seed).field_elements(len(xs))]  # degree len(xs) - 1
    weights = lagrange_at_zero(xs)
    assert sum(w * ref.evaluate(poly, x) for w, x in zip(weights, xs, strict=True)) % P == poly[0]
    assert lagrange_at_zero(tuple(xs)) is weights  # cached per x-set


@pytest.mark.parametrize(("t", "k"), [(1, 3), (2, 5), (3, 5)])
@pytest.mark.parametrize("secret", [0, P - 1])
def test_any_t_shares_are_uniform(t: int, k: int, secret: int) -> None:
    """Joint low bits of every t-subset of shares are uniform whatever the secret."""
    n = 120_000
    shares = shamir_share(np.full(n, secret, np.uint64), t, k, FieldRNG(b"u" * 32))
    bits = 6 // t  # 2^6 joint buckets for every t
    mask = np.uint64(2**bits - 1)
    for subset in itertools.combinations(range(k), t):
        joint = np.zeros(n, np.int64)
        for j in subset:
            joint = (joint << bits) | (shares[j] & mask).astype(np.int64)
        counts = np.bincount(joint, minlength=2 ** (bits * t))
        assert ref.chi_square(counts) < ref.chi_square_limit(counts.size - 1), subset


def test_the_secrecy_check_detects_t_plus_1_shares() -> None:
    """Control: the same statistic on a combination of t + 1 shares sees the secret."""
    t, k, n = 2, 5, 120_000
    shares = shamir_share(np.full(n, 12345, np.uint64), t, k, FieldRNG(b"u" * 32))
    weights = lagrange_at_zero([1, 2, 3])
    combined = field_add(
        field_add(field_scale(shares[0], weights[0]), field_scale(shares[1], weights[1])),
        field_scale(shares[2], weights[2]),
    )
    counts = np.bincount((combined & np.uint64(63)).astype(np.int64), minlength=64)
    assert ref.chi_square(counts) > ref.chi_square_limit(63)


def test_noncanonical_secrets_and_shares_are_refused() -> None:
    rng = FieldRNG(bytes(32))
    secrets = np.arange(3000, dtype=np.uint64)
    secrets[2500] = P
    with pytest.raises(ValueError, match=rf"secrets\.flat\[2500\] = {P}; reduce values mod P"):
        shamir_share(secrets, 1, 3, rng)
    shares = shamir_share(np.arange(3000, dtype=np.uint64), 1, 3, rng)
    shares[1, 7] = 2**64 - 1
    with pytest.raises(ValueError, match=rf"shares\[1\]\.flat\[7\] = {2**64 - 1}"):
        shamir_reconstruct(shares, [1, 2, 3], 1)


@pytest.mark.parametrize(
    ("t", "k", "xs", "error", "message"),
    [
        (2, 2, None, ValueError, r"t must be below k: t \+ 1 = 3 shares .* only k = 2"),
        (3, 2, None, ValueError, "t must be below k"),
        (0, 3, None, ValueError, "t must be at least 1"),
        (-1, 3, None, ValueError, "t must be at least 1"),
        (1, 1, None, ValueError, "k must be between 2 and 256, got 1"),
        (1, MAX_PARTIES + 1, None, ValueError, "k must be between 2 and 256, got 257"),
        (1.0, 3, None, TypeError, "t must be an integer, got 1.0"),
        (1, "3", None, TypeError, "k must be an integer, got '3'"),
        (1, 3, [1, 2, 2], ValueError, r"xs must be distinct, but \[2\] appear more than once"),
        (1, 3, [0, 1, 2], ValueError, r"xs\[0\] = 0 is not a valid x-coordinate"),
        (1, 3, [1, 2, P], ValueError, rf"xs\[2\] = {P} is not a valid x-coordinate"),
        (1, 3, [1, -2, 3], ValueError, r"xs\[1\] = -2 is not a valid"),
        (1, 3, [1, 2], ValueError, "xs must have k = 3 x-coordinates, got 2"),
        (1, 3, [1, 2.5, 3], TypeError, r"xs\[1\] must be an integer"),
        (1, 3, "abc", TypeError, "xs must be a sequence of integers, got str"),
    ],
)
def test_bad_sharing_parameters_are_refused(
    t: object, k: object, xs: object, error: type, message: str
) -> None:
    with pytest.raises(error, match=message):
        shamir_share(np.zeros(4, np.uint64), t, k, FieldRNG(bytes(32)), xs=xs)  # type: ignore[arg-type]


def test_bad_secrets_or_rng_are_refused() -> None:
    rng = FieldRNG(bytes(32))
    with pytest.raises(TypeError, match=r"secrets must have dtype uint64 .*got int64"):
        shamir_share(np.zeros(4, np.int64), 1, 3, rng)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"secrets must be 1-D, got shape \(2, 2\)"):
        shamir_share(np.zeros((2, 2), np.uint64), 1, 3, rng)
    with pytest.raises(TypeError, match="rng must be a FieldRNG, got Generator"):
        shamir_share(np.zeros(4, np.uint64), 1, 3, np.random.default_rng())  # type: ignore[arg-type]


def test_bad_reconstruction_inputs_are_refused() -> None:
    shares = shamir_share(np.arange(5, dtype=np.uint64), 2, 5, FieldRNG(bytes(32)))
    with pytest.raises(ValueError, match=r"need at least t \+ 1 = 3 shares .* got 2"):
        shamir_reconstruct(shares[:2], [1, 2], 2)
    with pytest.raises(ValueError, match=r"need at least t \+ 1 = 3 shares .*, got 0"):
        shamir_reconstruct([], [], 2)
    with pytest.raises(ValueError, match="got 3 shares but 4 x-coordinates"):
        shamir_reconstruct(shares[:3], [1, 2, 3, 4], 2)
    with pytest.raises(ValueError, match=r"xs must be distinct, but \[1\]"):
        shamir_reconstruct(shares[:3], [1, 1, 3], 2)
    with pytest.raises(ValueError, match=r"xs\[2\] = 0 is not a valid x-coordinate"):
        shamir_reconstruct(shares[:3], [1, 2, 0], 2)
    with pytest.raises(ValueError, match="shares must be 2-D, got shape"):
        shamir_reconstruct(shares[0], [1, 2, 3], 2)
    with pytest.raises(ValueError, match=r"shares\[0\] has 5 elements and shares\[1\] has 4"):
        shamir_reconstruct([shares[0], shares[1, :4], shares[2]], [1, 2, 3], 2)
    with pytest.raises(TypeError, match=r"shares\[1\] must have dtype uint64"):
        shamir_reconstruct([shares[0], shares[1].astype(np.int64), shares[2]], [1, 2, 3], 2)
    with pytest.raises(TypeError, match=r"shares must be a 2-D uint64 array .* got int"):
        shamir_reconstruct(7, [1, 2, 3], 2)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="t must be between 1 and 255, got 0"):
        shamir_reconstruct(shares, [1, 2, 3, 4, 5], 0)


def test_aggregate_needs_matching_stacks() -> None:
    stacks = [np.zeros((3, 4), np.uint64), np.zeros((2, 4), np.uint64)]
    with pytest.raises(ValueError, match=r"same .* stack of shares.*agree on the contributor set"):
        aggregate_and_reconstruct(stacks, [1, 2], 1)
