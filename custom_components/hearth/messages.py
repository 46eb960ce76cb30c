"""Every failure a user can cause, mapped to the translation that tells them what to do.

The same keys name config-flow errors (config.error.*) and exception messages
(exceptions.*), so a problem reads the same in the setup dialog and in the log.
"""

from __future__ import annotations

from .access import DeviceNodeError
from .drivers.errors import (
    ChecksumError,
    ChipMismatchError,
    DriverError,
    FrameTimeoutError,
    NoAckError,
    NotReadyError,
)

_DRIVER_KEYS: tuple[tuple[type[DriverError], str], ...] = (
    (NoAckError, "no_ack"),
    (ChecksumError, "checksum"),
    (ChipMismatchError, "wrong_chip"),
    (NotReadyError, "not_ready"),
    (FrameTimeoutError, "no_data"),
)


def error_key(err: Exception) -> str:
    """Translation key for a failure to reach or read a sensor."""
    if isinstance(err, DeviceNodeError):
        return err.translation_key
    for cls, key in _DRIVER_KEYS:
        if isinstance(err, cls):
            return key
    if isinstance(err, DriverError):
        return "sensor_error"
    return "io_error"
