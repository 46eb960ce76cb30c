"""Emulated Senseair S8: a Modbus RTU server with the S8's input and holding registers.

Requests are delimited as Modbus RTU prescribes, by 3.5 character times of silence.
Requests with a bad CRC or for another address are ignored; unknown functions and
registers get exception replies.
"""

from __future__ import annotations

import asyncio
import struct
from typing import ClassVar

from ..drivers.modbus import crc_ok, with_crc
from .serial_device import SerialDeviceEmulator

OWN_ADDRESS = 0x68  # the S8's factory address
ANY_ADDRESS = 0xFE

ILLEGAL_FUNCTION = 0x01
ILLEGAL_DATA_ADDRESS = 0x02
ILLEGAL_DATA_VALUE = 0x03

HR_ACKNOWLEDGEMENT = 0
HR_SPECIAL_COMMAND = 1
HR_ABC_PERIOD = 31
BACKGROUND_CALIBRATION = 0x7C06
ACK_BACKGROUND_CALIBRATION = 0x0020


class SenseairS8Emulator(SerialDeviceEmulator):
    """Physical state: `co2` (true ppm); `offset` is the calibration error.

    `meter_status` is IR1: set error bits to emulate a failing sensor.
    """

    model: ClassVar[str] = "Senseair S8"

    def __init__(
        self, *, co2: float = 520.0, offset: float = 0.0, seed: int = 0, drift: float = 0.0
    ) -> None:
        super().__init__(seed=seed, drift=drift)
        self.co2 = co2
        self.offset = offset
        self.meter_status = 0
        self.holding = {HR_ACKNOWLEDGEMENT: 0, HR_SPECIAL_COMMAND: 0, HR_ABC_PERIOD: 180}
        self._rx = bytearray()
        self._gap: asyncio.TimerHandle | None = None
        # 3.5 characters of 11 bits (start, 8 data, stop, idle margin) end a frame.
        self.frame_gap = 3.5 * 11 / self.baudrate

    def reading(self) -> int:
        """The CO2 value in IR4 now (the S8 LP measures 0-10000 ppm)."""
        return min(10_000, max(0, round(self.co2 + self.offset)))

    def input_registers(self) -> dict[int, int]:
        """The documented input registers by 0-based address."""
        self.co2 = self.drifted(self.co2, 300.0, 10_000.0)
        return {
            0: self.meter_status,
            1: 0,  # alarm status
            2: 0,  # output status
            3: self.reading(),
            21: round(self.reading() / 2000 * 0x3FFF),  # PWM output, 2000 ppm full scale
            25: 0x0000,  # sensor type ID high
            26: 0x0101,  # sensor type ID low
            27: 0x0001,  # memory map version
            28: 0x0102,  # firmware 1.2
            29: 0x0400,  # sensor ID high
            30: 0x2A17,  # sensor ID low
        }

    def handle(self, data: bytes) -> None:
        self._rx += data
        if self._gap is not None:
            self._gap.cancel()
        self._gap = self.call_later(self.frame_gap, self._end_of_frame)

    def _end_of_frame(self) -> None:
        frame = bytes(self._rx)
        self._rx.clear()
        self._gap = None
        if len(frame) < 4 or not crc_ok(frame) or frame[0] not in (ANY_ADDRESS, OWN_ADDRESS):
            return
        reply = self._execute(frame[1], frame[2:-2])
        self.send(with_crc(bytes([frame[0]]) + reply))

    def _execute(self, function: int, data: bytes) -> bytes:
        if function not in (0x03, 0x04, 0x06):
            return bytes([function | 0x80, ILLEGAL_FUNCTION])
        if len(data) != 4:
            return bytes([function | 0x80, ILLEGAL_DATA_VALUE])
        register, value = struct.unpack(">HH", data)
        if function == 0x06:
            return self._write_register(register, value)
        registers = self.holding if function == 0x03 else self.input_registers()
        if not 1 <= value <= 125:
            return bytes([function | 0x80, ILLEGAL_DATA_VALUE])
        wanted = range(register, register + value)
        if any(r not in registers for r in wanted):
            return bytes([function | 0x80, ILLEGAL_DATA_ADDRESS])
        words = [registers[r] for r in wanted]
        return bytes([function, 2 * value]) + struct.pack(f">{value}H", *words)

    def _write_register(self, register: int, value: int) -> bytes:
        if register not in self.holding:
            return bytes([0x86, ILLEGAL_DATA_ADDRESS])
        if register == HR_SPECIAL_COMMAND:
            if value != BACKGROUND_CALIBRATION:
                return bytes([0x86, ILLEGAL_DATA_VALUE])
            self.offset = 400.0 - self.co2
            self.holding[HR_ACKNOWLEDGEMENT] |= ACK_BACKGROUND_CALIBRATION
        else:
            self.holding[register] = value
        return struct.pack(">BHH", 0x06, register, value)
