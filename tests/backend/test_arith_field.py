"""Compiled GF(2^61 - 1) operations against the Python-integer reference."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from mpc_backend.arith import (
    P,
    field_add,
    field_mul,
    field_neg,
    field_scale,
    field_sub,
    field_sum_rows,
)
from tests.backend import arith_reference as ref

EDGES = [0, 1, 2, P - 2, P - 1]
elements = st.one_of(st.sampled_from(EDGES), st.integers(0, P - 1))
shapes = hnp.array_shapes(min_dims=1, max_dims=2, min_side=0, max_side=24)

BINARY: list[tuple[Callable[..., np.ndarray], Callable[..., np.ndarray]]] = [
    (field_add, ref.field_add),
    (field_sub, ref.field_sub),
    (field_mul, ref.field_mul),
]
NONCANONICAL = [P, P + 1, 2**61, 2**62 + 5, 2**64 - 1]


def random_field(rng: np.random.Generator, n: int, offset: int = 0) -> np.ndarray:
    """n random canonical elements with every edge value present, starting `offset`
    words into a larger buffer so the kernels see unaligned memory."""
    base = rng.integers(0, P, n + offset, dtype=np.uint64)
    a = base[offset:]
    a[: min(n, len(EDGES))] = EDGES[: min(n, len(EDGES))]
    a[n - min(n, len(EDGES)) :] = EDGES[len(EDGES) - min(n, len(EDGES)) :]
    return a


@given(st.data(), shapes)
def test_binary_ops_match_reference(data: st.DataObject, shape: tuple[int, ...]) -> None:
    a = data.draw(hnp.arrays(np.uint64, shape, elements=elements))
    b = data.draw(hnp.arrays(np.uint64, shape, elements=elements))
    for op, expected in BINARY:
        result = op(a, b)
        assert result.dtype == np.uint64
        np.testing.assert_array_equal(result, expected(a, b), err_msg=op.__name__)


@given(hnp.arrays(np.uint64, shapes, elements=elements))
def test_neg_matches_reference_and_cancels(a: np.ndarray) -> None:
    np.testing.assert_array_equal(field_neg(a), ref.field_neg(a))
    np.testing.assert_array_equal(field_add(a, field_neg(a)), np.zeros_like(a))


@given(
    hnp.arrays(np.uint64, shapes, elements=elements),
    st.one_of(st.sampled_from([0, 1, -1, P - 1, P, 2**64]), st.integers(-(2**80), 2**80)),
)
def test_scale_matches_reference_for_any_integer(a: np.ndarray, c: int) -> None:
    np.testing.assert_array_equal(field_scale(a, c), ref.field_scale(a, c % P))


@given(hnp.arrays(np.uint64, st.tuples(st.integers(0, 40), st.integers(0, 30)), elements=elements))
def test_sum_rows_matches_reference(x: np.ndarray) -> None:
    np.testing.assert_array_equal(field_sum_rows(x), ref.field_sum_rows(x))


@pytest.mark.parametrize("n", [1, 7, 8, 9, 1023, 1024, 1025, 4099])
@pytest.mark.parametrize("offset", [0, 1, 3])
def test_large_unaligned_arrays_match_reference(n: int, offset: int) -> None:
    rng = np.random.default_rng(n * 10 + offset)
    a = random_field(rng, n, offset)
    b = random_field(rng, n, offset + 2)
    for op, expected in BINARY:
        np.testing.assert_array_equal(op(a, b), expected(a, b), err_msg=op.__name__)
    np.testing.assert_array_equal(field_neg(a), ref.field_neg(a))
    np.testing.assert_array_equal(field_scale(a, P - 3), ref.field_scale(a, P - 3))


@pytest.mark.parametrize("shape", [(1, 5000), (3, 3001), (1000, 17), (2, 1), (257, 1025)])
def test_sum_rows_of_large_stacks(shape: tuple[int, int]) -> None:
    rng = np.random.default_rng(shape[0])
    x = rng.integers(0, P, shape, dtype=np.uint64)
    x[:, :3] = P - 1  # worst case for the running sum
    np.testing.assert_array_equal(field_sum_rows(x), ref.field_sum_rows(x))


def test_strided_and_read_only_inputs_are_accepted() -> None:
    rng = np.random.default_rng(5)
    a = rng.integers(0, P, (40, 6), dtype=np.uint64)
    b = rng.integers(0, P, (6, 40), dtype=np.uint64).T
    a.setflags(write=False)
    np.testing.assert_array_equal(field_mul(a, b), ref.field_mul(a, np.ascontiguousarray(b)))
    np.testing.assert_array_equal(field_sum_rows(b), ref.field_sum_rows(np.ascontiguousarray(b)))


@pytest.mark.parametrize("bad", NONCANONICAL)
@pytest.mark.parametrize("where", [0, 6, 1500, 2999])
@pytest.mark.parametrize("operand", ["a", "b"])
def test_binary_ops_reject_noncanonical_operands(bad: int, where: int, operand: str) -> None:
    rng = np.random.default_rng(where)
    ops = {"a": random_field(rng, 3000, 1), "b": random_field(rng, 3000, 2)}
    ops[operand][where] = bad
    for op, _ in BINARY:
        with pytest.raises(ValueError, match=rf"{operand}\.flat\[{where}\] = {bad}; reduce"):
            op(ops["a"], ops["b"])


@pytest.mark.parametrize("bad", NONCANONICAL)
def test_unary_ops_and_sum_rows_reject_noncanonical_input(bad: int) -> None:
    a = np.arange(2000, dtype=np.uint64)
    a[1999] = bad
    with pytest.raises(ValueError, match=rf"a\.flat\[1999\] = {bad}"):
        field_neg(a)
    with pytest.raises(ValueError, match=rf"a\.flat\[1999\] = {bad}"):
        field_scale(a, 3)
    with pytest.raises(ValueError, match=rf"x must hold canonical .* x\.flat\[1999\] = {bad}"):
        field_sum_rows(a.reshape(4, 500))


@pytest.mark.parametrize(
    ("value", "error", "message"),
    [
        ([1, 2, 3], TypeError, "a must be a numpy array of dtype uint64, got list"),
        (np.arange(3, dtype=np.int64), TypeError, "a must have dtype uint64.*got int64"),
        (np.arange(3, dtype=np.float64), TypeError, "got float64"),
        (np.arange(3, dtype=">u8"), TypeError, "native byte order"),
        (np.uint64(3), TypeError, "got uint64"),
        (np.array(3, dtype=np.uint64), ValueError, "at least one dimension"),
    ],
)
def test_wrong_type_or_dtype_is_refused(value: object, error: type, message: str) -> None:
    good = np.arange(3, dtype=np.uint64)
    with pytest.raises(error, match=message):
        field_add(value, good)  # type: ignore[arg-type]
    with pytest.raises(error, match=message):
        field_neg(value)  # type: ignore[arg-type]


def test_shape_mismatch_is_refused() -> None:
    with pytest.raises(ValueError, match=r"a and b must have the same shape, got \(3,\) and \(4"):
        field_mul(np.zeros(3, np.uint64), np.zeros(4, np.uint64))
    with pytest.raises(ValueError, match=r"same shape, got \(2, 3\) and \(3, 2\)"):
        field_sub(np.zeros((2, 3), np.uint64), np.zeros((3, 2), np.uint64))


def test_sum_rows_needs_a_2d_array_and_scale_an_integer() -> None:
    with pytest.raises(ValueError, match=r"x must be 2-D, got shape \(5,\)"):
        field_sum_rows(np.zeros(5, np.uint64))
    with pytest.raises(TypeError, match=r"c must be an integer, got 1\.5"):
        field_scale(np.zeros(5, np.uint64), 1.5)  # type: ignore[arg-type]


def test_sum_of_no_rows_is_zero() -> None:
    np.testing.assert_array_equal(field_sum_rows(np.zeros((0, 4), np.uint64)), np.zeros(4))
