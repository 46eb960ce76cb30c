"""Why a /dev node (I2C bus or serial port) cannot be used, in terms a user can act on."""

from __future__ import annotations

import errno
from typing import ClassVar


class DeviceNodeError(Exception):
    """The host, not the sensor, stands in the way; the user must change something there."""

    # Shared by config-flow errors, repair issues and exception translations.
    translation_key: ClassVar[str]

    def __init__(self, path: str, cause: OSError) -> None:
        super().__init__(f"{path}: {cause.strerror or cause}")
        self.path = path


class NodeMissingError(DeviceNodeError):
    """No such device node: interface disabled, adapter unplugged, or a wrong path."""

    translation_key = "node_missing"


class NodePermissionError(DeviceNodeError):
    """The node exists but Home Assistant may not open it."""

    translation_key = "node_permission"


class NodeBusyError(DeviceNodeError):
    """Another program (or a kernel driver, for an I2C address) already holds it."""

    translation_key = "node_busy"


class NotSerialPortError(DeviceNodeError):
    """The path exists but is not a terminal device."""

    translation_key = "not_serial_port"


_BY_ERRNO: dict[int, type[DeviceNodeError]] = {
    errno.ENOENT: NodeMissingError,
    errno.ENODEV: NodeMissingError,
    errno.EACCES: NodePermissionError,
    errno.EPERM: NodePermissionError,
    errno.EBUSY: NodeBusyError,
    errno.ENOTTY: NotSerialPortError,
}


def node_error(path: str, err: OSError) -> DeviceNodeError | None:
    """The user-facing reason behind an OSError from opening `path`, if it is one."""
    cls = _BY_ERRNO.get(err.errno) if err.errno is not None else None
    return cls(path, err) if cls is not None else None
