"""SHT3x and SHT4x drivers against their emulators: conversions, CRC retries, identity."""

from __future__ import annotations

import errno

import pytest
from smbus2 import i2c_msg

from custom_components.hearth.drivers import sht3x, sht4x
from custom_components.hearth.drivers.errors import ChecksumError, NoAckError
from custom_components.hearth.drivers.sht3x import Sht3x
from custom_components.hearth.drivers.sht4x import Sht4x
from custom_components.hearth.emulators.environment import Ambient
from custom_components.hearth.emulators.i2c_bus import EmulatedI2CBus, VirtualClock
from custom_components.hearth.emulators.sht3x import Sht3xEmulator
from custom_components.hearth.emulators.sht4x import Sht4xEmulator

DRIVERS = {"sht3x": (Sht3x, Sht3xEmulator), "sht4x": (Sht4x, Sht4xEmulator)}
# One raw step is 175/65535 °C and 100/65535 % (SHT3x) or 125/65535 % (SHT4x).
T_STEP, RH_STEP = 175 / 65535, 125 / 65535


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock()


@pytest.fixture
def air() -> Ambient:
    return Ambient(temperature=23.4, humidity=56.7)


@pytest.fixture(params=sorted(DRIVERS))
def setup(
    request: pytest.FixtureRequest, clock: VirtualClock, air: Ambient
) -> tuple[EmulatedI2CBus, Sht3x | Sht4x]:
    driver_cls, emulator_cls = DRIVERS[request.param]
    bus = EmulatedI2CBus(clock=clock.now)
    bus.attach(0x44, emulator_cls(air))
    driver = driver_cls(bus, 0x44, sleep=clock.sleep)
    driver.identify()
    driver.initialize()
    return bus, driver


@pytest.mark.parametrize(
    ("temperature", "humidity"),
    [(23.4, 56.7), (-40.0, 0.0), (85.0, 100.0), (-45.0, 3.0), (0.0, 99.99), (37.0, 0.01)],
)
def test_round_trip(
    setup: tuple[EmulatedI2CBus, Sht3x | Sht4x], air: Ambient, temperature: float, humidity: float
) -> None:
    _, driver = setup
    air.temperature, air.humidity = temperature, humidity
    reading = driver.read()
    assert reading["temperature"] == pytest.approx(temperature, abs=T_STEP / 2)
    assert reading["humidity"] == pytest.approx(humidity, abs=RH_STEP / 2)


def test_datasheet_conversion_ends() -> None:
    # Raw 0 and 0xFFFF are the ends of the datasheet formulas.
    assert (sht3x.temperature_from_raw(0), sht3x.temperature_from_raw(0xFFFF)) == (-45.0, 130.0)
    assert (sht3x.humidity_from_raw(0), sht3x.humidity_from_raw(0xFFFF)) == (0.0, 100.0)
    # SHT4x: -6 + 125 * S / 65535 spans -6..119 % and is cropped to 0..100.
    assert (sht4x.humidity_from_raw(0), sht4x.humidity_from_raw(0xFFFF)) == (0.0, 100.0)
    assert sht4x.humidity_from_raw(round(56 * 65535 / 125)) == pytest.approx(50.0, abs=0.001)


def test_transient_crc_error_is_retried(
    setup: tuple[EmulatedI2CBus, Sht3x | Sht4x], air: Ambient
) -> None:
    bus, driver = setup
    bus.corrupt_next_reads(2)  # two of the three attempts
    assert driver.read()["temperature"] == pytest.approx(air.temperature, abs=T_STEP)


def test_persistent_crc_error_raises(setup: tuple[EmulatedI2CBus, Sht3x | Sht4x]) -> None:
    bus, driver = setup
    bus.corrupt_next_reads(3)
    with pytest.raises(ChecksumError, match="CRC mismatch"):
        driver.read()


def test_nack_is_no_ack_error(setup: tuple[EmulatedI2CBus, Sht3x | Sht4x]) -> None:
    bus, driver = setup
    bus.nack_next_transfers(1)
    with pytest.raises(NoAckError, match=r"0x44 \(\[Errno 121\] Remote I/O error\)"):
        driver.read()


def test_reading_before_the_measurement_ends_is_nacked(
    setup: tuple[EmulatedI2CBus, Sht3x | Sht4x], clock: VirtualClock
) -> None:
    bus, driver = setup
    command = b"\x24\x00" if isinstance(driver, Sht3x) else b"\xfd"
    bus.i2c_rdwr(i2c_msg.write(0x44, command))
    with pytest.raises(OSError) as raised:
        bus.i2c_rdwr(i2c_msg.read(0x44, 6))
    assert raised.value.errno == errno.EREMOTEIO
    clock.sleep(0.02)
    result = i2c_msg.read(0x44, 6)
    bus.i2c_rdwr(result)
    assert len(bytes(result)) == 6
    # The result is read once; a second read has nothing pending.
    with pytest.raises(OSError):
        bus.i2c_rdwr(i2c_msg.read(0x44, 6))


def test_each_chip_answers_only_its_own_identification(clock: VirtualClock) -> None:
    bus = EmulatedI2CBus(clock=clock.now)
    bus.attach(0x44, Sht3xEmulator())
    bus.attach(0x45, Sht4xEmulator(serial_number=0x1234_5678))
    assert Sht3x(bus, 0x44, sleep=clock.sleep).read_status() == 0x8010  # after power-up
    assert Sht4x(bus, 0x45, sleep=clock.sleep).serial_number() == 0x1234_5678
    with pytest.raises(NoAckError):
        Sht4x(bus, 0x44, sleep=clock.sleep).identify()  # SHT3x: incomplete command
    with pytest.raises(NoAckError):
        Sht3x(bus, 0x45, sleep=clock.sleep).identify()  # SHT4x: unknown command 0xF3


def test_sht3x_status_clear_and_reset(clock: VirtualClock) -> None:
    bus = EmulatedI2CBus(clock=clock.now)
    bus.attach(0x44, Sht3xEmulator())
    driver = Sht3x(bus, 0x44, sleep=clock.sleep)
    bus.i2c_rdwr(i2c_msg.write(0x44, [0x30, 0x41]))  # clear status
    assert driver.read_status() == 0x0000
    driver.initialize()  # soft reset sets "reset detected" and "alert pending" again
    assert driver.read_status() == 0x8010


def test_sht3x_rejects_unknown_commands(clock: VirtualClock) -> None:
    bus = EmulatedI2CBus(clock=clock.now)
    bus.attach(0x44, Sht3xEmulator())
    with pytest.raises(OSError) as raised:
        bus.i2c_rdwr(i2c_msg.write(0x44, [0x20, 0x32]))  # periodic mode: not emulated
    assert raised.value.errno == errno.EREMOTEIO
