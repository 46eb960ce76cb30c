"""Modbus RTU framing and the register exchanges of a Modbus serial sensor.

A frame is address, function, data, CRC-16/MODBUS (reflected polynomial 0xA001,
initial value 0xFFFF) sent low byte first. Replies: read holding/input registers
(0x03/0x04) carry a byte count and big-endian 16-bit registers; write single register
(0x06) echoes the request; an exception reply sets bit 7 of the function and carries one
exception code.
"""

from __future__ import annotations

import struct
from typing import ClassVar

from .errors import DriverError
from .serial_framing import FramedSerialDriver, FrameFormat

READ_HOLDING_REGISTERS = 0x03
READ_INPUT_REGISTERS = 0x04
WRITE_SINGLE_REGISTER = 0x06
EXCEPTION_FLAG = 0x80
MAX_BYTES = 250  # 125 registers, the Modbus limit for one read

EXCEPTION_NAMES = {
    0x01: "illegal function",
    0x02: "illegal data address",
    0x03: "illegal data value",
    0x04: "server device failure",
    0x05: "acknowledge",
    0x06: "server device busy",
}


class ModbusExceptionError(DriverError):
    """The device rejected a request with a Modbus exception reply."""

    def __init__(self, model: str, function: int, code: int) -> None:
        self.function = function
        self.code = code
        name = EXCEPTION_NAMES.get(code, "unknown exception")
        super().__init__(
            f"{model} rejected Modbus function 0x{function:02X} with exception "
            f"{code} ({name}); the sensor model or its firmware may not support this request"
        )


def crc16(data: bytes) -> int:
    """CRC-16/MODBUS of `data`."""
    crc = 0xFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return crc


def with_crc(body: bytes) -> bytes:
    """Append the CRC, low byte first as Modbus RTU sends it."""
    return body + crc16(body).to_bytes(2, "little")


def crc_ok(frame: bytes) -> bool:
    """True if the frame's trailing two bytes are the CRC of the rest."""
    return len(frame) >= 4 and crc16(frame[:-2]) == int.from_bytes(frame[-2:], "little")


def read_request(address: int, function: int, register: int, count: int) -> bytes:
    """Read `count` registers starting at 0-based `register`."""
    return with_crc(struct.pack(">BBHH", address, function, register, count))


def write_request(address: int, register: int, value: int) -> bytes:
    """Write one holding register."""
    return with_crc(struct.pack(">BBHH", address, WRITE_SINGLE_REGISTER, register, value))


def reply_format(address: int) -> FrameFormat:
    """Frame format of replies from the device at `address`."""

    def length(prefix: bytes) -> int | None:
        function = prefix[1]
        if function & EXCEPTION_FLAG:
            return 5
        if function in (READ_HOLDING_REGISTERS, READ_INPUT_REGISTERS):
            byte_count = prefix[2]
            return 5 + byte_count if byte_count % 2 == 0 and byte_count <= MAX_BYTES else None
        if function == WRITE_SINGLE_REGISTER:
            return 8
        return None

    return FrameFormat(header=bytes([address]), prefix=3, length=length, valid=crc_ok)


def decode_registers(frame: bytes) -> list[int]:
    """Registers of a valid read reply."""
    count = frame[2] // 2
    return list(struct.unpack(f">{count}H", frame[3 : 3 + 2 * count]))


class ModbusSerialDriver(FramedSerialDriver):
    """A Modbus RTU device on a point-to-point serial line."""

    address: ClassVar[int]
    request_timeout: ClassVar[float] = 2.0

    async def read_registers(
        self, function: int, register: int, count: int, timeout: float | None = None
    ) -> list[int]:
        """Read `count` input (0x04) or holding (0x03) registers from 0-based `register`."""
        frame = await self._transact(read_request(self.address, function, register, count), timeout)
        registers = decode_registers(frame)
        if len(registers) != count:
            raise DriverError(
                f"{self.model} returned {len(registers)} registers for a request of {count}"
            )
        return registers

    async def write_register(self, register: int, value: int) -> None:
        """Write one holding register; the device must echo the request."""
        request = write_request(self.address, register, value)
        echo = await self._transact(request, None)
        if echo != request:
            raise DriverError(
                f"{self.model} answered the write of register {register} with "
                f"{echo.hex(' ')} instead of echoing {request.hex(' ')}"
            )

    async def _transact(self, request: bytes, timeout: float | None) -> bytes:
        function = request[1]

        def answers(frame: bytes) -> bool:
            return frame[1] in (function, function | EXCEPTION_FLAG)

        frame = await self._request(
            request,
            answers,
            self.request_timeout if timeout is None else timeout,
            f"reply to Modbus function 0x{function:02X}",
        )
        if frame[1] & EXCEPTION_FLAG:
            raise ModbusExceptionError(self.model, function, frame[2])
        return frame
