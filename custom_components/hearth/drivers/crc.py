"""Sensirion CRC-8 (polynomial 0x31, init 0xFF, no reflection, final XOR 0x00).

SHT3x, SHT4x and SCD4x protect every 16-bit word they send or receive with it: the word is
transferred MSB first and followed by one CRC byte.
"""

from __future__ import annotations

from collections.abc import Iterable

from .errors import ChecksumError

POLYNOMIAL = 0x31
INIT = 0xFF
WORD_FRAME = 3  # two data bytes + one CRC byte


def _table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = ((crc << 1) ^ POLYNOMIAL) & 0xFF if crc & 0x80 else (crc << 1) & 0xFF
        table.append(crc)
    return tuple(table)


_TABLE = _table()


def sensirion_crc8(data: bytes) -> int:
    """CRC of `data` as the chips compute it (datasheet example: 0xBEEF -> 0x92)."""
    crc = INIT
    for byte in data:
        crc = _TABLE[crc ^ byte]
    return crc


def pack_words(words: Iterable[int]) -> bytes:
    """Serialise 16-bit words as Sensirion frames: MSB, LSB, CRC per word."""
    out = bytearray()
    for word in words:
        if not 0 <= word <= 0xFFFF:
            raise ValueError(f"{word} does not fit in a 16-bit word")
        pair = word.to_bytes(2, "big")
        out += pair
        out.append(sensirion_crc8(pair))
    return bytes(out)


def unpack_words(data: bytes) -> list[int]:
    """Check and strip the CRC of each 3-byte frame; raise ChecksumError on any mismatch."""
    if len(data) % WORD_FRAME:
        raise ValueError(f"{len(data)} bytes is not a whole number of 3-byte word frames")
    words = []
    for index in range(0, len(data), WORD_FRAME):
        pair, crc = data[index : index + 2], data[index + 2]
        expected = sensirion_crc8(pair)
        if crc != expected:
            raise ChecksumError(
                f"CRC mismatch in word {index // WORD_FRAME}: got 0x{crc:02X}, "
                f"expected 0x{expected:02X} for data {pair.hex()}"
            )
        words.append(int.from_bytes(pair, "big"))
    return words
