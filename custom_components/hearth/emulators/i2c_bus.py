"""An I2C bus with emulated chips behind it, behaving like smbus2.SMBus on Linux i2c-dev.

Each smbus call is one I2C transaction made of write and read messages, exactly as the
kernel issues them (read_i2c_block_data = write the register, repeated start, read n).
A chip that does not acknowledge (no device at the address, a command it does not know,
a read while it is busy) fails the whole transfer with OSError(EREMOTEIO), the
"[Errno 121] Remote I/O error" users see on a Raspberry Pi.

Time is read from a clock (time.monotonic by default). Tests pass a VirtualClock and give
the drivers its sleep(), so conversion and execution times are honoured without waiting.
"""

from __future__ import annotations

import errno
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from ctypes import memmove
from dataclasses import dataclass
from types import TracebackType
from typing import ClassVar, Self, TypeVar

from smbus2 import i2c_msg
from smbus2.smbus2 import I2C_M_RD

from ..drivers.crc import WORD_FRAME, pack_words, unpack_words
from ..drivers.errors import ChecksumError

Clock = Callable[[], float]
DeviceT = TypeVar("DeviceT", bound="EmulatedI2CDevice")
SMBUS_BLOCK_MAX = 32  # smbus2's I2C_SMBUS_BLOCK_MAX


class I2CNack(Exception):
    """The emulated chip did not acknowledge; the bus reports it as EREMOTEIO."""


class VirtualClock:
    """Manual time for tests: drivers sleep() on it, emulators read now()."""

    def __init__(self, start: float = 0.0) -> None:
        self.time = start

    def now(self) -> float:
        return self.time

    def sleep(self, seconds: float) -> None:
        self.time += seconds


class EmulatedI2CDevice:
    """A chip on the bus. Each message of a transaction reaches write() or read().

    Raise I2CNack to not acknowledge. The bus sets `clock` when the device is attached.
    """

    def __init__(self) -> None:
        self.clock: Clock = time.monotonic

    def write(self, data: bytes) -> None:
        """A write message (START, address+W, data bytes)."""
        raise I2CNack

    def read(self, length: int) -> bytes:
        """A read message (START, address+R): return `length` bytes."""
        raise I2CNack


@dataclass(frozen=True, slots=True)
class Response:
    """What a Sensirion command produces: words to read back, and its execution time."""

    words: Sequence[int] = ()
    seconds: float = 0.0


class SensirionCommandDevice(EmulatedI2CDevice):
    """Command semantics of Sensirion chips (SHT3x, SHT4x, SCD4x).

    A write carries a command code (1 or 2 bytes) and CRC-protected argument words; the
    chip executes it and NACKs everything until done, then the response can be read once.
    A read with nothing pending is NACKed. Unknown commands and bad argument CRCs are
    NACKed. An incomplete command (fewer bytes than a command code) is ignored.
    """

    command_bytes: ClassVar[int] = 2

    def __init__(self) -> None:
        super().__init__()
        self._pending: bytes | None = None
        self._busy_until = float("-inf")

    def execute(self, command: int, arguments: list[int]) -> Response:
        """Run one command; raise I2CNack if the chip does not accept it now."""
        raise I2CNack

    def write(self, data: bytes) -> None:
        now = self.clock()
        if now < self._busy_until:
            raise I2CNack
        self._pending = None
        if len(data) < self.command_bytes:
            return
        command = int.from_bytes(data[: self.command_bytes], "big")
        argument_bytes = data[self.command_bytes :]
        if len(argument_bytes) % WORD_FRAME:
            raise I2CNack
        try:
            arguments = unpack_words(argument_bytes)
        except ChecksumError as err:
            raise I2CNack from err
        response = self.execute(command, arguments)
        self._busy_until = now + response.seconds
        if response.words:
            self._pending = pack_words(response.words)

    def read(self, length: int) -> bytes:
        if self.clock() < self._busy_until or self._pending is None:
            raise I2CNack
        data, self._pending = self._pending, None
        # Past the response the chip releases SDA and the master clocks in 0xFF.
        return data[:length].ljust(length, b"\xff")


def _remote_io_error() -> OSError:
    return OSError(errno.EREMOTEIO, "Remote I/O error")


