"""Sensirion SHT3x (SHT30/31/35) humidity and temperature sensor at 0x44 or 0x45.

Measures with single shot, high repeatability, no clock stretching (0x2400): the chip NACKs
its read header until the conversion (max 15.5 ms) is done, so the driver waits first.
Identification reads the status register (0xF32D, CRC-protected), a command the SHT4x
does not know: an SHT4x at the same address NACKs it.
"""

from __future__ import annotations

import time
from typing import ClassVar

from .base import I2CBus, I2CDriver
from .i2c_transfer import SensirionLink, Sleep

CMD_MEASURE_HIGH_REPEATABILITY = 0x2400
CMD_READ_STATUS = 0xF32D
CMD_SOFT_RESET = 0x30A2

MEASURE_HIGH_S = 0.0155  # datasheet max measurement duration, high repeatability
SOFT_RESET_S = 0.0015
STATUS_S = 0.001  # command-to-read idle time


def temperature_from_raw(raw: int) -> float:
    """Datasheet conversion: T = -45 + 175 * S / (2^16 - 1)."""
    return -45.0 + 175.0 * raw / 65535.0


def humidity_from_raw(raw: int) -> float:
    """Datasheet conversion: RH = 100 * S / (2^16 - 1)."""
    return 100.0 * raw / 65535.0


class Sht3x(I2CDriver):
    """SHT3x in single-shot mode; every read triggers one high-repeatability measurement."""

    model: ClassVar[str] = "SHT3x"
    manufacturer: ClassVar[str] = "Sensirion"
    addresses: ClassVar[tuple[int, ...]] = (0x44, 0x45)
    quantities: ClassVar[tuple[str, ...]] = ("temperature", "humidity")

    def __init__(self, bus: I2CBus, address: int, *, sleep: Sleep = time.sleep) -> None:
        super().__init__(bus, address, sleep=sleep)
        self._link = SensirionLink(bus, address, sleep=sleep)

    def read_status(self) -> int:
        """The 16-bit status register (alert, heater, reset-detected and checksum flags)."""
        (status,) = self._link.query(CMD_READ_STATUS, 1, STATUS_S)
        return status

    def identify(self) -> None:
        """A CRC-valid answer to 'read status' identifies an SHT3x; harmless, so also the probe."""
        self.read_status()

    def probe(self) -> None:
        """Read-only identification for bus scans."""
        self.identify()

    def initialize(self) -> None:
        """Soft reset so heater and alert state start from the datasheet defaults."""
        self._link.send(CMD_SOFT_RESET, wait=SOFT_RESET_S)

    def read(self) -> dict[str, float]:
        raw_t, raw_rh = self._link.query(CMD_MEASURE_HIGH_REPEATABILITY, 2, MEASURE_HIGH_S)
        return {"temperature": temperature_from_raw(raw_t), "humidity": humidity_from_raw(raw_rh)}
