"""Command-level Sensirion SHT3x emulator.

Implements the single-shot measurements (all three repeatabilities, with and without
clock stretching), read/clear status, and soft reset. Periodic mode, the heater and ART
are not emulated: those commands are NACKed, as are unknown ones. While a measurement
runs (typical duration) the chip NACKs, as the real one does without clock stretching;
with clock stretching the emulated read simply succeeds (the stretch is invisible here).
"""

from __future__ import annotations

from .environment import Ambient
from .i2c_bus import I2CNack, Response, SensirionCommandDevice

# command -> (typical measurement seconds, clock stretching)
SINGLE_SHOT = {
    0x2400: (0.0125, False),  # high repeatability
    0x240B: (0.0045, False),  # medium
    0x2416: (0.0025, False),  # low
    0x2C06: (0.0125, True),
    0x2C0D: (0.0045, True),
    0x2C10: (0.0025, True),
}
CMD_READ_STATUS = 0xF32D
CMD_CLEAR_STATUS = 0x3041
CMD_SOFT_RESET = 0x30A2
SOFT_RESET_S = 0.0005

STATUS_ALERT_PENDING = 0x8000
STATUS_RESET_DETECTED = 0x0010
STATUS_AFTER_RESET = STATUS_ALERT_PENDING | STATUS_RESET_DETECTED
STATUS_CLEARABLE = 0x8C10  # alert pending, RH/T tracking alerts, reset detected


def raw_temperature(celsius: float) -> int:
    """Inverse of T = -45 + 175 * S / 65535, saturating at the 16-bit ends."""
    return min(0xFFFF, max(0, round((celsius + 45.0) * 65535.0 / 175.0)))


def raw_humidity(percent: float) -> int:
    """Inverse of RH = 100 * S / 65535."""
    return min(0xFFFF, max(0, round(percent * 65535.0 / 100.0)))


class Sht3xEmulator(SensirionCommandDevice):
    """An SHT3x measuring an Ambient."""

    def __init__(self, state: Ambient | None = None) -> None:
        super().__init__()
        self.state = state if state is not None else Ambient()
        self.status = STATUS_AFTER_RESET

    def execute(self, command: int, arguments: list[int]) -> Response:
        if arguments:
            raise I2CNack
        if command in SINGLE_SHOT:
            seconds, stretching = SINGLE_SHOT[command]
            words = (raw_temperature(self.state.temperature), raw_humidity(self.state.humidity))
            return Response(words, 0.0 if stretching else seconds)
        if command == CMD_READ_STATUS:
            return Response((self.status,))
        if command == CMD_CLEAR_STATUS:
            self.status &= ~STATUS_CLEARABLE
            return Response()
        if command == CMD_SOFT_RESET:
            self.status = STATUS_AFTER_RESET
            return Response(seconds=SOFT_RESET_S)
        raise I2CNack
