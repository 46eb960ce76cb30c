"""INA219 driver: datasheet calibration arithmetic and round trips through the emulator."""

from __future__ import annotations

import pytest

from custom_components.hearth.drivers.errors import ChipMismatchError, NotReadyError
from custom_components.hearth.drivers.ina219 import (
    Ina219,
    MeasurementOverflowError,
    calibration_for,
)
from custom_components.hearth.emulators.environment import Circuit
from custom_components.hearth.emulators.i2c_bus import EmulatedI2CBus, VirtualClock
from custom_components.hearth.emulators.ina219 import Ina219Emulator

ADDRESS = 0x40


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock()


@pytest.fixture
def circuit() -> Circuit:
    return Circuit(bus_voltage=12.0, current=1.5)


@pytest.fixture
def bus(clock: VirtualClock, circuit: Circuit) -> EmulatedI2CBus:
    bus = EmulatedI2CBus(clock=clock.now)
    bus.attach(ADDRESS, Ina219Emulator(circuit, shunt_ohms=0.1))
    return bus


@pytest.fixture
def driver(bus: EmulatedI2CBus, clock: VirtualClock) -> Ina219:
    driver = Ina219(bus, ADDRESS, sleep=clock.sleep)
    driver.identify()
    driver.initialize()
    return driver


def _register(bus: EmulatedI2CBus, register: int) -> int:
    high, low = bus.read_i2c_block_data(ADDRESS, register, 2)
    return high << 8 | low


def test_calibration_references() -> None:
    # Adafruit's "32 V, 2 A" calibration: 0.1 Ω, Current_LSB rounded to 100 µA -> 4096,
    # Power_LSB 2 mW.
    calibration, lsb = calibration_for(0.1, 2.0, current_lsb_a=0.0001)
    assert (calibration, float(lsb), float(20 * lsb)) == (4096, 0.0001, 0.002)
    # With Current_LSB = max/2^15 (TI E2E "Programming the INA219 calibration register"):
    # 0.1 Ω at 2 A -> 6710, at 1 A -> 13421.
    assert calibration_for(0.1, 2.0)[0] == 6710
    assert calibration_for(0.1, 1.0)[0] == 13421


@pytest.mark.parametrize(
    ("shunt", "max_current", "lsb", "message"),
    [
        (0.0, 1.0, None, "positive"),
        (0.1, 4.0, None, "320 mV"),
        (0.1, 2.0, 0.001, "between"),
        (1e-6, 1e-6, None, "16-bit"),
    ],
)
def test_bad_calibration_inputs(
    shunt: float, max_current: float, lsb: float | None, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        calibration_for(shunt, max_current, lsb)


@pytest.mark.parametrize(
    ("volts", "amps"), [(12.0, 1.5), (0.0, 0.0), (26.0, 3.2), (5.0, -1.25), (3.3, 0.0123)]
)
def test_round_trip(driver: Ina219, circuit: Circuit, volts: float, amps: float) -> None:
    circuit.bus_voltage, circuit.current = volts, amps
    reading = driver.read()
    assert reading["voltage"] == pytest.approx(volts, abs=0.002)
    # The chip truncates Cal and its products: within two LSBs plus 1/Cal relative.
    current_tolerance = 2 * driver.current_lsb + abs(amps) / driver.calibration
    assert reading["current"] == pytest.approx(amps, abs=current_tolerance)
    power_tolerance = 2 * driver.power_lsb + 0.002 * abs(volts * amps)
    assert reading["power"] == pytest.approx(abs(volts * amps), abs=power_tolerance)


def test_overflow_is_a_clear_error(driver: Ina219, circuit: Circuit) -> None:
    circuit.current = 4.0  # 400 mV across 0.1 Ω: beyond the ±320 mV range
    with pytest.raises(MeasurementOverflowError, match="max_current_a"):
        driver.read()


def test_lost_calibration_is_restored(
    driver: Ina219, bus: EmulatedI2CBus, clock: VirtualClock, circuit: Circuit
) -> None:
    bus.write_i2c_block_data(ADDRESS, 0x00, [0x80, 0x00])  # reset, as a brown-out would
    with pytest.raises(NotReadyError, match="restored"):
        driver.read()
    clock.sleep(0.0011)
    assert driver.read()["current"] == pytest.approx(circuit.current, rel=0.001)


def test_new_calibration_applies_after_a_conversion(
    bus: EmulatedI2CBus, clock: VirtualClock
) -> None:
    bus.write_i2c_block_data(ADDRESS, 0x05, [0x10, 0x01])
    assert _register(bus, 0x05) == 0x1000  # bit 0 is void
    assert _register(bus, 0x04) == 0  # the running conversion still uses Cal = 0
    clock.sleep(0.0011)
    # Datasheet: Current = ShuntVoltage * Cal / 4096; 1.5 A * 0.1 Ω = 15000 x 10 µV.
    assert _register(bus, 0x04) == 15000
    # Power = Current * BusVoltage / 5000; 12 V = 3000 x 4 mV.
    assert _register(bus, 0x03) == 15000 * 3000 // 5000


def test_conversion_ready_flag(bus: EmulatedI2CBus, clock: VirtualClock) -> None:
    assert _register(bus, 0x02) & 0b10
    _register(bus, 0x03)  # reading power clears CNVR
    assert not _register(bus, 0x02) & 0b10
    clock.sleep(2 * 532e-6)  # one shunt and one bus conversion at 12 bits
    assert _register(bus, 0x02) & 0b10


def test_triggered_mode_holds_its_sample(
    bus: EmulatedI2CBus, clock: VirtualClock, circuit: Circuit
) -> None:
    bus.write_i2c_block_data(ADDRESS, 0x00, [0x39, 0x9B])  # shunt and bus, triggered
    circuit.bus_voltage = 5.0
    assert _register(bus, 0x02) >> 3 == 3000  # still the 12 V sample
    bus.write_i2c_block_data(ADDRESS, 0x00, [0x39, 0x9B])  # trigger again
    assert _register(bus, 0x02) >> 3 == 1250


def test_identify_resets_and_probe_only_reads(
    bus: EmulatedI2CBus, clock: VirtualClock, driver: Ina219
) -> None:
    bus.write_i2c_block_data(ADDRESS, 0x00, [0x01, 0x9F])  # someone chose a 16 V, /1 setup
    prober = Ina219(bus, ADDRESS, sleep=clock.sleep)
    with pytest.raises(ChipMismatchError, match="0x019F"):
        prober.probe()
    assert _register(bus, 0x05) == driver.calibration  # untouched by the probe
    prober.identify()
    assert _register(bus, 0x00) == 0x399F
    assert _register(bus, 0x05) == 0  # the reset cleared the calibration
