"""Sensirion SHT4x (SHT40/41/45) humidity and temperature sensor at 0x44, 0x45 or 0x46.

Commands are single bytes. Measure with high precision (0xFD, max 8.3 ms); identification
reads the 32-bit serial number (0x89), two CRC-protected words. An SHT3x at the same address
does not answer it: a one-byte write is an incomplete command to it, so it NACKs the read.
"""

from __future__ import annotations

import time
from typing import ClassVar

from .base import I2CBus, I2CDriver
from .i2c_transfer import SensirionLink, Sleep

CMD_MEASURE_HIGH_PRECISION = 0xFD
CMD_READ_SERIAL = 0x89
CMD_SOFT_RESET = 0x94

MEASURE_HIGH_S = 0.0083  # datasheet max measurement duration, high precision
SERIAL_S = 0.001
SOFT_RESET_S = 0.001


def temperature_from_raw(raw: int) -> float:
    """Datasheet conversion: T = -45 + 175 * S / (2^16 - 1)."""
    return -45.0 + 175.0 * raw / 65535.0


def humidity_from_raw(raw: int) -> float:
    """Datasheet conversion RH = -6 + 125 * S / (2^16 - 1), cropped to 0..100 as it advises."""
    return min(100.0, max(0.0, -6.0 + 125.0 * raw / 65535.0))


class Sht4x(I2CDriver):
    """SHT4x; every read triggers one high-precision measurement."""

    model: ClassVar[str] = "SHT4x"
    manufacturer: ClassVar[str] = "Sensirion"
    addresses: ClassVar[tuple[int, ...]] = (0x44, 0x45, 0x46)
    quantities: ClassVar[tuple[str, ...]] = ("temperature", "humidity")

    def __init__(self, bus: I2CBus, address: int, *, sleep: Sleep = time.sleep) -> None:
        super().__init__(bus, address, sleep=sleep)
        self._link = SensirionLink(bus, address, sleep=sleep, command_bytes=1)

    def serial_number(self) -> int:
        """The chip's unique 32-bit serial number."""
        high, low = self._link.query(CMD_READ_SERIAL, 2, SERIAL_S)
        return high << 16 | low

    def identify(self) -> None:
        """A CRC-valid serial number identifies an SHT4x; harmless, so also the probe."""
        self.serial_number()

    def probe(self) -> None:
        """Read-only identification for bus scans."""
        self.identify()

    def initialize(self) -> None:
        """Soft reset to the power-on state."""
        self._link.send(CMD_SOFT_RESET, wait=SOFT_RESET_S)

    def read(self) -> dict[str, float]:
        raw_t, raw_rh = self._link.query(CMD_MEASURE_HIGH_PRECISION, 2, MEASURE_HIGH_S)
        return {"temperature": temperature_from_raw(raw_t), "humidity": humidity_from_raw(raw_rh)}
