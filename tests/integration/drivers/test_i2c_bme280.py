"""BME280 driver: datasheet worked examples, and round trips through the emulator."""

from __future__ import annotations

import dataclasses

import pytest

from custom_components.hearth.drivers.bme280 import (
    Bme280,
    Bme280Calibration,
    compensate_humidity,
    compensate_pressure,
    compensate_temperature,
)
from custom_components.hearth.drivers.errors import ChipMismatchError, NoAckError
from custom_components.hearth.emulators.bme280 import (
    REFERENCE_CALIBRATION,
    Bme280Emulator,
    humidity_double,
    measurement_seconds,
    pressure_double,
    t_fine_double,
)
from custom_components.hearth.emulators.environment import Ambient
from custom_components.hearth.emulators.i2c_bus import EmulatedI2CBus, VirtualClock

ADDRESS = 0x76

# BMP280 datasheet, "compensation computation example" (the BME280 formulas are the same).
EXAMPLE = dataclasses.replace(
    REFERENCE_CALIBRATION,
    t1=27504, t2=26435, t3=-1000,
    p1=36477, p2=-10685, p3=3024, p4=2855, p5=140, p6=-7, p7=15500, p8=-14600, p9=6000,
)  # fmt: skip
EXAMPLE_ADC_T, EXAMPLE_ADC_P = 519888, 415148
EXAMPLE_T_FINE, EXAMPLE_CENTI_C, EXAMPLE_PA = 128422, 2508, 100653.27


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock()


@pytest.fixture
def air() -> Ambient:
    return Ambient(temperature=21.0, humidity=45.0, pressure=1013.25)


@pytest.fixture
def bus(clock: VirtualClock, air: Ambient) -> EmulatedI2CBus:
    bus = EmulatedI2CBus(clock=clock.now)
    bus.attach(ADDRESS, Bme280Emulator(air))
    return bus


def _driver(bus: EmulatedI2CBus, clock: VirtualClock, **options: object) -> Bme280:
    driver = Bme280(bus, ADDRESS, sleep=clock.sleep, **options)  # type: ignore[arg-type]
    driver.identify()
    driver.initialize()
    return driver


def test_datasheet_temperature_example() -> None:
    assert compensate_temperature(EXAMPLE_ADC_T, EXAMPLE) == (EXAMPLE_CENTI_C, EXAMPLE_T_FINE)
    # The emulator's double-precision formula gives the same 25.08 °C.
    assert t_fine_double(EXAMPLE_ADC_T, EXAMPLE) / 5120 == pytest.approx(25.08, abs=0.005)


def test_datasheet_pressure_example() -> None:
    pascal = compensate_pressure(EXAMPLE_ADC_P, EXAMPLE_T_FINE, EXAMPLE) / 256
    assert pascal == pytest.approx(EXAMPLE_PA, abs=0.02)
    assert pressure_double(EXAMPLE_ADC_P, EXAMPLE_T_FINE, EXAMPLE) == pytest.approx(
        EXAMPLE_PA, abs=0.02
    )


def test_calibration_decoding_follows_datasheet_table() -> None:
    tp = bytearray(26)
    tp[0:2] = (27504).to_bytes(2, "little")
    tp[2:4] = (26435).to_bytes(2, "little")
    tp[4:6] = (-1000).to_bytes(2, "little", signed=True)
    tp[25] = 75
    # dig_H4 = 0xE4 << 4 | 0xE5[3:0]; dig_H5 = 0xE6 << 4 | 0xE5[7:4]; MSB registers signed.
    h = bytes([0x6A, 0x01, 0x00, 0x13, 0x2D, 0x03, 0x1E])
    cal = Bme280Calibration.from_registers(bytes(tp), h)
    assert (cal.t1, cal.t2, cal.t3, cal.h1) == (27504, 26435, -1000, 75)
    assert (cal.h2, cal.h3, cal.h4, cal.h5, cal.h6) == (
        362,
        0,
        0x13 * 16 + 0xD,
        0x03 * 16 + 0x2,
        30,
    )
    negative = Bme280Calibration.from_registers(bytes(tp), bytes([0, 0, 0, 0xF0, 0x7F, 0xFF, 0xE2]))
    assert negative.h4 == -256 + 0xF  # 0xF0 is -16, times 16, plus nibble 0xF
    assert negative.h5 == -16 + 0x7  # 0xFF is -1, times 16, plus nibble 0x7
    assert negative.h6 == -30


def test_integer_formulas_agree_with_the_double_ones() -> None:
    # The datasheet gives both; they differ only by the integer versions' resolution.
    cal = REFERENCE_CALIBRATION
    for adc_t in range(300_000, 700_001, 20_000):
        centi, t_fine = compensate_temperature(adc_t, cal)
        assert centi / 100 == pytest.approx(t_fine_double(adc_t, cal) / 5120, abs=0.01)
        for adc_p in range(300_000, 900_001, 50_000):
            pascal = compensate_pressure(adc_p, t_fine, cal) / 256
            assert pascal == pytest.approx(pressure_double(adc_p, t_fine, cal), abs=0.01)
        for adc_h in range(18_000, 42_001, 2_000):
            percent = compensate_humidity(adc_h, t_fine, cal) / 1024
            expected = min(100.0, max(0.0, humidity_double(adc_h, t_fine, cal)))
            assert percent == pytest.approx(expected, abs=0.01)


