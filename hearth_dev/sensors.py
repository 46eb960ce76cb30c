"""A household's simulated sensors: register-level I2C and pseudo-terminal UART emulators,
read through the integration's own drivers exactly as on a real hub."""

from __future__ import annotations

import asyncio
import sys
import types
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def _import_drivers_without_home_assistant() -> None:
    # The drivers and emulators never import Home Assistant; the integration's package
    # __init__ does. Register the package by path so its submodules load on a plain Python.
    if "custom_components.hearth" not in sys.modules:
        package = types.ModuleType("custom_components.hearth")
        package.__path__ = [str(REPO / "custom_components" / "hearth")]
        sys.modules["custom_components.hearth"] = package


_import_drivers_without_home_assistant()

# ruff: noqa: E402 - these imports need the package registered above
from custom_components.hearth.drivers.base import SerialDriver
from custom_components.hearth.drivers.bme280 import Bme280
from custom_components.hearth.drivers.serial_catalog import SERIAL_DRIVERS, open_serial_driver
from custom_components.hearth.emulators.bme280 import Bme280Emulator
from custom_components.hearth.emulators.environment import INDOOR_WANDER, Ambient, Drift
from custom_components.hearth.emulators.i2c_bus import EmulatedI2CBus
from custom_components.hearth.emulators.mhz19 import MHZ19BEmulator
from custom_components.hearth.emulators.pms5003 import PMS5003Emulator

BME280_ADDRESS = 0x76


@dataclass
class HouseholdSensors:
    """A BME280 on an emulated I2C bus, a PMS5003 and an MH-Z19B on pseudo-terminals."""

    seed: int
    ambient: Ambient = field(default_factory=Ambient)
    pms: PMS5003Emulator | None = None
    mhz19: MHZ19BEmulator | None = None
    pms_path: str = ""
    mhz19_path: str = ""

    def __post_init__(self) -> None:
        self.drift = Drift(self.ambient, INDOOR_WANDER, f"household-{self.seed}")
        self.bus = EmulatedI2CBus({BME280_ADDRESS: Bme280Emulator(self.ambient)})
        self._bme280 = Bme280(self.bus, BME280_ADDRESS)
        self._readers: dict[str, SerialDriver] = {}

    async def start(self, open_readers: bool = True) -> None:
        """Start the UART emulators; `open_readers=False` leaves the ports to Home Assistant."""
        # Each household breathes different air: outdoor PM and CO2 levels differ per seed.
        self.pms = PMS5003Emulator(
            pm1=4 + self.seed % 5,
            pm25=8 + 3 * (self.seed % 4),
            pm10=14 + 3 * (self.seed % 4),
            seed=self.seed,
            drift=0.3,
        )
        self.mhz19 = MHZ19BEmulator(co2=self.ambient.co2, seed=self.seed, drift=4.0)
        self.pms_path = await self.pms.start()
        self.mhz19_path = await self.mhz19.start()
        await asyncio.to_thread(self._bme280.identify)
        await asyncio.to_thread(self._bme280.initialize)
        if open_readers:
            self._readers["pm25"] = await open_serial_driver(
                SERIAL_DRIVERS["pms5003"], self.pms_path
            )
            self._readers["co2"] = await open_serial_driver(
                SERIAL_DRIVERS["mhz19b"], self.mhz19_path
            )

    async def read(self) -> dict[str, float]:
        """One reading per demo task, through the drivers."""
        climate = await asyncio.to_thread(self._bme280.read)
        values = {"indoor_temperature": climate["temperature"]}
        for task, reader in self._readers.items():
            values[task] = (await reader.measure(timeout=5.0))[task]
        return values

    def advance(self, seconds: float) -> None:
        self.drift.advance(seconds)

    async def stop(self) -> None:
        for reader in self._readers.values():
            await reader.close()
        for emulator in (self.pms, self.mhz19):
            if emulator is not None:
                await emulator.unplug()
