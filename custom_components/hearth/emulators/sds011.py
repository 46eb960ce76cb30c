"""Emulated Nova Fitness SDS011: streams 10-byte frames, obeys sleep/work commands."""

from __future__ import annotations

from typing import ClassVar

from .serial_device import StreamingEmulator

COMMAND_LENGTH = 19
ANY_DEVICE = 0xFFFF


def _sum8(data: bytes) -> int:
    return sum(data) & 0xFF


class SDS011Emulator(StreamingEmulator):
    """Physical state: `pm25`, `pm10` in µg/m³ (reported in 0.1 µg/m³ steps)."""

    model: ClassVar[str] = "SDS011"

    def __init__(
        self,
        *,
        pm25: float = 8.4,
        pm10: float = 13.7,
        device_id: int = 0xA160,
        interval: float | None = 1.0,
        seed: int = 0,
        drift: float = 0.0,
    ) -> None:
        super().__init__(interval=interval, seed=seed, drift=drift)
        self.pm25, self.pm10 = pm25, pm10
        self.device_id = device_id
        self.working = True
        self._rx = bytearray()

    def streaming(self) -> bool:
        return self.working

    def data_frame(self) -> bytes:
        self.pm25 = self.drifted(self.pm25, 0.0, 999.9)
        self.pm10 = max(self.pm25, self.drifted(self.pm10, 0.0, 999.9))
        data = (
            round(self.pm25 * 10).to_bytes(2, "little")
            + round(self.pm10 * 10).to_bytes(2, "little")
            + self.device_id.to_bytes(2, "big")
        )
        return self._frame(0xC0, data)

    def _frame(self, kind: int, data: bytes) -> bytes:
        return bytes([0xAA, kind]) + data + bytes([_sum8(data), 0xAB])

    def handle(self, data: bytes) -> None:
        self._rx += data
        while (start := self._rx.find(b"\xaa\xb4")) >= 0 and (
            len(self._rx) - start >= COMMAND_LENGTH
        ):
            command = bytes(self._rx[start : start + COMMAND_LENGTH])
            if command[18] != 0xAB or _sum8(command[2:17]) != command[17]:
                del self._rx[: start + 1]
                continue
            del self._rx[: start + COMMAND_LENGTH]
            target = int.from_bytes(command[15:17], "big")
            if target in (ANY_DEVICE, self.device_id):
                self._execute(command[2:15])
        if b"\xaa\xb4" not in self._rx:
            del self._rx[:-1]

    def _execute(self, data: bytes) -> None:
        if data[0] != 0x06:
            return  # other commands (reporting mode, period, firmware) are not emulated
        if data[1] == 1:
            self.working = data[2] == 1
        reply = bytes([0x06, data[1], int(self.working), 0]) + self.device_id.to_bytes(2, "big")
        self.send(self._frame(0xC5, reply))
