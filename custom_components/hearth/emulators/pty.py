"""A real pseudo-terminal standing in for a USB-serial adapter.

The driver opens the slave path (/dev/pts/N) with serialx exactly as it would open
/dev/ttyUSB0; the emulated device reads and writes the master side.
"""

from __future__ import annotations

import os
import tty
from types import TracebackType


class PtyPair:
    """An open pty in raw mode. `close()` is the unplug: the driver's reads fail with EIO."""

    def __init__(self) -> None:
        self.master_fd, self._slave_fd = os.openpty()
        # Raw: no echo, no CR/LF translation, no XON/XOFF, so binary frames pass unaltered
        # even before the driver configures the port.
        tty.setraw(self._slave_fd)
        os.set_blocking(self.master_fd, False)
        self.path = os.ttyname(self._slave_fd)
        self.closed = False

    def close(self) -> None:
        """Close both ends; idempotent."""
        if self.closed:
            return
        self.closed = True
        # The slave stayed open so the master never saw EIO while no driver had the
        # port open (before the first open, between a driver's close and reopen).
        os.close(self._slave_fd)
        os.close(self.master_fd)

    def __enter__(self) -> PtyPair:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
