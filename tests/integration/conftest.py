"""Home Assistant test harness (pytest-homeassistant-custom-component) and Hearth fixtures.

Hardware seams, and only these: the simulated bus gets a virtual clock so emulated
conversion times pass instantly; a "real" bus is a file under tmp_path standing in for
/dev/i2c-N whose smbus2.SMBus is an emulated bus (or raises what the kernel would);
serial sensors run on real pseudo-terminals.
"""

from __future__ import annotations

import asyncio
import errno
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from homeassistant.core import HomeAssistant
from pytest_homeassistant_custom_component.common import MockConfigEntry

# Imported at module top so this repository's package wins over HA's testing config dir.
import custom_components  # noqa: F401
from custom_components.hearth import bus as bus_module
from custom_components.hearth import coordinator as coordinator_module
from custom_components.hearth import device as device_module
from custom_components.hearth.bus import bus_registry
from custom_components.hearth.const import (
    CONF_ADDRESS,
    CONF_BUS,
    CONF_KIND,
    CONF_MODEL,
    CONF_PORT,
    DOMAIN,
    KIND_I2C,
    KIND_UART,
    SIMULATED_BUS,
)
from custom_components.hearth.emulators.i2c_bus import EmulatedI2CBus
from custom_components.hearth.emulators.serial_device import SerialDeviceEmulator
from custom_components.hearth.simulation import SimulatedBus

# A muted serial device is detected this fast instead of after the production 10 s.
TEST_SERIAL_TIMEOUT = 0.5


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations(enable_custom_integrations: None) -> None:
    """Let Home Assistant load integrations from custom_components/."""


