"""The common machinery of an emulated UART sensor behind a pseudo-terminal.

A device owns a PtyPair: it reads the host's commands from the master side with
loop.add_reader (no threads) and writes its frames through one writer task, so faults
such as a frame split across two writes keep their byte order. Physical state drifts as
a seeded random walk; the values are simulation, not secrets.
"""

from __future__ import annotations

import asyncio
import os
import random
from abc import ABC, abstractmethod
from collections.abc import Callable, Coroutine
from types import TracebackType
from typing import Any, ClassVar, Self

from .pty import PtyPair

# Pause between the two halves of a split frame: long enough that the host's read
# returns the first half on its own.
SPLIT_PAUSE_SECONDS = 0.01


class SerialDeviceEmulator(ABC):
    """An emulated device on its own pseudo-terminal.

    Fault injection: `corrupt_next(n)` spoils the checksum of the next n frames,
    `garbage_before_next(data)` writes noise ahead of the next frame, `split_next(n)`
    sends each of the next n frames in two writes, and `responding = False` mutes the
    device (it stops streaming and ignores commands). `unplug()` closes the pty.
    """

    model: ClassVar[str]
    baudrate: ClassVar[int] = 9600

    def __init__(self, *, seed: int = 0, drift: float = 0.0) -> None:
        self.rng = random.Random(seed)  # noqa: S311 - simulated readings, nothing secret
        self.drift = drift
        self.responding = True
        self.received = bytearray()  # every byte the host sent, for assertions
        self._pty: PtyPair | None = None
        self._outbox: asyncio.Queue[bytes | float] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []
        self._timers: set[asyncio.TimerHandle] = set()
        self._corrupt = 0
        self._split = 0
        self._garbage = b""

    @property
    def path(self) -> str:
        """The serial port path the driver opens (the pty slave)."""
        if self._pty is None:
            raise RuntimeError(f"{self.model} emulator is not plugged in; call start()")
        return self._pty.path

    async def start(self) -> str:
        """Plug the device into a fresh pty and start it; return the port path."""
        if self._pty is not None:
            raise RuntimeError(f"{self.model} emulator is already running on {self.path}")
        self._pty = PtyPair()
        loop = asyncio.get_running_loop()
        loop.add_reader(self._pty.master_fd, self._on_readable)
        self._tasks.append(loop.create_task(self._write_loop(), name=f"{self.model} emulator tx"))
        self._tasks.extend(loop.create_task(coro) for coro in self._background())
        return self._pty.path

    async def unplug(self) -> None:
        """Stop the device and close its pty; the host's port fails with EIO."""
        if self._pty is None:
            return
        asyncio.get_running_loop().remove_reader(self._pty.master_fd)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        for timer in self._timers:
            timer.cancel()
        self._timers.clear()
        self._outbox = asyncio.Queue()
        self._pty.close()
        self._pty = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.unplug()

    def corrupt_next(self, frames: int = 1) -> None:
        """Flip one payload bit in each of the next `frames` frames."""
        self._corrupt += frames

    def split_next(self, frames: int = 1) -> None:
        """Send each of the next `frames` frames as two writes with a pause between."""
        self._split += frames

    def garbage_before_next(self, data: bytes) -> None:
        """Write `data` just before the next frame."""
        self._garbage += data

    def send(self, frame: bytes) -> None:
        """Queue one frame, applying any pending faults."""
        if not self.responding:
            return
        if self._garbage:
            self._outbox.put_nowait(self._garbage)
            self._garbage = b""
        if self._corrupt:
            self._corrupt -= 1
            frame = self.corrupt(frame)
        if self._split:
            self._split -= 1
            half = len(frame) // 2
            self._outbox.put_nowait(frame[:half])
            self._outbox.put_nowait(SPLIT_PAUSE_SECONDS)
            self._outbox.put_nowait(frame[half:])
        else:
            self._outbox.put_nowait(frame)

    def corrupt(self, frame: bytes) -> bytes:
        """Flip the low bit of the middle byte: inside every protocol's checked payload."""
        middle = len(frame) // 2
        return frame[:middle] + bytes([frame[middle] ^ 0x01]) + frame[middle + 1 :]

    def drifted(self, value: float, low: float, high: float) -> float:
        """One step of the random walk the physical quantities follow."""
        if not self.drift:
            return value
        return min(high, max(low, value + self.rng.gauss(0.0, self.drift)))

    def call_later(self, delay: float, callback: Callable[[], None]) -> asyncio.TimerHandle:
        """Run `callback` after `delay` seconds unless the device is unplugged first."""

        def run() -> None:
            self._timers.discard(handle)
            callback()

        handle = asyncio.get_running_loop().call_later(delay, run)
        self._timers.add(handle)
        return handle

    @abstractmethod
    def handle(self, data: bytes) -> None:
        """React to bytes received from the host."""

    def _background(self) -> list[Coroutine[Any, Any, None]]:
        """Coroutines to run while plugged in (e.g. a streaming loop)."""
        return []

    def _on_readable(self) -> None:
        if self._pty is None:
            return
        try:
            data = os.read(self._pty.master_fd, 1024)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            return  # no host has the port open; nothing was sent
        self.received += data
        if self.responding:
            self.handle(data)

    async def _write_loop(self) -> None:
        while True:
            item = await self._outbox.get()
            if isinstance(item, float):
                await asyncio.sleep(item)
            else:
                self._write(item)

    def _write(self, data: bytes) -> None:
        assert self._pty is not None
        try:
            os.write(self._pty.master_fd, data)
        except OSError:
            # The host is not reading and the tty buffer is full: like a UART overrun,
            # the bytes are lost.
            return


class StreamingEmulator(SerialDeviceEmulator):
    """A device that pushes a data frame every `interval` seconds while it is active.

    With `interval=None` nothing is sent on a timer; `emit()` sends each frame, which
    lets a test decide exactly which frames exist.
    """

    def __init__(self, *, interval: float | None = 1.0, seed: int = 0, drift: float = 0.0) -> None:
        super().__init__(seed=seed, drift=drift)
        self.interval = interval

    @abstractmethod
    def streaming(self) -> bool:
        """Whether the device currently pushes frames (awake, active mode)."""

    @abstractmethod
    def data_frame(self) -> bytes:
        """The next measurement frame from the current physical state."""

    def emit(self) -> None:
        """Send one data frame now if the device is streaming."""
        if self.streaming():
            self.send(self.data_frame())

    def _background(self) -> list[Coroutine[Any, Any, None]]:
        return [] if self.interval is None else [self._stream(self.interval)]

    async def _stream(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            self.emit()
