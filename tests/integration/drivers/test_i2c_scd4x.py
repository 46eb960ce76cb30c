"""SCD4x driver against its emulator: periodic measurement, settings, recalibration."""

from __future__ import annotations

import errno

import pytest
from smbus2 import i2c_msg

from custom_components.hearth.drivers.crc import pack_words
from custom_components.hearth.drivers.errors import ChecksumError, NotReadyError
from custom_components.hearth.drivers.scd4x import Scd4x, temperature_offset_word
from custom_components.hearth.emulators.environment import Ambient
from custom_components.hearth.emulators.i2c_bus import EmulatedI2CBus, VirtualClock
from custom_components.hearth.emulators.scd4x import Scd4xEmulator

ADDRESS = 0x62
T_STEP, RH_STEP = 175 / 65535, 100 / 65535
PERIOD_S = 5.0


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock()


@pytest.fixture
def air() -> Ambient:
    return Ambient(temperature=22.0, humidity=40.0, co2=850.0)


@pytest.fixture
def chip(air: Ambient) -> Scd4xEmulator:
    return Scd4xEmulator(air, serial_number=0xBEEF_0123_4567)


@pytest.fixture
def bus(clock: VirtualClock, chip: Scd4xEmulator) -> EmulatedI2CBus:
    bus = EmulatedI2CBus(clock=clock.now)
    bus.attach(ADDRESS, chip)
    return bus


@pytest.fixture
def driver(bus: EmulatedI2CBus, clock: VirtualClock) -> Scd4x:
    driver = Scd4x(bus, ADDRESS, sleep=clock.sleep)
    driver.identify()
    driver.initialize()
    return driver


def _raw_command(bus: EmulatedI2CBus, command: int, *words: int) -> None:
    bus.i2c_rdwr(i2c_msg.write(ADDRESS, command.to_bytes(2, "big") + pack_words(words)))


def test_datasheet_temperature_offset_example() -> None:
    # SCD4x datasheet, set_temperature_offset example: 5.4 °C is written as 0x07E6, CRC 0x48.
    assert temperature_offset_word(5.4) == 0x07E6
    assert pack_words([temperature_offset_word(5.4)]) == bytes([0x07, 0xE6, 0x48])


def test_periodic_measurement(driver: Scd4x, clock: VirtualClock, air: Ambient) -> None:
    with pytest.raises(NotReadyError, match="5 s"):
        driver.read()
    clock.sleep(PERIOD_S)
    reading = driver.read()
    assert reading["co2"] == 850.0
    # Factory offset 4 °C equals the emulated self-heating: the air comes back.
    assert reading["temperature"] == pytest.approx(air.temperature, abs=T_STEP)
    assert reading["humidity"] == pytest.approx(air.humidity, abs=RH_STEP)
    with pytest.raises(NotReadyError):  # the buffer empties on read-out
        driver.read()
    air.co2 = 1234.0
    clock.sleep(PERIOD_S)
    assert driver.read()["co2"] == 1234.0


def test_identify_does_not_disturb_a_measuring_chip(
    driver: Scd4x, bus: EmulatedI2CBus, clock: VirtualClock, chip: Scd4xEmulator
) -> None:
    clock.sleep(PERIOD_S)
    # get_serial_number is refused while measuring; get_data_ready_status is not.
    Scd4x(bus, ADDRESS, sleep=clock.sleep).identify()
    assert chip.measuring
    assert driver.read()["co2"] == 850.0


def test_serial_number_in_idle_mode(bus: EmulatedI2CBus, clock: VirtualClock) -> None:
    assert Scd4x(bus, ADDRESS, sleep=clock.sleep).serial_number() == 0xBEEF_0123_4567


def test_temperature_offset(
    driver: Scd4x, clock: VirtualClock, chip: Scd4xEmulator, air: Ambient
) -> None:
    chip.self_heating = 6.5  # a warm enclosure: the factory 4 °C is not enough
    clock.sleep(PERIOD_S)
    warm = driver.read()
    assert warm["temperature"] == pytest.approx(air.temperature + 2.5, abs=T_STEP)
    assert warm["humidity"] < air.humidity - 5  # warmer air reads drier
    driver.set_temperature_offset(6.5)
    assert chip.temperature_offset == pytest.approx(6.5, abs=T_STEP)
    assert chip.measuring  # restarted after the setting
    clock.sleep(PERIOD_S)
    corrected = driver.read()
    assert corrected["temperature"] == pytest.approx(air.temperature, abs=2 * T_STEP)
    assert corrected["humidity"] == pytest.approx(air.humidity, abs=0.05)


