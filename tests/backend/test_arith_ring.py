"""Z/2^64 arithmetic and additive n-of-n sharing against the Python-integer reference."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from mpc_backend.arith import FieldRNG, ring_add, ring_share, ring_sub, ring_sum_rows
from tests.backend import arith_reference as ref

TOP = 2**64 - 1
words = st.one_of(st.sampled_from([0, 1, 2**63, TOP - 1, TOP]), st.integers(0, TOP))
shapes = hnp.array_shapes(min_dims=1, max_dims=2, min_side=0, max_side=24)


@given(st.data(), shapes)
def test_add_and_sub_wrap_like_the_reference(data: st.DataObject, shape: tuple[int, ...]) -> None:
    a = data.draw(hnp.arrays(np.uint64, shape, elements=words))
    b = data.draw(hnp.arrays(np.uint64, shape, elements=words))
    np.testing.assert_array_equal(ring_add(a, b), ref.ring_add(a, b))
    np.testing.assert_array_equal(ring_sub(a, b), ref.ring_sub(a, b))


@given(hnp.arrays(np.uint64, st.tuples(st.integers(0, 30), st.integers(0, 20)), elements=words))
def test_sum_rows_wraps_like_the_reference(x: np.ndarray) -> None:
    np.testing.assert_array_equal(ring_sum_rows(x), ref.ring_sum_rows(x))


@given(
    hnp.arrays(np.uint64, st.integers(0, 30), elements=words),
    st.integers(2, 7),
    st.binary(min_size=32, max_size=32),
)
def test_additive_shares_sum_to_the_secret(secrets: np.ndarray, n: int, seed: bytes) -> None:
    shares = ring_share(secrets, n, FieldRNG(seed))
    assert shares.shape == (n, secrets.size)
    np.testing.assert_array_equal(ref.ring_sum_rows(shares), secrets)


def test_any_n_minus_1_additive_shares_are_uniform() -> None:
    n, size = 3, 120_000
    shares = ring_share(np.full(size, TOP, np.uint64), n, FieldRNG(b"r" * 32))
    for pair in itertools.combinations(range(n), n - 1):
        low = [(shares[j] & np.uint64(7)).astype(np.int64) for j in pair]
        joint = (low[0] << 3) | low[1]
        counts = np.bincount(joint, minlength=64)
        assert ref.chi_square(counts) < ref.chi_square_limit(63), pair


def test_bad_ring_inputs_are_refused() -> None:
    with pytest.raises(ValueError, match=r"a and b must have the same shape, got \(2,\) and \(3"):
        ring_add(np.zeros(2, np.uint64), np.zeros(3, np.uint64))
    with pytest.raises(TypeError, match=r"b must have dtype uint64.*got int32"):
        ring_sub(np.zeros(2, np.uint64), np.zeros(2, np.int32))
    with pytest.raises(ValueError, match=r"x must be 2-D, got shape \(4,\)"):
        ring_sum_rows(np.zeros(4, np.uint64))
    rng = FieldRNG(bytes(32))
    with pytest.raises(ValueError, match="n must be between 2 and 256, got 1"):
        ring_share(np.zeros(4, np.uint64), 1, rng)
    with pytest.raises(ValueError, match=r"secrets must be 1-D, got shape \(2, 2\)"):
        ring_share(np.zeros((2, 2), np.uint64), 3, rng)
    with pytest.raises(TypeError, match="rng must be a FieldRNG, got NoneType"):
        ring_share(np.zeros(4, np.uint64), 3, None)  # type: ignore[arg-type]
