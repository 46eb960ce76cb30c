"""The UART sensors Hearth supports, and opening one on a serial port with serialx."""

from __future__ import annotations

from typing import TypeVar

import serialx

from .mhz19 import MHZ19B
from .pms5003 import PMS5003, PMS7003
from .sds011 import SDS011
from .senseair_s8 import SenseairS8
from .serial_framing import FramedSerialDriver

D = TypeVar("D", bound=FramedSerialDriver)

SERIAL_DRIVERS: dict[str, type[FramedSerialDriver]] = {
    "pms5003": PMS5003,
    "pms7003": PMS7003,
    "sds011": SDS011,
    "mhz19b": MHZ19B,
    "senseair_s8": SenseairS8,
}


async def open_serial_driver(driver_cls: type[D], port: str) -> D:
    """Open `port` (e.g. /dev/ttyUSB0, /dev/serial/by-id/...) at 8N1 and the driver's baud.

    The port is locked for exclusive use. A missing, busy or inaccessible port raises
    OSError (FileNotFoundError, errno EBUSY, PermissionError); close the driver with
    `await driver.close()`.
    """
    reader, writer = await serialx.open_serial_connection(port, baudrate=driver_cls.baudrate)
    return driver_cls(reader, writer)
