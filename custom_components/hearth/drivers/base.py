"""The contract every driver follows, independent of Home Assistant.

I2C drivers are blocking (smbus2 is); callers run them in an executor while holding the
bus lock. Serial drivers are pure frame codecs plus an async exchange over serialx's
asyncio streams, so they can be tested byte for byte.
"""

from __future__ import annotations

import asyncio
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import ClassVar, Protocol, TypeVar

from smbus2 import i2c_msg

from .errors import ChecksumError

T = TypeVar("T")
Sleep = Callable[[float], None]

CHECKSUM_RETRIES = 3


class I2CBus(Protocol):
    """The subset of smbus2.SMBus the drivers use; the emulated bus implements the same."""

    def read_byte_data(self, i2c_addr: int, register: int) -> int: ...
    def write_byte_data(self, i2c_addr: int, register: int, value: int) -> None: ...
    def read_i2c_block_data(self, i2c_addr: int, register: int, length: int) -> list[int]: ...
    def write_i2c_block_data(self, i2c_addr: int, register: int, data: list[int]) -> None: ...
    def write_byte(self, i2c_addr: int, value: int) -> None: ...
    def i2c_rdwr(self, *i2c_msgs: i2c_msg) -> None: ...


def retry_on_checksum(read: Callable[[], T], attempts: int = CHECKSUM_RETRIES) -> T:
    """Repeat a transfer whose CRC/checksum failed; a persistent failure propagates."""
    for attempt in range(attempts):
        try:
            return read()
        except ChecksumError:
            if attempt == attempts - 1:
                raise
    raise AssertionError("unreachable")


class I2CDriver(ABC):
    """One chip at one address on one bus. Methods block; never call them on the event loop."""

    model: ClassVar[str]
    manufacturer: ClassVar[str]
    addresses: ClassVar[tuple[int, ...]]
    # Keys of drivers.quantities.QUANTITIES this chip reports.
    quantities: ClassVar[tuple[str, ...]]
    default_poll_seconds: ClassVar[int] = 60

    def __init__(self, bus: I2CBus, address: int, *, sleep: Sleep = time.sleep) -> None:
        self.bus = bus
        self.address = address
        # Datasheet execution times are waited out through this, so emulators can run fast.
        self._sleep = sleep

    @abstractmethod
    def identify(self) -> None:
        """Check the chip's identity; raise NoAckError or ChipMismatchError. May reset it."""

    def probe(self) -> None:
        """Read-only identity check, harmless to run against an unknown chip during a scan."""
        self.identify()

    def initialize(self) -> None:  # noqa: B027 - optional hook, most chips need none
        """Configure the chip after identify(): modes, calibration readout, start measuring."""

    @abstractmethod
    def read(self) -> dict[str, float]:
        """Return one validated measurement keyed by quantity."""


class SerialDriver(ABC):
    """A serial protocol: frame codec plus the exchange that yields one measurement.

    Streaming devices (PMS5003, SDS011) push frames unasked; polled ones (MH-Z19B,
    Senseair S8) answer a command. Either way `measure` returns the next valid reading,
    resynchronising past garbage and corrupted frames without dropping the stream.
    """

    model: ClassVar[str]
    manufacturer: ClassVar[str]
    baudrate: ClassVar[int] = 9600
    quantities: ClassVar[tuple[str, ...]]
    streaming: ClassVar[bool]
    default_poll_seconds: ClassVar[int] = 60

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.checksum_errors = 0

    @abstractmethod
    async def measure(self, timeout: float) -> dict[str, float]:
        """Return the next valid measurement; raise FrameTimeoutError when none comes."""

    @abstractmethod
    async def close(self) -> None:
        """Stop reading and close the port; safe after the port has vanished."""
