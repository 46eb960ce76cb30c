"""Nova Fitness SDS011 particulate matter sensor (9600 8N1).

Data frame, 10 bytes: AA C0 PM25_lo PM25_hi PM10_lo PM10_hi ID1 ID2 CHECKSUM AB, values
in 0.1 µg/m³, checksum the low byte of the sum of the six data bytes. Commands are 19
bytes: AA B4, 13 data bytes, the target device ID (FF FF = any), the low byte of the sum
of those 15 bytes, AB; replies are 10-byte AA C5 frames checked like data frames.
"""

from __future__ import annotations

from typing import ClassVar

from .serial_framing import FramedSerialDriver, FrameFormat

FRAME_LENGTH = 10
TAIL = 0xAB
DATA = 0xC0
REPLY = 0xC5
COMMAND = 0xB4

CMD_SLEEP_WORK = 0x06  # data: 01 (set), mode 00 sleep / 01 work
ANY_DEVICE = 0xFFFF


def checksum(data: bytes) -> int:
    """Low byte of the sum."""
    return sum(data) & 0xFF


def _frame_length(prefix: bytes) -> int | None:
    return FRAME_LENGTH if prefix[1] in (DATA, REPLY) else None


def _frame_valid(frame: bytes) -> bool:
    return frame[9] == TAIL and checksum(frame[2:8]) == frame[8]


FRAME_FORMAT = FrameFormat(header=b"\xaa", prefix=2, length=_frame_length, valid=_frame_valid)


def encode_command(data: bytes, device_id: int = ANY_DEVICE) -> bytes:
    """Build a 19-byte command from up to 13 data bytes (zero padded)."""
    if len(data) > 13:
        raise ValueError(f"SDS011 commands carry at most 13 data bytes, got {len(data)}")
    body = data.ljust(13, b"\x00") + device_id.to_bytes(2, "big")
    return bytes([0xAA, COMMAND]) + body + bytes([checksum(body), TAIL])


def is_data_frame(frame: bytes) -> bool:
    """True for a measurement frame (AA C0), false for a command reply (AA C5)."""
    return frame[1] == DATA


def decode_data_frame(frame: bytes) -> dict[str, float]:
    """PM2.5 and PM10 in µg/m³ from a valid data frame."""
    return {
        "pm25": int.from_bytes(frame[2:4], "little") / 10,
        "pm10": int.from_bytes(frame[4:6], "little") / 10,
    }


class SDS011(FramedSerialDriver):
    """Streams a frame every second while working; `measure` returns the next one."""

    model: ClassVar[str] = "SDS011"
    manufacturer: ClassVar[str] = "Nova Fitness"
    quantities: ClassVar[tuple[str, ...]] = ("pm25", "pm10")
    streaming: ClassVar[bool] = True
    frame_format: ClassVar[FrameFormat] = FRAME_FORMAT
    warmup_seconds: ClassVar[float] = 30.0
    command_timeout: ClassVar[float] = 2.0

    async def measure(self, timeout: float) -> dict[str, float]:
        """Return the next data frame's values."""
        async with self._deadline(timeout, "data frame"):
            frame = await self._next_frame(is_data_frame)
        return decode_data_frame(frame)

    async def sleep(self) -> None:
        """Stop fan and laser (the sensor replies with its new mode)."""
        await self._set_working(False)

    async def wake(self) -> None:
        """Restart fan and laser; readings settle after `warmup_seconds`."""
        await self._set_working(True)

    async def _set_working(self, working: bool) -> None:
        mode = int(working)

        def is_reply(frame: bytes) -> bool:
            return frame[1] == REPLY and frame[2:5] == bytes([CMD_SLEEP_WORK, 1, mode])

        await self._request(
            encode_command(bytes([CMD_SLEEP_WORK, 1, mode])),
            is_reply,
            self.command_timeout,
            "sleep/work reply",
        )
