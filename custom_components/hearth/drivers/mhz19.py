"""Winsen MH-Z19B NDIR CO2 sensor (9600 8N1), polled.

Every command and reply is 9 bytes: FF, sensor number 01 (reply: the command byte),
command, five data bytes, and a checksum: (0xFF - (sum of bytes 1..7 & 0xFF)) + 1.
Read CO2 is FF 01 86 00 00 00 00 00 79 (the datasheet example); the reply is
FF 86 HIGH LOW ... with CO2 = HIGH * 256 + LOW ppm. ABC on/off (0x79) and zero-point
calibration (0x87) have no reply. The sensor needs 3 minutes' preheat after power-up.
"""

from __future__ import annotations

from typing import ClassVar

from .co2_calibration import check_calibration_target
from .serial_framing import FramedSerialDriver, FrameFormat

FRAME_LENGTH = 9
START = 0xFF
SENSOR = 0x01

CMD_READ_CO2 = 0x86
CMD_ABC = 0x79  # byte 3: A0 on, 00 off
CMD_ZERO_POINT = 0x87


def checksum(packet: bytes) -> int:
    """Checksum over bytes 1..7 of a 9-byte packet."""
    return (0xFF - (sum(packet[1:8]) & 0xFF) + 1) & 0xFF


def encode_command(command: int, data: bytes = b"") -> bytes:
    """Build a 9-byte command with up to five data bytes (zero padded)."""
    if len(data) > 5:
        raise ValueError(f"MH-Z19B commands carry at most 5 data bytes, got {len(data)}")
    body = bytes([START, SENSOR, command]) + data.ljust(5, b"\x00")
    return body + bytes([checksum(body)])


def _frame_length(prefix: bytes) -> int | None:
    return FRAME_LENGTH if prefix[1] == CMD_READ_CO2 else None


def _frame_valid(frame: bytes) -> bool:
    return checksum(frame) == frame[8]


FRAME_FORMAT = FrameFormat(
    header=bytes([START]), prefix=2, length=_frame_length, valid=_frame_valid
)

READ_CO2 = encode_command(CMD_READ_CO2)


def decode_co2(frame: bytes) -> dict[str, float]:
    """CO2 in ppm from a valid read reply."""
    return {"co2": float(frame[2] * 256 + frame[3])}


class MHZ19B(FramedSerialDriver):
    """Answers each read command with one reading."""

    model: ClassVar[str] = "MH-Z19B"
    manufacturer: ClassVar[str] = "Winsen"
    quantities: ClassVar[tuple[str, ...]] = ("co2",)
    streaming: ClassVar[bool] = False
    frame_format: ClassVar[FrameFormat] = FRAME_FORMAT

    async def measure(self, timeout: float) -> dict[str, float]:
        """Send the read command and decode the reply (resent on a bad checksum)."""
        frame = await self._request(READ_CO2, lambda f: f[1] == CMD_READ_CO2, timeout, "CO2 reply")
        return decode_co2(frame)

    async def set_abc(self, enabled: bool) -> None:
        """Turn automatic baseline correction (400 ppm every 24 h) on or off."""
        await self._send(encode_command(CMD_ABC, bytes([0xA0 if enabled else 0x00])))

    async def zero_calibrate(self) -> None:
        """Declare the current air to be 400 ppm (sensor outdoors for 20+ minutes)."""
        await self._send(encode_command(CMD_ZERO_POINT))

    async def calibrate(self, target_ppm: float) -> None:
        """Calibrate to `target_ppm`; only 400 ppm is supported (ValueError otherwise)."""
        check_calibration_target(self.model, target_ppm)
        await self.zero_calibrate()
