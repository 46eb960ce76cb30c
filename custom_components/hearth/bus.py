"""I2C buses: finding them, opening them, and keeping two devices' transactions apart.

smbus2 blocks, so every driver call runs in the executor; a bus's transactions are
serialised by one asyncio.Lock per bus, shared by all config entries and flows using it.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from glob import glob
from pathlib import Path
from typing import Any, TypeVar

from homeassistant.core import HomeAssistant
from homeassistant.util.hass_dict import HassKey
from smbus2 import SMBus

from .access import node_error
from .const import DOMAIN, SIMULATED_BUS
from .drivers.base import I2CBus
from .simulation import SimulatedBus

T = TypeVar("T")

BUS_GLOB = "/dev/i2c-*"
SYSFS_I2C_DEV = Path("/sys/class/i2c-dev")

_BUS_NUMBER = re.compile(r"i2c-(\d+)$")


@dataclass(frozen=True, slots=True)
class BusChoice:
    """A bus as the config flow offers it."""

    path: str
    label: str


def _bus_number(path: str) -> int:
    match = _BUS_NUMBER.search(path)
    return int(match.group(1)) if match else -1


def list_buses() -> list[BusChoice]:
    """The /dev/i2c-N nodes, labelled with their adapter so the right bus is obvious.

    On a Raspberry Pi the header pins are i2c-1 ("bcm2835 (i2c@7e804000)"); the
    HDMI/DDC adapters are useless for sensors. Blocking: run in the executor.
    """
    choices = []
    for path in sorted(glob(BUS_GLOB), key=_bus_number):
        name = Path(path).name
        try:
            adapter = (SYSFS_I2C_DEV / name / "name").read_text().strip()
        except OSError:
            adapter = ""
        choices.append(BusChoice(path, f"{path} ({adapter})" if adapter else path))
    return choices


def open_smbus(path: str) -> SMBus:
    """Open a real bus node. Blocking; DeviceNodeError when the host refuses."""
    try:
        return SMBus(path)
    except OSError as err:
        if (reason := node_error(path, err)) is not None:
            raise reason from err
        raise


@dataclass(slots=True)
class SharedBus:
    """An open bus and the lock that keeps its transactions from interleaving."""

    hass: HomeAssistant
    bus_id: str
    bus: I2CBus
    close: Callable[[], None]
    # Drivers wait through this: real time on hardware, the emulators' clock in simulation.
    sleep: Callable[[float], None] = time.sleep
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    users: int = 0

    async def run(self, func: Callable[..., T], *args: Any) -> T:
        """Run a blocking driver call in the executor with the bus to itself."""
        async with self.lock:
            return await self.hass.async_add_executor_job(func, *args)


@dataclass(slots=True)
class BusRegistry:
    """Open buses by id, reference counted, shared across config entries and flows."""

    hass: HomeAssistant
    buses: dict[str, SharedBus] = field(default_factory=dict)
    simulated: SimulatedBus | None = None
    _opening: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def acquire(self, bus_id: str) -> SharedBus:
        """Open (or share) the bus; DeviceNodeError when its node is missing or refused."""
        async with self._opening:
            shared = self.buses.get(bus_id)
            if shared is None:
                shared = await self._open(bus_id)
                self.buses[bus_id] = shared
            shared.users += 1
            return shared

    async def release(self, shared: SharedBus) -> None:
        """Drop one user; the last one closes the bus."""
        async with self._opening:
            shared.users -= 1
            if shared.users == 0 and self.buses.get(shared.bus_id) is shared:
                del self.buses[shared.bus_id]
                async with shared.lock:
                    await self.hass.async_add_executor_job(shared.close)

    @asynccontextmanager
    async def borrow(self, bus_id: str) -> AsyncIterator[SharedBus]:
        """The bus for the length of a config-flow step."""
        shared = await self.acquire(bus_id)
        try:
            yield shared
        finally:
            await self.release(shared)

    async def _open(self, bus_id: str) -> SharedBus:
        if bus_id == SIMULATED_BUS:
            if self.simulated is None:
                self.simulated = SimulatedBus()
            # The simulated bus lives as long as Home Assistant: closing it would lose
            # the emulated chips' state (modes, calibration) as real chips keep theirs.
            return SharedBus(
                self.hass, bus_id, self.simulated.bus, lambda: None, self.simulated.sleep
            )
        smbus = await self.hass.async_add_executor_job(open_smbus, bus_id)
        return SharedBus(self.hass, bus_id, smbus, smbus.close)


BUSES: HassKey[BusRegistry] = HassKey(f"{DOMAIN}_buses")


def bus_registry(hass: HomeAssistant) -> BusRegistry:
    """The registry for this Home Assistant instance."""
    if (registry := hass.data.get(BUSES)) is None:
        registry = hass.data[BUSES] = BusRegistry(hass)
    return registry
