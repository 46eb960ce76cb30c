"""Scanning a bus finds exactly the emulated chips, without changing their state."""

from __future__ import annotations

import pytest

from custom_components.hearth.drivers.i2c_catalog import (
    I2C_DRIVERS,
    candidates_for_address,
    identify_at,
    scan,
)
from custom_components.hearth.emulators.bh1750 import Bh1750Emulator
from custom_components.hearth.emulators.bme280 import Bme280Emulator
from custom_components.hearth.emulators.environment import Ambient, Circuit
from custom_components.hearth.emulators.i2c_bus import (
    EmulatedI2CBus,
    EmulatedI2CDevice,
    VirtualClock,
)
from custom_components.hearth.emulators.ina219 import Ina219Emulator
from custom_components.hearth.emulators.scd4x import Scd4xEmulator
from custom_components.hearth.emulators.sht3x import Sht3xEmulator
from custom_components.hearth.emulators.sht4x import Sht4xEmulator


class Eeprom(EmulatedI2CDevice):
    """Some other chip: acknowledges everything, reads as 0xFF."""

    def write(self, data: bytes) -> None:
        pass

    def read(self, length: int) -> bytes:
        return b"\xff" * length


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock()


def test_catalog_keys_and_candidates() -> None:
    assert sorted(I2C_DRIVERS) == ["bh1750", "bme280", "ina219", "scd4x", "sht3x", "sht4x"]
    # INA219 addresses overlap the Sensirion ones; its probe runs last.
    assert candidates_for_address(0x44) == ["sht3x", "sht4x", "ina219"]
    assert candidates_for_address(0x46) == ["sht4x", "ina219"]
    assert candidates_for_address(0x4F) == ["ina219"]
    assert candidates_for_address(0x50) == []


def test_scan_finds_exactly_the_emulated_chips(clock: VirtualClock) -> None:
    air = Ambient()
    bus = EmulatedI2CBus(clock=clock.now)
    bus.attach(0x77, Bme280Emulator(air))
    bus.attach(0x44, Sht4xEmulator(air))
    bus.attach(0x45, Sht3xEmulator(air))
    bus.attach(0x5C, Bh1750Emulator(air))
    bus.attach(0x62, Scd4xEmulator(air))
    bus.attach(0x41, Ina219Emulator(Circuit()))
    bus.attach(0x46, Ina219Emulator(Circuit()))  # where an SHT4x could be
    bus.attach(0x50, Eeprom())  # not an address any known chip uses: not probed
    bus.attach(0x76, Bme280Emulator(chip_id=0x58))  # a BMP280 answers, but is no BME280
    assert scan(bus, sleep=clock.sleep) == {
        0x41: "ina219",
        0x44: "sht4x",
        0x45: "sht3x",
        0x46: "ina219",
        0x5C: "bh1750",
        0x62: "scd4x",
        0x76: None,
        0x77: "bme280",
    }


def test_scan_of_an_empty_bus(clock: VirtualClock) -> None:
    assert scan(EmulatedI2CBus(clock=clock.now), sleep=clock.sleep) == {}


def test_unknown_devices_at_known_addresses(clock: VirtualClock) -> None:
    bus = EmulatedI2CBus(clock=clock.now)
    bus.attach(0x44, Eeprom())  # 0xFF bytes fail the Sensirion CRC
    bus.attach(0x40, Eeprom())  # register 0 is not 0x399F
    assert scan(bus, sleep=clock.sleep) == {0x40: None, 0x44: None}


def test_scan_is_harmless(clock: VirtualClock) -> None:
    air = Ambient()
    bus = EmulatedI2CBus(clock=clock.now)
    scd = bus.attach(0x62, Scd4xEmulator(air))
    ina = bus.attach(0x40, Ina219Emulator(Circuit()))
    light = bus.attach(0x23, Bh1750Emulator(air))
    bus.write_i2c_block_data(0x40, 0x05, [0x10, 0x00])  # calibrated by its driver
    scd.execute(0x21B1, [])  # measuring since before the scan
    assert scan(bus, sleep=clock.sleep) == {0x23: "bh1750", 0x40: "ina219", 0x62: "scd4x"}
    assert scd.measuring
    assert ina.calibration == 0x1000
    assert not light.powered


def test_identify_at(clock: VirtualClock) -> None:
    bus = EmulatedI2CBus(clock=clock.now)
    bus.attach(0x44, Sht4xEmulator())
    assert identify_at(bus, 0x44, sleep=clock.sleep) == "sht4x"
    assert identify_at(bus, 0x45, sleep=clock.sleep) is None
    assert identify_at(bus, 0x50, sleep=clock.sleep) is None
