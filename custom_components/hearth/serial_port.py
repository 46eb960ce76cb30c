"""Serial ports: listing them for the user, and naming each by its stable by-id path."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import serialx

from .access import node_error
from .drivers.serial_catalog import SERIAL_DRIVERS, open_serial_driver
from .drivers.serial_framing import FramedSerialDriver

BY_ID_DIR = Path("/dev/serial/by-id")


@dataclass(frozen=True, slots=True)
class PortChoice:
    """A port as the config flow offers it."""

    path: str
    label: str


async def async_list_ports() -> list[PortChoice]:
    """Ports serialx finds, /dev/serial/by-id/ paths first (they survive re-plugging)."""
    ports = await serialx.async_list_serial_ports()
    choices = [
        PortChoice(
            port.device,
            port.device
            if port.device == port.resolved_device
            else f"{port.device} ({port.resolved_device})",
        )
        for port in ports
    ]
    return sorted(choices, key=lambda c: (not c.path.startswith(f"{BY_ID_DIR}/"), c.path))


def stable_path(path: str) -> str:
    """The /dev/serial/by-id/ link pointing at `path` if there is one, else `path` itself.

    /dev/ttyUSB0 and /dev/ttyUSB1 swap when adapters are re-plugged; the by-id name
    (vendor, product, serial number) does not. Blocking: run in the executor.
    """
    try:
        target = os.path.realpath(path)
        for link in BY_ID_DIR.iterdir():
            if os.path.realpath(link) == target:
                return str(link)
    except OSError:
        pass
    return path


async def async_open(model: str, path: str) -> FramedSerialDriver:
    """Open the driver for `model` on `path`; DeviceNodeError when the host refuses."""
    try:
        return await open_serial_driver(SERIAL_DRIVERS[model], path)
    except OSError as err:
        if (reason := node_error(path, err)) is not None:
            raise reason from err
        raise
