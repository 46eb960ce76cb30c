"""Plantower PMS5003 / PMS7003 particulate matter sensors (9600 8N1, 3.3 V logic).

Data frame, 32 bytes, big-endian: 42 4D, frame length 28, 13 data words, then the
16-bit sum of the preceding 30 bytes. Words 1-3 are PM1.0/PM2.5/PM10 "CF=1, standard
particle" (the factory calibration aerosol), words 4-6 the same under "atmospheric
environment". We report words 4-6: the datasheet gives them for ambient air, which is
what a home sensor samples (both agree below ~30 µg/m³ and diverge above).

Commands are 7 bytes, 42 4D CMD DATAH DATAL and the 16-bit sum. The sensor
acknowledges sleep and mode changes with an 8-byte frame 42 4D 00 04 CMD DATAL + sum;
wake-up has no reply, the fan restarts and data is unstable for about 30 s.
"""

from __future__ import annotations

import asyncio
import struct
from typing import ClassVar

from .serial_framing import FramedSerialDriver, FrameFormat

HEADER = b"\x42\x4d"
DATA_FRAME_LENGTH = 32  # length field 28
ACK_FRAME_LENGTH = 8  # length field 4

CMD_MODE = 0xE1  # data 0 passive, 1 active
CMD_PASSIVE_READ = 0xE2
CMD_SLEEP = 0xE4  # data 0 sleep, 1 wake


def checksum(data: bytes) -> int:
    """Plantower checksum: 16-bit sum of every byte before it."""
    return sum(data) & 0xFFFF


def _frame_length(prefix: bytes) -> int | None:
    length = 4 + int.from_bytes(prefix[2:4], "big")
    return length if length in (DATA_FRAME_LENGTH, ACK_FRAME_LENGTH) else None


def _frame_valid(frame: bytes) -> bool:
    return checksum(frame[:-2]) == int.from_bytes(frame[-2:], "big")


FRAME_FORMAT = FrameFormat(header=HEADER, prefix=4, length=_frame_length, valid=_frame_valid)


def encode_command(command: int, data: int = 0) -> bytes:
    """Build a 7-byte host command."""
    body = HEADER + bytes([command]) + data.to_bytes(2, "big")
    return body + checksum(body).to_bytes(2, "big")


def is_data_frame(frame: bytes) -> bool:
    """True for a measurement frame (as opposed to a command acknowledgement)."""
    return len(frame) == DATA_FRAME_LENGTH


def decode_data_frame(frame: bytes) -> dict[str, float]:
    """Atmospheric-environment PM1.0, PM2.5 and PM10 in µg/m³ from a valid data frame."""
    words = struct.unpack(">13H", frame[4:30])
    return {"pm1": float(words[3]), "pm25": float(words[4]), "pm10": float(words[5])}


def _ack_for(command: int, data: int) -> bytes:
    body = HEADER + b"\x00\x04" + bytes([command, data])
    return body + checksum(body).to_bytes(2, "big")


class PMS5003(FramedSerialDriver):
    """Streams a frame about every second in active mode; `measure` returns the next one.

    For the fan-saving duty cycle call `sleep()` between readings and `wake()`
    `warmup_seconds` before the next one. `set_passive(True)` stops the stream; `measure`
    then asks for each frame.
    """

    model: ClassVar[str] = "PMS5003"
    manufacturer: ClassVar[str] = "Plantower"
    quantities: ClassVar[tuple[str, ...]] = ("pm1", "pm25", "pm10")
    streaming: ClassVar[bool] = True
    frame_format: ClassVar[FrameFormat] = FRAME_FORMAT
    warmup_seconds: ClassVar[float] = 30.0
    command_timeout: ClassVar[float] = 2.0

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        super().__init__(reader, writer)
        self.passive = False

    async def measure(self, timeout: float) -> dict[str, float]:
        """Return the next data frame's values; in passive mode request it first."""
        command = encode_command(CMD_PASSIVE_READ) if self.passive else None
        async with self._deadline(timeout, "data frame"):
            frame = await self._next_frame(is_data_frame, command)
        return decode_data_frame(frame)

    async def sleep(self) -> None:
        """Stop the fan and laser; the sensor acknowledges."""
        await self._command(CMD_SLEEP, 0)

    async def wake(self) -> None:
        """Restart the fan; readings settle after `warmup_seconds`. No acknowledgement."""
        await self._send(encode_command(CMD_SLEEP, 1))

    async def set_passive(self, passive: bool) -> None:
        """Switch between streaming (active) and on-request (passive) mode."""
        await self._command(CMD_MODE, 0 if passive else 1)
        self.passive = passive

    async def _command(self, command: int, data: int) -> None:
        ack = _ack_for(command, data)
        await self._request(
            encode_command(command, data),
            lambda frame: frame == ack,
            self.command_timeout,
            "acknowledgement",
        )


class PMS7003(PMS5003):
    """Same protocol and frame as the PMS5003 in a slimmer case."""

    model: ClassVar[str] = "PMS7003"
