"""BH1750 driver against its emulator."""

from __future__ import annotations

import pytest
from smbus2 import i2c_msg

from custom_components.hearth.drivers.bh1750 import Bh1750
from custom_components.hearth.drivers.errors import NoAckError
from custom_components.hearth.emulators.bh1750 import Bh1750Emulator
from custom_components.hearth.emulators.environment import Ambient
from custom_components.hearth.emulators.i2c_bus import EmulatedI2CBus, VirtualClock

ADDRESS = 0x23
LUX_PER_COUNT = 1 / 1.2  # datasheet: H-resolution mode, MTreg 69


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock()


@pytest.fixture
def air() -> Ambient:
    return Ambient(illuminance=500.0)


@pytest.fixture
def bus(clock: VirtualClock, air: Ambient) -> EmulatedI2CBus:
    bus = EmulatedI2CBus(clock=clock.now)
    bus.attach(ADDRESS, Bh1750Emulator(air))
    return bus


def _read_counts(bus: EmulatedI2CBus) -> int:
    message = i2c_msg.read(ADDRESS, 2)
    bus.i2c_rdwr(message)
    return int.from_bytes(bytes(message), "big")


@pytest.mark.parametrize("lux", [0.0, 0.5, 1.0, 500.0, 12_345.6, 54_612.0])
def test_round_trip(bus: EmulatedI2CBus, clock: VirtualClock, air: Ambient, lux: float) -> None:
    driver = Bh1750(bus, ADDRESS, sleep=clock.sleep)
    driver.identify()
    air.illuminance = lux
    assert driver.read()["illuminance"] == pytest.approx(lux, abs=LUX_PER_COUNT / 2)


def test_saturates_at_full_scale(bus: EmulatedI2CBus, clock: VirtualClock, air: Ambient) -> None:
    air.illuminance = 100_000.0  # direct sun
    assert Bh1750(bus, ADDRESS, sleep=clock.sleep).read()["illuminance"] == pytest.approx(
        65535 / 1.2
    )


def test_one_time_mode_measures_then_powers_down(
    bus: EmulatedI2CBus, clock: VirtualClock, air: Ambient
) -> None:
    chip = bus.devices[ADDRESS]
    assert isinstance(chip, Bh1750Emulator)
    Bh1750(bus, ADDRESS, sleep=clock.sleep).read()
    assert not chip.powered
    # Until the next measurement completes the chip keeps returning the last result.
    air.illuminance = 1000.0
    bus.write_byte(ADDRESS, 0x20)
    assert _read_counts(bus) == 600
    clock.sleep(0.18)
    assert _read_counts(bus) == 1200


def test_high_resolution_mode_2_and_mtreg(bus: EmulatedI2CBus, clock: VirtualClock) -> None:
    # H-resolution mode 2 counts half-lux; MTreg 138 (0x8A) doubles the sensitivity again.
    bus.write_byte(ADDRESS, 0x40 | (138 >> 5))
    bus.write_byte(ADDRESS, 0x60 | (138 & 0x1F))
    bus.write_byte(ADDRESS, 0x21)
    clock.sleep(0.18 * 2)
    assert _read_counts(bus) == round(500 * 1.2 * 2 * 138 / 69)


def test_reset_only_when_powered(bus: EmulatedI2CBus, clock: VirtualClock) -> None:
    Bh1750(bus, ADDRESS, sleep=clock.sleep).read()  # leaves it powered down
    bus.write_byte(ADDRESS, 0x07)
    assert _read_counts(bus) == 600
    bus.write_byte(ADDRESS, 0x01)
    bus.write_byte(ADDRESS, 0x07)
    assert _read_counts(bus) == 0


def test_undefined_opcode_and_missing_chip(bus: EmulatedI2CBus, clock: VirtualClock) -> None:
    with pytest.raises(OSError):
        bus.write_byte(ADDRESS, 0x05)
    with pytest.raises(NoAckError):
        Bh1750(bus, 0x5C, sleep=clock.sleep).identify()
