"""Command-level Sensirion SHT4x emulator.

Implements the three measurement precisions, read serial number and soft reset. The
heater commands are not emulated and are NACKed like unknown commands; two-byte SHT3x
commands such as 0xF32D are unknown to an SHT4x, which NACKs their first byte.
"""

from __future__ import annotations

from .environment import Ambient
from .i2c_bus import I2CNack, Response, SensirionCommandDevice
from .sht3x import raw_temperature

MEASURE = {0xFD: 0.0069, 0xF6: 0.0037, 0xE0: 0.0013}  # typical seconds: high, medium, low
CMD_READ_SERIAL = 0x89
CMD_SOFT_RESET = 0x94
SOFT_RESET_S = 0.001


def raw_humidity(percent: float) -> int:
    """Inverse of RH = -6 + 125 * S / 65535 (the chip's range exceeds 0..100 %)."""
    return min(0xFFFF, max(0, round((percent + 6.0) * 65535.0 / 125.0)))


class Sht4xEmulator(SensirionCommandDevice):
    """An SHT4x measuring an Ambient."""

    command_bytes = 1

    def __init__(self, state: Ambient | None = None, *, serial_number: int = 0x0F3A_6C21) -> None:
        super().__init__()
        self.state = state if state is not None else Ambient()
        self.serial_number = serial_number

    def execute(self, command: int, arguments: list[int]) -> Response:
        if arguments:  # no SHT4x command takes any
            raise I2CNack
        if command in MEASURE:
            words = (raw_temperature(self.state.temperature), raw_humidity(self.state.humidity))
            return Response(words, MEASURE[command])
        if command == CMD_READ_SERIAL:
            return Response((self.serial_number >> 16, self.serial_number & 0xFFFF))
        if command == CMD_SOFT_RESET:
            return Response(seconds=SOFT_RESET_S)
        raise I2CNack