@pytest.mark.parametrize(
    ("temperature", "pressure", "humidity"),
    [
        (21.0, 1013.25, 45.0),
        (-40.0, 300.0, 0.0),
        (85.0, 1100.0, 100.0),
        (0.0, 870.0, 12.5),
        (35.7, 1050.0, 88.8),
    ],
)
def test_round_trip_forced_mode(
    bus: EmulatedI2CBus,
    clock: VirtualClock,
    air: Ambient,
    temperature: float,
    pressure: float,
    humidity: float,
) -> None:
    driver = _driver(bus, clock)
    air.temperature, air.pressure, air.humidity = temperature, pressure, humidity
    reading = driver.read()
    # x1 oversampling: 16-bit T/P, 16-bit H; integer formulas: 0.01 °C, 1/256 Pa, 1/1024 %.
    assert reading["temperature"] == pytest.approx(temperature, abs=0.01)
    assert reading["pressure"] == pytest.approx(pressure, abs=0.02)
    assert reading["humidity"] == pytest.approx(humidity, abs=0.01)


def test_oversampling_raises_resolution(
    bus: EmulatedI2CBus, clock: VirtualClock, air: Ambient
) -> None:
    bus.attach(0x77, Bme280Emulator(air))  # a second chip beside the first
    coarse = _driver(bus, clock)
    fine = Bme280(bus, 0x77, oversampling=16, sleep=clock.sleep)
    fine.initialize()
    errors = {"coarse": 0.0, "fine": 0.0}
    for step in range(40):
        air.pressure = 1000.0 + step * 0.0123
        errors["coarse"] = max(errors["coarse"], abs(coarse.read()["pressure"] - air.pressure))
        errors["fine"] = max(errors["fine"], abs(fine.read()["pressure"] - air.pressure))
    # 16-bit steps are ~2.6 Pa; 20-bit ~0.16 Pa.
    assert errors["coarse"] > 0.005
    assert errors["fine"] < 0.002


def test_forced_measurement_sets_the_measuring_flag(
    bus: EmulatedI2CBus, clock: VirtualClock, air: Ambient
) -> None:
    _driver(bus, clock)
    bus.write_byte_data(ADDRESS, 0xF4, 0b001_001_01)  # forced, x1 T and P
    assert bus.read_byte_data(ADDRESS, 0xF3) & 0x08
    clock.sleep(measurement_seconds(1, 1, 1))
    assert not bus.read_byte_data(ADDRESS, 0xF3) & 0x08
    assert bus.read_byte_data(ADDRESS, 0xF4) & 0x03 == 0  # back in sleep mode


def test_normal_mode_iir_filter(bus: EmulatedI2CBus, clock: VirtualClock, air: Ambient) -> None:
    air.pressure = 1000.0
    driver = _driver(bus, clock, normal_mode=True, iir_filter=4, standby_ms=62.5)
    assert driver.read()["pressure"] == pytest.approx(1000.0, abs=0.02)
    air.pressure = 1010.0
    clock.sleep(0.0625 + measurement_seconds(1, 1, 1))  # one more conversion
    # Datasheet: filtered = (previous * (c - 1) + new) / c with c = 4.
    assert driver.read()["pressure"] == pytest.approx(1002.5, abs=0.02)
    clock.sleep(50 * 0.07)
    assert driver.read()["pressure"] == pytest.approx(1010.0, abs=0.02)


def test_config_writes_are_ignored_in_normal_mode(bus: EmulatedI2CBus, clock: VirtualClock) -> None:
    _driver(bus, clock, normal_mode=True, standby_ms=62.5)
    before = bus.read_byte_data(ADDRESS, 0xF5)
    bus.write_byte_data(ADDRESS, 0xF5, 0b111_100_00)
    assert bus.read_byte_data(ADDRESS, 0xF5) == before


def test_bmp280_is_a_chip_mismatch(clock: VirtualClock) -> None:
    bus = EmulatedI2CBus(clock=clock.now)
    bus.attach(ADDRESS, Bme280Emulator(chip_id=0x58))
    with pytest.raises(ChipMismatchError, match=r"0x58: BMP280 \(no humidity sensor\)"):
        Bme280(bus, ADDRESS, sleep=clock.sleep).identify()


def test_no_device_is_no_ack(clock: VirtualClock) -> None:
    with pytest.raises(NoAckError, match="0x77"):
        Bme280(EmulatedI2CBus(clock=clock.now), 0x77, sleep=clock.sleep).identify()


def test_read_needs_initialize(bus: EmulatedI2CBus, clock: VirtualClock) -> None:
    with pytest.raises(RuntimeError, match="initialize"):
        Bme280(bus, ADDRESS, sleep=clock.sleep).read()


@pytest.mark.parametrize(
    ("option", "value"), [("oversampling", 3), ("iir_filter", 5), ("standby_ms", 100.0)]
)
def test_bad_options_are_rejected(bus: EmulatedI2CBus, option: str, value: object) -> None:
    with pytest.raises(ValueError, match=option):
        Bme280(bus, ADDRESS, **{option: value})  # type: ignore[arg-type]
