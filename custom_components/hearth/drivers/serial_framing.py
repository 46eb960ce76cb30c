"""Frame resynchronisation and the read loop every serial driver shares.

A UART delivers bytes, not frames: a read may end mid-frame, line noise may add bytes,
and a corrupted frame looks like a good one until its checksum is checked. The scanner
turns the byte stream back into validated frames; the driver runs one reader task per
port so stale frames never pile up between polls and a reply is matched to the request
that was sent after it registered its interest.
"""

from __future__ import annotations

import asyncio
import errno
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from typing import ClassVar

from .base import CHECKSUM_RETRIES, SerialDriver
from .errors import ChecksumError, FrameTimeoutError

READ_CHUNK = 512


@dataclass(frozen=True, slots=True)
class FrameFormat:
    """How one protocol's frames look on the wire.

    `length` sees the first `prefix` bytes of a candidate (starting with `header`) and
    returns the whole frame's length, or None when those bytes cannot start a frame.
    `valid` checks the complete frame's checksum/CRC and fixed trailer bytes.
    """

    header: bytes
    prefix: int
    length: Callable[[bytes], int | None]
    valid: Callable[[bytes], bool]


class FrameScanner:
    """Buffered parser that finds frames in an arbitrarily chunked byte stream.

    On a checksum failure only the first byte of the candidate is dropped, so a real
    frame that starts inside a corrupted or spurious one is still found.
    """

    def __init__(self, fmt: FrameFormat) -> None:
        self.fmt = fmt
        self._buffer = bytearray()

    def clear(self) -> None:
        """Forget buffered bytes, e.g. leftovers that arrived before a new request."""
        self._buffer.clear()

    def feed(self, data: bytes) -> tuple[list[bytes], int]:
        """Add received bytes; return the complete valid frames and the checksum failures."""
        self._buffer += data
        frames: list[bytes] = []
        failures = 0
        header = self.fmt.header
        while True:
            start = self._buffer.find(header)
            if start < 0:
                # The tail may hold the first bytes of a header split across reads.
                del self._buffer[: max(0, len(self._buffer) - (len(header) - 1))]
                break
            del self._buffer[:start]
            if len(self._buffer) < self.fmt.prefix:
                break
            length = self.fmt.length(bytes(self._buffer[: self.fmt.prefix]))
            if length is None:
                del self._buffer[:1]
                continue
            if len(self._buffer) < length:
                break
            frame = bytes(self._buffer[:length])
            if self.fmt.valid(frame):
                frames.append(frame)
                del self._buffer[:length]
            else:
                failures += 1
                del self._buffer[:1]
        return frames, failures


@dataclass(slots=True)
class _Waiter:
    accepts: Callable[[bytes], bool]
    future: asyncio.Future[bytes]
    # Polled exchanges retry on a bad reply; streaming reads just wait for the next frame.
    fail_on_checksum: bool


