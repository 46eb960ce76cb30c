"""ROHM BH1750FVI ambient light sensor at 0x23 (ADDR low) or 0x5C (ADDR high).

Opcode protocol without registers: write one instruction byte, read the 16-bit result.
One-time H-resolution mode (0x20) measures once (max 180 ms at the default MTreg of 69)
and powers down again, so an idle sensor draws nothing between polls.

The chip has no identification register. identify() proves only that something at the
address accepts power-on and a measurement command and returns two bytes; probe() (for
bus scans) only reads two bytes, because writing opcodes to an unknown chip is not
harmless. Either way a different device at 0x23/0x5C would pass: the user confirms the
chip in the config flow.
"""

from __future__ import annotations

import time
from typing import ClassVar

from smbus2 import i2c_msg

from .base import I2CBus, I2CDriver
from .i2c_transfer import Sleep, bus_errors

OP_POWER_ON = 0x01
OP_ONE_TIME_H_RESOLUTION = 0x20

MEASURE_H_RESOLUTION_S = 0.180  # datasheet max at MTreg = 69
COUNTS_PER_LUX = 1.2  # typical sensitivity at MTreg = 69, H-resolution mode


def illuminance_from_raw(raw: int) -> float:
    """Datasheet conversion for H-resolution mode at the default MTreg: lx = counts / 1.2."""
    return raw / COUNTS_PER_LUX


class Bh1750(I2CDriver):
    """BH1750 in one-time H-resolution mode (1 lx resolution, up to 54612 lx)."""

    model: ClassVar[str] = "BH1750"
    manufacturer: ClassVar[str] = "ROHM"
    addresses: ClassVar[tuple[int, ...]] = (0x23, 0x5C)
    quantities: ClassVar[tuple[str, ...]] = ("illuminance",)

    def __init__(self, bus: I2CBus, address: int, *, sleep: Sleep = time.sleep) -> None:
        super().__init__(bus, address, sleep=sleep)

    def _read_result(self) -> int:
        message = i2c_msg.read(self.address, 2)
        with bus_errors(self.address):
            self.bus.i2c_rdwr(message)
        high, low = bytes(message)
        return high << 8 | low

    def identify(self) -> None:
        """Power on and measure once: the only evidence this chip can give."""
        self.read()

    def probe(self) -> None:
        """Scan check: the address answers a two-byte read (writes nothing)."""
        self._read_result()

    def read(self) -> dict[str, float]:
        with bus_errors(self.address):
            self.bus.write_byte(self.address, OP_POWER_ON)
            self.bus.write_byte(self.address, OP_ONE_TIME_H_RESOLUTION)
        self._sleep(MEASURE_H_RESOLUTION_S)
        return {"illuminance": illuminance_from_raw(self._read_result())}
