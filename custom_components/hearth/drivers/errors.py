"""Errors a driver raises; the config flow and coordinators map each to a user-facing message."""


class DriverError(Exception):
    """Base class for sensor driver failures."""


class NoAckError(DriverError):
    """Nothing acknowledged at the address (EREMOTEIO/ENXIO): wiring or address is wrong."""


class ChecksumError(DriverError):
    """A CRC or checksum did not match after the allowed retries: noisy cable or weak pull-ups."""


class ChipMismatchError(DriverError):
    """A chip answered but its identification is not the expected one."""


class NotReadyError(DriverError):
    """The chip has no fresh measurement yet; try again later."""


class FrameTimeoutError(DriverError):
    """A serial device sent no valid frame within the expected time."""