def test_settings_persist_only_when_asked(driver: Scd4x, chip: Scd4xEmulator) -> None:
    assert chip.asc_enabled  # factory default
    driver.set_automatic_self_calibration(False)
    assert not chip.asc_enabled
    chip.power_cycle()
    assert chip.asc_enabled
    driver.initialize()
    driver.set_automatic_self_calibration(False, persist=True)
    driver.set_temperature_offset(3.0, persist=True)
    chip.power_cycle()
    assert not chip.asc_enabled
    assert chip.temperature_offset == pytest.approx(3.0, abs=T_STEP)
    assert chip.eeprom_writes == 2


def test_forced_recalibration(
    driver: Scd4x, clock: VirtualClock, chip: Scd4xEmulator, air: Ambient
) -> None:
    chip.co2_bias = 37.0  # the sensor reads 37 ppm high
    clock.sleep(180.0)  # > 3 minutes in constant air
    assert driver.read()["co2"] == 887.0
    assert driver.forced_recalibration(850) == -37
    assert chip.co2_bias == 0.0
    assert chip.measuring
    clock.sleep(PERIOD_S)
    assert driver.read()["co2"] == 850.0


def test_forced_recalibration_needs_a_measurement_first(driver: Scd4x, chip: Scd4xEmulator) -> None:
    # Right after power-up nothing has been measured: the chip answers 0xFFFF.
    with pytest.raises(NotReadyError, match="at least 3 minutes"):
        driver.forced_recalibration(420)
    assert chip.measuring


def test_idle_only_commands_are_refused_while_measuring(
    driver: Scd4x, bus: EmulatedI2CBus, clock: VirtualClock, chip: Scd4xEmulator
) -> None:
    clock.sleep(60.0)
    for command, words in ((0x362F, (420,)), (0x2416, (0,)), (0x241D, (0x07E6,)), (0x3682, ())):
        with pytest.raises(OSError) as raised:
            _raw_command(bus, command, *words)
        assert raised.value.errno == errno.EREMOTEIO
    assert chip.asc_enabled
    assert chip.co2_bias == 0.0


def test_chip_is_deaf_while_stopping(bus: EmulatedI2CBus, clock: VirtualClock) -> None:
    _raw_command(bus, 0x3F86)
    clock.sleep(0.499)
    with pytest.raises(OSError):
        _raw_command(bus, 0x3682)
    clock.sleep(0.001)
    _raw_command(bus, 0x3682)


def test_bad_argument_crc_is_nacked(bus: EmulatedI2CBus, chip: Scd4xEmulator) -> None:
    with pytest.raises(OSError):
        bus.i2c_rdwr(i2c_msg.write(ADDRESS, bytes([0x24, 0x16, 0x00, 0x00, 0x00])))
    assert chip.asc_enabled


def test_crc_error_on_measurement_is_not_retried(
    driver: Scd4x, bus: EmulatedI2CBus, clock: VirtualClock
) -> None:
    clock.sleep(PERIOD_S)
    bus.corrupt_next_reads(1, length=3)  # get_data_ready_status is retried...
    assert driver.data_ready()
    bus.corrupt_next_reads(1, length=9)  # ...read_measurement cannot be: the chip emptied it
    with pytest.raises(ChecksumError, match="next comes in 5 s"):
        driver.read()
    assert not driver.data_ready()
    clock.sleep(PERIOD_S)
    assert driver.read()["co2"] == 850.0


@pytest.mark.parametrize("celsius", [-0.1, 20.5])
def test_bad_temperature_offset_is_rejected(driver: Scd4x, celsius: float) -> None:
    with pytest.raises(ValueError, match=r"0\.0\.\.20\.0 °C"):
        driver.set_temperature_offset(celsius)


@pytest.mark.parametrize("ppm", [0, 40_001])
def test_bad_recalibration_target_is_rejected(driver: Scd4x, ppm: int) -> None:
    with pytest.raises(ValueError, match="ppm"):
        driver.forced_recalibration(ppm)
