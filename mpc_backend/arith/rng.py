"""Secret randomness for sharing: an AES-256-CTR keystream cut into uint64 words.

The key is the 32-byte seed, by default fresh from `secrets`. The stream is cut
into segments of 2^35 bytes; segment s is the counter-mode keystream from
counter block s || 2 (s as a 96-bit big-endian nonce, then a 32-bit block
counter that starts at 2 and never wraps within a segment). No counter block
repeats under the key, which is all counter mode needs to be a PRG.

This layout lets OpenSSL's AES-256-GCM produce the stream: GCM encrypts with
exactly this counter sequence (block counter 1 is reserved for the tag, which
is never computed or used), so its encryption of zeros is the keystream. On
x86-64, OpenSSL's GCM code is vectorised (VAES, AVX-512) and its plain CTR code
is not: 0.7 instead of 1.8 ns per two words measured, for the same bytes.
Elsewhere (e.g. the Raspberry Pi 4, without AES instructions) GCM would only
add GHASH's work, so plain CTR produces the same stream there. GCM's cap of
2^36 - 32 bytes per message is why segments exist.

Field elements are drawn by rejection sampling: mask a word to its low 61 bits
and reject the one value that is then not below P (probability 2^-61), so every
element of GF(P) is exactly equally likely. numpy's generators are never used here.
"""

from __future__ import annotations

import platform
import secrets
from typing import Final

import numpy as np
from cryptography.hazmat.primitives.ciphers import Cipher, CipherContext, algorithms, modes

from . import _field
from ._checks import P, U64Array, integer

SEED_BYTES: Final[int] = 32
"""Seed length: the AES-256 key."""

# Keystream is produced in slices this large so the zero input stays in cache.
_CHUNK_BYTES: Final[int] = 1 << 18
_ZEROS: Final[memoryview] = memoryview(bytes(_CHUNK_BYTES))
# Keystream bytes per segment (below GCM's cap of 2^36 - 32 per message), the width of
# the segment number (GCM's nonce) and the first block counter of a segment.
_SEGMENT_BYTES: Final[int] = 1 << 35
_NONCE_BYTES: Final[int] = 12
_FIRST_BLOCK: Final[bytes] = (2).to_bytes(4, "big")
_GCM_ENGINE: Final[bool] = platform.machine().lower() in {"x86_64", "amd64"}


class FieldRNG:
    """Deterministic stream of uniform GF(P) elements and uint64 words from a seed.

    Two instances with the same seed yield the same stream; use the default
    (a fresh random seed) for anything secret and explicit seeds only in tests.
    An instance is not thread-safe: give each thread its own.
    """

    __slots__ = ("_key", "_keystream", "_left", "_segment")

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
        self._key = seed
        self._segment = -1
        self._left = 0
        self._keystream = self._next_segment()

    def uint64(self, n: int) -> U64Array:
        """n uniform 64-bit words (for sharing over the ring Z/2^64)."""
        out = np.empty(_length(n), np.uint64)
        self._keystream_into(out)
        return out

    def field_elements(self, n: int) -> U64Array:
        """n independent uniform elements of GF(P), each in [0, P)."""
        out = np.empty(_length(n), np.uint64)
        self._keystream_into(out)
        self._accept(out)
        return out

    # _keystream_into and _accept are also the drawing steps of Shamir sharing's kernel.

    def _keystream_into(self, words: U64Array) -> None:
        """Overwrite a 1-D contiguous uint64 array with the next keystream words."""
        raw = words.view(np.uint8)
        start = 0
        while start < raw.size:
            if self._left == 0:
                self._keystream = self._next_segment()
            size = min(raw.size - start, _CHUNK_BYTES, self._left)
            self._keystream.update_into(_ZEROS[:size], raw[start : start + size])
            self._left -= size
            start += size

    def _accept(self, words: U64Array) -> None:
        """Turn keystream words just drawn into the next field elements, in place: mask each
        to 61 bits, drop those equal to P and top up from the stream, keeping order."""
        rest = words
        while _field.mask61(rest):
            kept = rest[rest != P]
            rest[: kept.size] = kept
            rest = rest[kept.size :]
            self._keystream_into(rest)

    def _next_segment(self) -> CipherContext:
        self._segment += 1
        self._left = _SEGMENT_BYTES
        nonce = self._segment.to_bytes(_NONCE_BYTES, "big")
        mode = modes.GCM(nonce) if _GCM_ENGINE else modes.CTR(nonce + _FIRST_BLOCK)
        return Cipher(algorithms.AES(self._key), mode).encryptor()


def _length(n: object) -> int:
    count = integer(n, "n")
    if count < 0:
        raise ValueError(f"n must be non-negative, got {count}")
    return count