@pytest.fixture(autouse=True)
def fast_serial_timing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Waiting for frames that never come need not take 10 s per test, and streamed
    frames are published as they come (test_uart checks the production throttle)."""
    monkeypatch.setattr(device_module, "SERIAL_READ_TIMEOUT_SECONDS", TEST_SERIAL_TIMEOUT)
    monkeypatch.setattr(coordinator_module, "CONTINUOUS_PUBLISH_SECONDS", 0.0)


class SkippingClock:
    """Real time plus skips: sleep() jumps ahead instantly instead of waiting.

    Drivers the integration creates wait through sleep(); the catalog's scan creates
    its own drivers that wait with time.sleep, which real time covers.
    """

    def __init__(self) -> None:
        self.skipped = 0.0

    def now(self) -> float:
        return time.monotonic() + self.skipped

    def sleep(self, seconds: float) -> None:
        self.skipped += seconds


@pytest.fixture
def clock() -> SkippingClock:
    """Time for the simulated bus: conversion and execution times pass instantly."""
    return SkippingClock()


@pytest.fixture
def simulated(hass: HomeAssistant, clock: SkippingClock) -> SimulatedBus:
    """The demo bus with every chip, without drift so readings can be checked exactly."""
    simulated = SimulatedBus(clock=clock.now, sleep=clock.sleep, drift=False)
    bus_registry(hass).simulated = simulated
    return simulated


class BusHandle:
    """What SMBus(path) returns: an open file onto the emulated bus. Closing the file
    leaves the bus and its chips as they are, as closing /dev/i2c-1 does."""

    def __init__(self, bus: EmulatedI2CBus) -> None:
        self._bus = bus
        self.closed = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._bus, name)

    def close(self) -> None:
        self.closed = True


@dataclass
class FakeI2CNodes:
    """/dev/i2c-N nodes as files in a directory, opened as emulated buses.

    `buses[path]` is what SMBus(path) returns; `errors[path]` is what it raises instead.
    """

    directory: Path
    buses: dict[str, EmulatedI2CBus] = field(default_factory=dict)
    errors: dict[str, OSError] = field(default_factory=dict)
    opened: list[str] = field(default_factory=list)
    handles: list[BusHandle] = field(default_factory=list)

    def add(self, number: int, adapter: str | None = "bcm2835 (i2c@7e804000)") -> str:
        """Create node i2c-`number` with an empty emulated bus; return its path.

        `adapter` is the name sysfs reports, or None for an adapter without one.
        """
        path = self.directory / "dev" / f"i2c-{number}"
        path.parent.mkdir(exist_ok=True)
        path.touch()
        if adapter is not None:
            sysfs = self.directory / "sys" / f"i2c-{number}"
            sysfs.mkdir(parents=True, exist_ok=True)
            (sysfs / "name").write_text(f"{adapter}\n")
        self.buses[str(path)] = EmulatedI2CBus()
        return str(path)

    def smbus(self, path: str) -> BusHandle:
        """Stand-in for smbus2.SMBus(path)."""
        self.opened.append(path)
        if path in self.errors:
            raise self.errors[path]
        if path not in self.buses:
            raise FileNotFoundError(errno.ENOENT, "No such file or directory", path)
        handle = BusHandle(self.buses[path])
        self.handles.append(handle)
        return handle


@pytest.fixture
def i2c_nodes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeI2CNodes:
    """Route bus listing and smbus2.SMBus to fake nodes under tmp_path."""
    nodes = FakeI2CNodes(tmp_path)
    monkeypatch.setattr(bus_module, "BUS_GLOB", str(tmp_path / "dev" / "i2c-*"))
    monkeypatch.setattr(bus_module, "SYSFS_I2C_DEV", tmp_path / "sys")
    monkeypatch.setattr(bus_module, "SMBus", nodes.smbus)
    return nodes


async def wait_for(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    """Wait until `condition` holds: it depends on a pty, a reader task and the emulator's
    own tasks, none of which offers an event to await."""
    async with asyncio.timeout(timeout):
        while not condition():  # noqa: ASYNC110 - nothing to await but time
            await asyncio.sleep(0.01)


def i2c_entry(
    hass: HomeAssistant,
    model: str,
    address: int,
    bus: str = SIMULATED_BUS,
    options: dict[str, Any] | None = None,
    **extra: Any,
) -> MockConfigEntry:
    """A config entry for an I2C chip, added to hass (not yet set up)."""
    entry = MockConfigEntry(
        domain=DOMAIN,
        title=f"{model} 0x{address:02X}",
        unique_id=f"{bus}@0x{address:02x}",
        data={
            CONF_KIND: KIND_I2C,
            CONF_BUS: bus,
            CONF_ADDRESS: address,
            CONF_MODEL: model,
            **extra,
        },
        options=options or {},
    )
    entry.add_to_hass(hass)
    return entry


def uart_entry(
    hass: HomeAssistant, model: str, port: str, options: dict[str, Any] | None = None
) -> MockConfigEntry:
    """A config entry for a serial sensor, added to hass (not yet set up)."""
    entry = MockConfigEntry(
        domain=DOMAIN,
        title=f"{model} on port",
        unique_id=port,
        data={CONF_KIND: KIND_UART, CONF_PORT: port, CONF_MODEL: model},
        options=options or {},
    )
    entry.add_to_hass(hass)
    return entry


@dataclass
class PluggedPort:
    """A serial device behind a stable symlink, as /dev/serial/by-id/ provides.

    unplug() closes the pty (reads fail with EIO) and removes the link; plug() starts the
    device on a fresh pty and points the link at it, as udev does on re-plugging.
    """

    emulator: SerialDeviceEmulator
    link: Path

    async def plug(self) -> None:
        path = await self.emulator.start()
        self.link.unlink(missing_ok=True)
        self.link.symlink_to(path)

    async def unplug(self) -> None:
        self.link.unlink(missing_ok=True)
        await self.emulator.unplug()


@pytest.fixture
async def plugged(
    tmp_path: Path,
) -> AsyncIterator[Callable[[SerialDeviceEmulator], PluggedPort]]:
    """Factory plugging emulators in behind by-id-like links; unplugs them all at the end."""
    ports: list[PluggedPort] = []

    def factory(emulator: SerialDeviceEmulator) -> PluggedPort:
        link = tmp_path / f"usb-Hearth_{emulator.model.replace(' ', '_')}_{len(ports)}-if00-port0"
        port = PluggedPort(emulator, link)
        ports.append(port)
        return port

    yield factory
    for port in ports:
        await port.unplug()
