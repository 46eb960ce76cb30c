"""Secret randomness for sharing: an AES-256-CTR keystream cut into uint64 words.

The key is the 32-byte seed, by default fresh from `secrets`. Field elements are
drawn by rejection sampling: mask a word to its low 61 bits and reject the one
value that is then not below P (probability 2^-61), so every element of GF(P) is
exactly equally likely. numpy's generators are never used here.
"""

from __future__ import annotations

import secrets
from typing import Final

import numpy as np
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from . import _field
from ._checks import P, U64Array, integer

SEED_BYTES: Final[int] = 32
"""Seed length: the AES-256 key."""

# Keystream is produced in slices this large so the zero input stays in cache.
_CHUNK_BYTES: Final[int] = 1 << 18
_ZEROS: Final[memoryview] = memoryview(bytes(_CHUNK_BYTES))


class FieldRNG:
    """Deterministic stream of uniform GF(P) elements and uint64 words from a seed.

    Two instances with the same seed yield the same stream; use the default
    (a fresh random seed) for anything secret and explicit seeds only in tests.
    An instance is not thread-safe: give each thread its own.
    """

    __slots__ = ("_keystream",)

    def __init__(self, seed: bytes | None = None) -> None:
        if seed is None:
            seed = secrets.token_bytes(SEED_BYTES)
        elif not isinstance(seed, bytes):
            raise TypeError(f"seed must be bytes or None, got {type(seed).__name__}")
        elif len(seed) != SEED_BYTES:
            raise ValueError(
                f"seed must be exactly {SEED_BYTES} bytes, got {len(seed)}; "
                f"use secrets.token_bytes({SEED_BYTES})"
            )
        # A zero nonce is safe: each key (seed) drives exactly one stream.
        self._keystream = Cipher(algorithms.AES(seed), modes.CTR(bytes(16))).encryptor()

    def uint64(self, n: int) -> U64Array:
        """n uniform 64-bit words (for sharing over the ring Z/2^64)."""
        out = np.empty(_length(n), np.uint64)
        self._keystream_into(out)
        return out

    def field_elements(self, n: int) -> U64Array:
        """n independent uniform elements of GF(P), each in [0, P)."""
        out = np.empty(_length(n), np.uint64)
        filled = 0
        while filled < out.size:
            rest = out[filled:]
            self._keystream_into(rest)
            if _field.mask61(rest) == 0:
                break
            kept = rest[rest != P]
            rest[: kept.size] = kept
            filled += kept.size
        return out

    def _keystream_into(self, words: U64Array) -> None:
        """Overwrite a 1-D contiguous uint64 array with the next keystream words."""
        raw = words.view(np.uint8)
        for start in range(0, raw.size, _CHUNK_BYTES):
            part = raw[start : start + _CHUNK_BYTES]
            self._keystream.update_into(_ZEROS[: part.size], part)


def _length(n: object) -> int:
    count = integer(n, "n")
    if count < 0:
        raise ValueError(f"n must be non-negative, got {count}")
    return count
