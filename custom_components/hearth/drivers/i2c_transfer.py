"""Transfers shared by the I2C drivers: errno mapping and Sensirion command exchanges."""

from __future__ import annotations

import errno
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from smbus2 import i2c_msg

from .base import I2CBus, Sleep, retry_on_checksum
from .crc import WORD_FRAME, pack_words, unpack_words
from .errors import DriverError, NoAckError

# What Linux i2c-dev reports when a byte or the address is not acknowledged: EREMOTEIO
# (121) on most adapters (bcm2835, designware), ENXIO on SMBus controllers, EIO on some.
NACK_ERRNOS = frozenset({errno.EREMOTEIO, errno.ENXIO, errno.EIO})



@contextmanager
def bus_errors(address: int) -> Iterator[None]:
    """Turn the OSError of a failed transfer into the driver error the integration maps."""
    try:
        yield
    except OSError as err:
        if err.errno in NACK_ERRNOS:
            raise NoAckError(
                f"nothing acknowledged at I2C address 0x{address:02X} ({err}); check the "
                "wiring, the sensor's power and pull-ups, and the address"
            ) from err
        raise DriverError(f"I2C transfer with 0x{address:02X} failed: {err}") from err


class SensirionLink:
    """Command/response exchanges with one Sensirion chip (SHT3x, SHT4x, SCD4x).

    A command is a write of the command code (1 or 2 bytes) plus argument words with CRC;
    after the chip's execution time the response is read as CRC-protected words. The chips
    NACK while executing, so every wait goes through the injectable `sleep`.
    """

    def __init__(self, bus: I2CBus, address: int, *, sleep: Sleep, command_bytes: int = 2) -> None:
        self.bus = bus
        self.address = address
        self.sleep = sleep
        self.command_bytes = command_bytes

    def send(self, command: int, words: Sequence[int] = (), wait: float = 0.0) -> None:
        """Write a command with optional argument words, then wait its execution time."""
        frame = command.to_bytes(self.command_bytes, "big") + pack_words(words)
        with bus_errors(self.address):
            self.bus.i2c_rdwr(i2c_msg.write(self.address, frame))
        if wait:
            self.sleep(wait)

    def receive(self, word_count: int) -> list[int]:
        """Read `word_count` words; ChecksumError if any CRC is wrong."""
        message = i2c_msg.read(self.address, word_count * WORD_FRAME)
        with bus_errors(self.address):
            self.bus.i2c_rdwr(message)
        return unpack_words(bytes(message))

    def query(self, command: int, word_count: int, wait: float) -> list[int]:
        """Send a command and read its answer, repeating the exchange on CRC failure.

        Only for commands that can be repeated harmlessly (measure, read identity/status).
        """

        def exchange() -> list[int]:
            self.send(command, wait=wait)
            return self.receive(word_count)

        return retry_on_checksum(exchange)
