"""Emulated Winsen MH-Z19B: answers 9-byte commands from a drifting CO2 state."""

from __future__ import annotations

from typing import ClassVar

from .serial_device import SerialDeviceEmulator

PACKET_LENGTH = 9
RANGE_PPM = 5000  # the MH-Z19B's default detection range


def _checksum(packet: bytes) -> int:
    return (0xFF - (sum(packet[1:8]) & 0xFF) + 1) & 0xFF


class MHZ19BEmulator(SerialDeviceEmulator):
    """Physical state: `co2` (true ppm) and `temperature` (°C).

    The reading is the true value plus `offset`, the sensor's calibration error; a
    zero-point calibration sets the reading to 400 ppm, as the real sensor does.
    """

    model: ClassVar[str] = "MH-Z19B"

    def __init__(
        self,
        *,
        co2: float = 650.0,
        offset: float = 0.0,
        temperature: float = 21.0,
        seed: int = 0,
        drift: float = 0.0,
    ) -> None:
        super().__init__(seed=seed, drift=drift)
        self.co2 = co2
        self.offset = offset
        self.temperature = temperature
        self.abc_enabled = True  # factory default
        self._rx = bytearray()

    def reading(self) -> int:
        """The CO2 value the sensor reports now."""
        return min(RANGE_PPM, max(0, round(self.co2 + self.offset)))

    def handle(self, data: bytes) -> None:
        self._rx += data
        while (start := self._rx.find(b"\xff\x01")) >= 0 and (
            len(self._rx) - start >= PACKET_LENGTH
        ):
            packet = bytes(self._rx[start : start + PACKET_LENGTH])
            if _checksum(packet) != packet[8]:
                del self._rx[: start + 1]
                continue
            del self._rx[: start + PACKET_LENGTH]
            self._execute(packet[2], packet[3:8])
        if b"\xff\x01" not in self._rx:
            del self._rx[:-1]

    def _execute(self, command: int, data: bytes) -> None:
        if command == 0x86:
            self.co2 = self.drifted(self.co2, 300.0, 10_000.0)
            ppm = self.reading()
            body = bytes([0xFF, 0x86, ppm >> 8, ppm & 0xFF, round(self.temperature) + 40, 0, 0, 0])
            self.send(body + bytes([_checksum(body)]))
        elif command == 0x79:
            self.abc_enabled = data[0] == 0xA0
        elif command == 0x87:
            self.offset = 400.0 - self.co2
        # Other commands (span, range, raw readings) are not emulated; no reply.