class FramedSerialDriver(SerialDriver):
    """A SerialDriver whose port is read by one background task feeding a FrameScanner.

    Frames that arrive while nobody waits are dropped: a streaming sensor's readings are
    only useful fresh. When the port disappears (unplugged adapter, closed pty) every
    pending and later call raises OSError(EIO); reopen the port to recover.
    """

    frame_format: ClassVar[FrameFormat]

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        super().__init__(reader, writer)
        self._scanner = FrameScanner(self.frame_format)
        self._waiters: list[_Waiter] = []
        self._failure: Exception | None = None
        # One request/reply exchange at a time, so a reply can only answer its request.
        self._exchange = asyncio.Lock()
        # Reading starts at once so frames sent before the first request are discarded
        # as they come instead of being served stale later.
        self._reader_task = asyncio.get_running_loop().create_task(
            self._read_forever(), name=f"hearth {self.model} serial reader"
        )

    async def close(self) -> None:
        """Stop reading and close the port; safe to call after the port has vanished."""
        self._reader_task.cancel()
        with suppress(asyncio.CancelledError):
            await self._reader_task
        if self._failure is None:
            self._failure = OSError(errno.EBADF, "closed by the driver")
        self._fail(lambda w: True, self._port_lost)
        self.writer.close()
        with suppress(OSError):
            await self.writer.wait_closed()

    def _check_port(self) -> None:
        if self._failure is not None:
            raise self._port_lost()

    def _port_lost(self) -> OSError:
        err = OSError(
            errno.EIO,
            f"{self.model}: serial port closed or unplugged ({self._failure}); reopen the port",
        )
        err.__cause__ = self._failure
        return err

    async def _read_forever(self) -> None:
        try:
            while True:
                data = await self.reader.read(READ_CHUNK)
                if not data:
                    raise OSError(errno.EIO, "end of stream")
                frames, failures = self._scanner.feed(data)
                if failures:
                    self.checksum_errors += failures
                    self._fail(lambda w: w.fail_on_checksum, self._checksum_error)
                for frame in frames:
                    self._deliver(frame)
        except Exception as exc:
            # Any read failure ends this port's life; the caller reopens it.
            self._failure = exc
            self._fail(lambda w: True, self._port_lost)

    def _checksum_error(self) -> ChecksumError:
        return ChecksumError(
            f"{self.model}: reply failed its checksum; check the cable (short, twisted, "
            "away from mains) and the 3.3 V/5 V logic levels"
        )

    def _deliver(self, frame: bytes) -> None:
        for waiter in self._waiters:
            if not waiter.future.done() and waiter.accepts(frame):
                waiter.future.set_result(frame)

    def _fail(self, match: Callable[[_Waiter], bool], error: Callable[[], Exception]) -> None:
        for waiter in self._waiters:
            if not waiter.future.done() and match(waiter):
                waiter.future.set_exception(error())

    @asynccontextmanager
    async def _deadline(self, timeout: float, what: str) -> AsyncIterator[None]:
        try:
            async with asyncio.timeout(timeout):
                yield
        except TimeoutError as err:
            raise FrameTimeoutError(
                f"{self.model}: no valid {what} within {timeout:g} s; check power, that "
                f"TX and RX are crossed, and that the port runs at {self.baudrate} baud"
            ) from err

    async def _next_frame(
        self,
        accepts: Callable[[bytes], bool],
        command: bytes | None = None,
        fail_on_checksum: bool = False,
    ) -> bytes:
        """Wait for the next accepted frame, sending `command` once the wait is registered."""
        self._check_port()
        waiter = _Waiter(accepts, asyncio.get_running_loop().create_future(), fail_on_checksum)
        self._waiters.append(waiter)
        try:
            if command is not None:
                await self._write(command)
            return await waiter.future
        finally:
            self._waiters.remove(waiter)

    async def _request(
        self, command: bytes, accepts: Callable[[bytes], bool], timeout: float, what: str
    ) -> bytes:
        """Send a command and return its reply, resending on a checksum failure."""
        async with self._exchange, self._deadline(timeout, what):
            for attempt in range(CHECKSUM_RETRIES):
                # A partial candidate left from before (noise, a late reply) could
                # otherwise hold the real reply behind it until the deadline.
                self._scanner.clear()
                try:
                    return await self._next_frame(accepts, command, fail_on_checksum=True)
                except ChecksumError:
                    if attempt == CHECKSUM_RETRIES - 1:
                        raise
        raise AssertionError("unreachable")

    async def _send(self, command: bytes) -> None:
        """Send a command the device does not answer."""
        self._check_port()
        await self._write(command)

    async def _write(self, data: bytes) -> None:
        try:
            self.writer.write(data)
            await self.writer.drain()
        except OSError as exc:  # includes asyncio's ConnectionResetError("Connection lost")
            self._failure = self._failure or exc
            raise self._port_lost() from exc
