"""Emulated Plantower PMS5003: streams 32-byte frames, obeys the 7-byte commands."""

from __future__ import annotations

import struct
from typing import ClassVar

from .serial_device import StreamingEmulator

HEADER = b"\x42\x4d"
COMMAND_LENGTH = 7
# Word 13: firmware version 0x97, error code 0, as real PMS5003 frames carry.
VERSION_AND_ERROR = 0x9700


def _sum16(data: bytes) -> bytes:
    return (sum(data) & 0xFFFF).to_bytes(2, "big")


class PMS5003Emulator(StreamingEmulator):
    """Physical state: `pm1`, `pm25`, `pm10` in µg/m³ (atmospheric environment)."""

    model: ClassVar[str] = "PMS5003"

    def __init__(
        self,
        *,
        pm1: float = 6.0,
        pm25: float = 9.0,
        pm10: float = 12.0,
        interval: float | None = 1.0,
        seed: int = 0,
        drift: float = 0.0,
    ) -> None:
        super().__init__(interval=interval, seed=seed, drift=drift)
        self.pm1, self.pm25, self.pm10 = pm1, pm25, pm10
        self.asleep = False
        self.passive = False
        self._rx = bytearray()

    def streaming(self) -> bool:
        return not self.asleep and not self.passive

    def data_frame(self) -> bytes:
        self.pm1 = self.drifted(self.pm1, 0.0, 1000.0)
        self.pm25 = max(self.pm1, self.drifted(self.pm25, 0.0, 1000.0))
        self.pm10 = max(self.pm25, self.drifted(self.pm10, 0.0, 1000.0))
        atmospheric = [round(v) for v in (self.pm1, self.pm25, self.pm10)]
        # CF=1 (factory aerosol) values read higher than atmospheric ones in polluted air.
        cf1 = [round(v * (1.0 + max(0.0, v - 30.0) / 200.0)) for v in atmospheric]
        # Particles per 0.1 L above 0.3/0.5/1/2.5/5/10 µm, roughly proportional to mass.
        pm1, pm25, pm10 = atmospheric
        counts = [
            150 * pm1 + 100,
            45 * pm1 + 30,
            8 * pm25 + 5,
            pm10 - pm25,
            (pm10 - pm25) // 3,
            (pm10 - pm25) // 10,
        ]
        body = HEADER + struct.pack(
            ">H13H", 28, *cf1, *atmospheric, *(min(c, 0xFFFF) for c in counts), VERSION_AND_ERROR
        )
        return body + _sum16(body)

    def handle(self, data: bytes) -> None:
        self._rx += data
        while (start := self._rx.find(HEADER)) >= 0 and len(self._rx) - start >= COMMAND_LENGTH:
            command = bytes(self._rx[start : start + COMMAND_LENGTH])
            if _sum16(command[:5]) != command[5:]:
                del self._rx[: start + 1]  # a real sensor ignores a command it cannot check
                continue
            del self._rx[: start + COMMAND_LENGTH]
            self._execute(command[2], command[4])
        if HEADER not in self._rx:
            del self._rx[:-1]

    def _execute(self, command: int, data: int) -> None:
        if command == 0xE1:  # mode: 0 passive, 1 active
            self.passive = data == 0
            self._acknowledge(command, data)
        elif command == 0xE2 and self.passive and not self.asleep:
            self.send(self.data_frame())
        elif command == 0xE4 and data == 0:
            self.asleep = True
            self._acknowledge(command, data)
        elif command == 0xE4:
            self.asleep = False  # the fan restarts; frames resume without an acknowledgement

    def _acknowledge(self, command: int, data: int) -> None:
        body = HEADER + bytes([0x00, 0x04, command, data])
        self.send(body + _sum16(body))


class PMS7003Emulator(PMS5003Emulator):
    """The PMS7003 speaks the same protocol."""

    model: ClassVar[str] = "PMS7003"