class EmulatedI2CBus:
    """Drop-in for smbus2.SMBus (the subset in drivers.base.I2CBus) over emulated chips."""

    def __init__(
        self,
        devices: Mapping[int, EmulatedI2CDevice] | None = None,
        *,
        clock: Clock = time.monotonic,
    ) -> None:
        self.clock = clock
        self.devices: dict[int, EmulatedI2CDevice] = {}
        self._lock = threading.Lock()
        self._nack_transfers = 0
        self._corrupt_reads = 0
        self._corrupt_length: int | None = None
        self._closed = False
        for address, device in (devices or {}).items():
            self.attach(address, device)

    def attach(self, address: int, device: DeviceT) -> DeviceT:
        """Wire `device` to 7-bit `address` (sharing the bus clock) and return it."""
        if not 0x03 <= address <= 0x77:
            raise ValueError(f"0x{address:02X} is not a 7-bit device address (0x03..0x77)")
        if address in self.devices:
            raise ValueError(f"address 0x{address:02X} already has a device")
        device.clock = self.clock
        self.devices[address] = device
        return device

    def detach(self, address: int) -> None:
        """Unplug the device at `address`."""
        del self.devices[address]

    def nack_next_transfers(self, count: int) -> None:
        """Fault injection: the next `count` transfers fail as if nothing acknowledged."""
        self._nack_transfers = count

    def corrupt_next_reads(self, count: int, *, length: int | None = None) -> None:
        """Fault injection: flip a bit in every CRC byte (each third byte) of the next
        `count` read messages (only those of `length` bytes, if given), as noise would."""
        self._corrupt_reads, self._corrupt_length = count, length

    def _transfer(self, messages: Sequence[tuple[int, bytes | int]]) -> list[bytes]:
        """One combined transaction: (address, bytes to write | number of bytes to read)."""
        with self._lock:
            if self._closed:
                raise OSError(errno.EBADF, "Bad file descriptor")
            if self._nack_transfers:
                self._nack_transfers -= 1
                raise _remote_io_error()
            results = []
            try:
                for address, payload in messages:
                    device = self.devices.get(address)
                    if device is None:
                        raise I2CNack
                    if isinstance(payload, bytes):
                        device.write(payload)
                    else:
                        results.append(self._corrupted(device.read(payload)))
            except I2CNack as err:
                raise _remote_io_error() from err
            return results

    def _corrupted(self, data: bytes) -> bytes:
        if not self._corrupt_reads or self._corrupt_length not in (None, len(data)):
            return data
        self._corrupt_reads -= 1
        noisy = bytearray(data)
        for index in range(WORD_FRAME - 1, len(noisy), WORD_FRAME):
            noisy[index] ^= 0x01
        return bytes(noisy)

    # smbus2.SMBus API -------------------------------------------------------------

    def write_byte(self, i2c_addr: int, value: int, force: bool | None = None) -> None:
        self._transfer([(i2c_addr, bytes([value]))])

    def read_byte_data(self, i2c_addr: int, register: int, force: bool | None = None) -> int:
        return self._transfer([(i2c_addr, bytes([register])), (i2c_addr, 1)])[0][0]

    def write_byte_data(
        self, i2c_addr: int, register: int, value: int, force: bool | None = None
    ) -> None:
        self._transfer([(i2c_addr, bytes([register, value]))])

    def read_i2c_block_data(
        self, i2c_addr: int, register: int, length: int, force: bool | None = None
    ) -> list[int]:
        if length > SMBUS_BLOCK_MAX:
            raise ValueError(f"Desired block length over {SMBUS_BLOCK_MAX} bytes")
        return list(self._transfer([(i2c_addr, bytes([register])), (i2c_addr, length)])[0])

    def write_i2c_block_data(
        self, i2c_addr: int, register: int, data: Sequence[int], force: bool | None = None
    ) -> None:
        if len(data) > SMBUS_BLOCK_MAX:
            raise ValueError(f"Data length cannot exceed {SMBUS_BLOCK_MAX} bytes")
        self._transfer([(i2c_addr, bytes([register, *data]))])

    def i2c_rdwr(self, *i2c_msgs: i2c_msg) -> None:
        """Combined transfer of smbus2 i2c_msg objects; read buffers are filled in place."""
        plan: list[tuple[int, bytes | int]] = [
            (msg.addr, msg.len if msg.flags & I2C_M_RD else bytes(msg)) for msg in i2c_msgs
        ]
        reads = iter(self._transfer(plan))
        for msg in i2c_msgs:
            if msg.flags & I2C_M_RD:
                memmove(msg.buf, next(reads), msg.len)

    def close(self) -> None:
        self._closed = True

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
