"""FieldRNG: AES-256-CTR keystream, rejection sampling into GF(P), determinism, uniformity."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from mpc_backend.arith import FieldRNG, P
from tests.backend import arith_reference as ref

SEED = bytes(range(32))


def keystream_words(seed: bytes, n: int) -> np.ndarray:
    """The first n little-endian 64-bit words of AES-256-CTR(key=seed, counter=0)."""
    encryptor = Cipher(algorithms.AES(seed), modes.CTR(bytes(16))).encryptor()
    return np.frombuffer(encryptor.update(bytes(8 * n)), dtype="<u8").astype(np.uint64)


class ScriptedRNG(FieldRNG):
    """FieldRNG whose keystream is a given word sequence, to drive the rejection path."""

    __slots__ = ("_words",)

    def __init__(self, words: list[int]) -> None:
        super().__init__(SEED)
        self._words: Iterator[int] = iter(words)

    def _keystream_into(self, words: np.ndarray) -> None:
        for i in range(words.size):
            words[i] = next(self._words)


def test_words_are_the_aes256_ctr_keystream() -> None:
    np.testing.assert_array_equal(FieldRNG(SEED).uint64(1000), keystream_words(SEED, 1000))


def test_field_elements_are_the_keystream_masked_to_61_bits() -> None:
    expected = keystream_words(SEED, 70_000) & np.uint64(P)
    assert not (expected == P).any()  # no rejection in this stretch of the stream
    np.testing.assert_array_equal(FieldRNG(SEED).field_elements(70_000), expected)


def test_stream_continues_across_calls_and_spans_chunks() -> None:
    one = FieldRNG(SEED)
    parts = [one.field_elements(3), one.field_elements(40_000), one.uint64(5)]
    whole = keystream_words(SEED, 40_008)
    np.testing.assert_array_equal(parts[0], whole[:3] & np.uint64(P))
    np.testing.assert_array_equal(parts[1], whole[3:40_003] & np.uint64(P))
    np.testing.assert_array_equal(parts[2], whole[40_003:])


def test_same_seed_same_stream_different_seeds_differ() -> None:
    np.testing.assert_array_equal(
        FieldRNG(SEED).field_elements(100), FieldRNG(SEED).field_elements(100)
    )
    other = bytes(31) + b"\x01"
    assert (FieldRNG(SEED).field_elements(100) != FieldRNG(other).field_elements(100)).all()
    assert (FieldRNG().uint64(4) != FieldRNG().uint64(4)).all()  # fresh random seeds


def test_rejection_sampling_drops_words_that_mask_to_p() -> None:
    words = [P, 3, 2**64 - 1, 2**61 + 5, P | 2**62, 9, 0, 2**63 + 11, 12]
    rng = ScriptedRNG(words)
    # P, 2^64-1 and P|2^62 all mask to P and are rejected; the rest keep their low 61 bits.
    np.testing.assert_array_equal(rng.field_elements(5), [3, 5, 9, 0, 11])
    np.testing.assert_array_equal(rng.field_elements(1), [12])


def test_all_elements_are_canonical() -> None:
    values = FieldRNG(SEED).field_elements(1_000_000)
    assert values.dtype == np.uint64
    assert int(values.max()) < P


@pytest.mark.parametrize(
    ("name", "buckets"),
    [
        ("top 4 bits", lambda v: v >> np.uint64(57)),
        ("low 8 bits", lambda v: v & np.uint64(255)),
        ("bits 29-35", lambda v: (v >> np.uint64(29)) & np.uint64(127)),
    ],
)
def test_field_elements_are_uniform(name: str, buckets: Callable[[np.ndarray], np.ndarray]) -> None:
    values = FieldRNG(b"uniformity test seed, 32 bytes!!").field_elements(400_000)
    counts = np.bincount(buckets(values).astype(np.int64))
    assert ref.chi_square(counts) < ref.chi_square_limit(counts.size - 1), name


def test_the_uniformity_check_detects_modulo_bias() -> None:
    words = FieldRNG(SEED).uint64(400_000)
    m = 3 * 2**62  # 2^64 = 4/3 m, so reducing mod m doubles the odds of [0, 2^62)
    counts = np.bincount((words % np.uint64(m) >> np.uint64(62)).astype(np.int64))
    assert ref.chi_square(counts) > ref.chi_square_limit(counts.size - 1)


@pytest.mark.parametrize(
    ("seed", "error", "message"),
    [
        (b"short", ValueError, r"seed must be exactly 32 bytes, got 5; use secrets.token_bytes"),
        (bytes(33), ValueError, "got 33"),
        ("x" * 32, TypeError, "seed must be bytes or None, got str"),
    ],
)
def test_bad_seed_is_refused(seed: object, error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        FieldRNG(seed)  # type: ignore[arg-type]


def test_bad_count_is_refused() -> None:
    rng = FieldRNG(SEED)
    with pytest.raises(ValueError, match="n must be non-negative, got -1"):
        rng.field_elements(-1)
    with pytest.raises(TypeError, match=r"n must be an integer, got 2\.0"):
        rng.uint64(2.0)  # type: ignore[arg-type]
    assert rng.field_elements(0).shape == (0,)
