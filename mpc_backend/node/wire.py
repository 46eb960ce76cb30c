"""Byte forms on the wire: shares are raw little-endian uint64 field elements."""

from __future__ import annotations

import numpy as np

from mpc_backend.arith import P

_LE_U64 = np.dtype("<u8")


def pack_elements(values: np.ndarray) -> bytes:
    """Field elements as raw little-endian uint64 bytes."""
    return np.ascontiguousarray(values, dtype=_LE_U64).tobytes()


def unpack_elements(data: bytes, length: int) -> np.ndarray:
    """Parse ``length`` field elements; ValueError if the size or a value is wrong."""
    if len(data) != 8 * length:
        raise ValueError(f"expected {length} field elements ({8 * length} bytes), got {len(data)}")
    values = np.frombuffer(data, dtype=_LE_U64).astype(np.uint64)
    if values.size and int(values.max()) >= P:
        raise ValueError("a field element is not below the modulus P")
    return values
