"""FieldRNG: AES-256-CTR keystream in segments, rejection sampling into GF(P), determinism,
uniformity."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from mpc_backend.arith import FieldRNG, P
from mpc_backend.arith import rng as rng_module
from tests.backend import arith_reference as ref

SEED = bytes(range(32))


def ctr_bytes(seed: bytes, segment: int, size: int) -> bytes:
    """The first `size` bytes of AES-256-CTR(key=seed) from counter block segment || 2."""
    counter = segment.to_bytes(12, "big") + (2).to_bytes(4, "big")
    return Cipher(algorithms.AES(seed), modes.CTR(counter)).encryptor().update(bytes(size))


def keystream_words(seed: bytes, n: int) -> np.ndarray:
    """The first n little-endian 64-bit words of the stream (all in segment 0)."""
    return np.frombuffer(ctr_bytes(seed, 0, 8 * n), dtype="<u8").astype(np.uint64)


@pytest.fixture(params=[True, False], ids=["gcm-engine", "ctr-engine"])
def engine(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run a test with the keystream produced by OpenSSL's GCM and by its plain CTR."""
    monkeypatch.setattr(rng_module, "_GCM_ENGINE", request.param)


class ScriptedRNG(FieldRNG):
    """FieldRNG whose keystream is a given word sequence, to drive the rejection path."""

    __slots__ = ("_words",)

    def __init__(self, words: list[int]) -> None:
        super().__init__(SEED)
        self._words: Iterator[int] = iter(words)

    def _keystream_into(self, words: np.ndarray) -> None:
        for i in range(words.size):
            words[i] = next(self._words)


@pytest.mark.usefixtures("engine")
def test_words_are_the_aes256_ctr_keystream() -> None:
    np.testing.assert_array_equal(FieldRNG(SEED).uint64(1000), keystream_words(SEED, 1000))


@pytest.mark.usefixtures("engine")
def test_segments_continue_the_stream_from_the_next_nonce(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(rng_module, "_SEGMENT_BYTES", 1000)  # not a whole number of words
    rng = FieldRNG(SEED)
    words = np.concatenate([rng.uint64(3), rng.uint64(200), rng.uint64(330)])
    stream = b"".join(ctr_bytes(SEED, segment, 1000) for segment in range(5))
    expected = np.frombuffer(stream[: 8 * words.size], dtype="<u8")
    np.testing.assert_array_equal(words, expected)


def test_field_elements_are_the_keystream_masked_to_61_bits() -> None:
    expected = keystream_words(SEED, 70_000) & np.uint64(P)
    assert not (expected == P).any()  # no rejection in this stretch of the stream
    np.testing.assert_array_equal(FieldRNG(SEED).field_elements(70_000), expected)


@pytest.mark.usefixtures("engine")
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
