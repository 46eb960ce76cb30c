"""Entities of I2C chips on the simulated bus: values, metadata, availability, cleaning."""

from __future__ import annotations

import logging
import math
from datetime import timedelta

import pytest
from homeassistant.components.sensor import ATTR_STATE_CLASS, SensorStateClass
from homeassistant.config_entries import ConfigEntryState
from homeassistant.const import (
    ATTR_DEVICE_CLASS,
    ATTR_UNIT_OF_MEASUREMENT,
    STATE_UNAVAILABLE,
    EntityCategory,
)
from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers import entity_registry as er
from homeassistant.util import dt as dt_util
from pytest_homeassistant_custom_component.common import MockConfigEntry, async_fire_time_changed

from custom_components.hearth.const import DOMAIN
from custom_components.hearth.emulators.bh1750 import Bh1750Emulator
from custom_components.hearth.emulators.bme280 import Bme280Emulator
from custom_components.hearth.simulation import DEMO_ADDRESSES, SimulatedBus

from .conftest import i2c_entry

LOGGER_NAME = "custom_components.hearth"


async def _setup(hass: HomeAssistant, entry: MockConfigEntry) -> None:
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.LOADED


async def _poll(hass: HomeAssistant, seconds: float = 61) -> None:
    async_fire_time_changed(hass, dt_util.utcnow() + timedelta(seconds=seconds))
    # Scheduled refreshes run as background tasks.
    await hass.async_block_till_done(wait_background_tasks=True)


def _value(hass: HomeAssistant, entity_id: str) -> float:
    state = hass.states.get(entity_id)
    assert state is not None, entity_id
    return float(state.state)


def _enable_before_setup(hass: HomeAssistant, entry: MockConfigEntry, key: str) -> str:
    """Register a disabled-by-default entity as enabled, as a user would have; its id."""
    return (
        er.async_get(hass)
        .async_get_or_create(
            "sensor",
            DOMAIN,
            f"{entry.entry_id}_{key}",
            config_entry=entry,
            suggested_object_id=f"{entry.title} {key}",
            disabled_by=None,
        )
        .entity_id
    )


async def test_bme280_entities(hass: HomeAssistant, simulated: SimulatedBus) -> None:
    """States equal the emulated room to the chip's resolution; metadata is complete."""
    simulated.ambient.temperature = 23.45
    simulated.ambient.humidity = 41.2
    simulated.ambient.pressure = 1002.3
    entry = i2c_entry(hass, "bme280", DEMO_ADDRESSES["bme280"])
    await _setup(hass, entry)

    # Temperature resolves to 0.01 °C, humidity to 1/1024 %RH, pressure to 1/256 Pa.
    assert _value(hass, "sensor.bme280_0x76_temperature") == pytest.approx(23.45, abs=0.01)
    assert _value(hass, "sensor.bme280_0x76_humidity") == pytest.approx(41.2, abs=0.01)
    assert _value(hass, "sensor.bme280_0x76_atmospheric_pressure") == pytest.approx(
        1002.3, abs=0.01
    )

    expected = {
        "temperature": ("temperature", "°C"),
        "humidity": ("humidity", "%"),
        "atmospheric_pressure": ("atmospheric_pressure", "hPa"),
    }
    registry = er.async_get(hass)
    for suffix, (device_class, unit) in expected.items():
        entity_id = f"sensor.bme280_0x76_{suffix}"
        attributes = hass.states.get(entity_id).attributes
        assert attributes[ATTR_DEVICE_CLASS] == device_class
        assert attributes[ATTR_UNIT_OF_MEASUREMENT] == unit
        assert attributes[ATTR_STATE_CLASS] == SensorStateClass.MEASUREMENT
        key = "pressure" if suffix == "atmospheric_pressure" else suffix
        assert registry.async_get(entity_id).unique_id == f"{entry.entry_id}_{key}"

    device = dr.async_get(hass).async_get_device_by_identifier(
        (DOMAIN, entry.entry_id), entry.entry_id
    )
    assert device is not None
    assert (device.manufacturer, device.model, device.model_id) == (
        "Bosch Sensortec",
        "BME280",
        "bme280",
    )
    assert device.name == entry.title

    for key in ("transfer_errors", "rejected_readings"):
        diagnostic = registry.async_get(f"sensor.bme280_0x76_{key}")
        assert diagnostic.entity_category is EntityCategory.DIAGNOSTIC
        assert diagnostic.disabled_by is er.RegistryEntryDisabler.INTEGRATION


async def test_polling_follows_the_room(hass: HomeAssistant, simulated: SimulatedBus) -> None:
    """Each poll (60 s by default for I2C climate sensors) reads the chip again."""
    entry = i2c_entry(hass, "sht4x", DEMO_ADDRESSES["sht4x"])
    await _setup(hass, entry)
    assert entry.runtime_data.update_interval == timedelta(seconds=60)
    simulated.ambient.temperature = 18.0
    await _poll(hass)
    # SHT4x: T = -45 + 175 * raw / 65535, 16-bit raw: resolution 0.0027 °C.
    assert _value(hass, "sensor.sht4x_0x45_temperature") == pytest.approx(18.0, abs=0.003)


async def test_calibration_is_applied(hass: HomeAssistant, simulated: SimulatedBus) -> None:
    """reported = measured * multiplier + offset, per quantity."""
    simulated.ambient.temperature = 20.0
    simulated.ambient.humidity = 50.0
    entry = i2c_entry(
        hass,
        "sht3x",
        DEMO_ADDRESSES["sht3x"],
        options={
            "calibration": {
                "temperature": {"offset": -1.25, "multiplier": 1.0},
                "humidity": {"offset": 2.0, "multiplier": 0.9},
            }
        },
    )
    await _setup(hass, entry)
    assert _value(hass, "sensor.sht3x_0x44_temperature") == pytest.approx(18.75, abs=0.003)
    assert _value(hass, "sensor.sht3x_0x44_humidity") == pytest.approx(47.0, abs=0.003)


async def test_unavailable_and_recovery_log_once(
    hass: HomeAssistant, simulated: SimulatedBus, caplog: pytest.LogCaptureFixture
) -> None:
    """An unplugged chip makes the entities unavailable with one error; recovery logs once."""
    address = DEMO_ADDRESSES["bme280"]
    entry = i2c_entry(hass, "bme280", address)
    await _setup(hass, entry)
    entity_id = "sensor.bme280_0x76_temperature"
    caplog.set_level(logging.INFO, logger=LOGGER_NAME)
    caplog.clear()

    simulated.emulated.detach(address)
    for _ in range(3):
        await _poll(hass)
        assert hass.states.get(entity_id).state == STATE_UNAVAILABLE
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1
    assert "Nothing answered" in errors[0].getMessage()

    # Plugged back in, power-cycled: it must be identified and initialised again.
    simulated.emulated.attach(address, Bme280Emulator(simulated.ambient))
    simulated.ambient.temperature = 24.0
    for _ in range(2):
        await _poll(hass)
        assert _value(hass, entity_id) == pytest.approx(24.0, abs=0.01)
    recovered = [r for r in caplog.records if "recovered" in r.getMessage()]
    assert len(recovered) == 1
    assert entry.runtime_data.device.transfer_errors == 3


async def test_transfer_error_counter(hass: HomeAssistant, simulated: SimulatedBus) -> None:
    """The diagnostic counter, once enabled, counts failed transfers and stays available."""
    entry = i2c_entry(hass, "sht3x", DEMO_ADDRESSES["sht3x"])
    assert _enable_before_setup(hass, entry, "transfer_errors") == (
        "sensor.sht3x_0x44_transfer_errors"
    )
    await _setup(hass, entry)
    assert hass.states.get("sensor.sht3x_0x44_transfer_errors").state == "0"
    simulated.emulated.corrupt_next_reads(100)
    await _poll(hass)
    assert hass.states.get("sensor.sht3x_0x44_temperature").state == STATE_UNAVAILABLE
    counter = hass.states.get("sensor.sht3x_0x44_transfer_errors")
    assert counter.state == "1"
    assert counter.attributes[ATTR_STATE_CLASS] == SensorStateClass.TOTAL_INCREASING
    simulated.emulated.corrupt_next_reads(0)


async def test_implausible_values_never_become_state(
    hass: HomeAssistant, simulated: SimulatedBus
) -> None:
    """A CO2 reading beyond the 10 000 ppm plausibility bound is rejected and counted."""
    simulated.ambient.co2 = 25_000
    entry = i2c_entry(hass, "scd4x", DEMO_ADDRESSES["scd4x"])
    await _setup(hass, entry)
    assert hass.states.get("sensor.scd4x_0x62_carbon_dioxide").state == STATE_UNAVAILABLE
    assert hass.states.get("sensor.scd4x_0x62_temperature").state != STATE_UNAVAILABLE
    assert entry.runtime_data.cleaner.stats.implausible == 1

    simulated.ambient.co2 = 800
    simulated.sleep(5)  # the SCD4x measures every 5 s
    await _poll(hass)
    assert _value(hass, "sensor.scd4x_0x62_carbon_dioxide") == 800


async def test_scd4x_power_cycle_is_recovered(hass: HomeAssistant, simulated: SimulatedBus) -> None:
    """After a power cut the SCD4x sits idle: the integration starts it measuring again."""
    simulated.ambient.co2 = 700
    entry = i2c_entry(hass, "scd4x", DEMO_ADDRESSES["scd4x"])
    await _setup(hass, entry)
    chip = simulated.emulated.devices[DEMO_ADDRESSES["scd4x"]]
    chip.power_cycle()
    await _poll(hass)
    co2 = "sensor.scd4x_0x62_carbon_dioxide"
    assert hass.states.get(co2).state == STATE_UNAVAILABLE  # no data ready, ever
    simulated.ambient.co2 = 900
    await _poll(hass)
    assert chip.measuring
    assert _value(hass, co2) == 900


async def test_scd4x_temperature_offset_goes_to_the_chip(
    hass: HomeAssistant, simulated: SimulatedBus
) -> None:
    """A -1.5 °C offset becomes a 5.5 °C self-heating offset on the chip, which also
    recomputes humidity for the corrected temperature."""
    simulated.ambient.temperature = 22.0
    simulated.ambient.humidity = 50.0
    entry = i2c_entry(
        hass,
        "scd4x",
        DEMO_ADDRESSES["scd4x"],
        options={"calibration": {"temperature": {"offset": -1.5, "multiplier": 1.0}}},
    )
    await _setup(hass, entry)
    chip = simulated.emulated.devices[DEMO_ADDRESSES["scd4x"]]
    assert chip.temperature_offset == pytest.approx(5.5, abs=0.003)
    # The emulated chip sits 4 °C above the room; 4 - 5.5 leaves 1.5 °C below it.
    assert _value(hass, "sensor.scd4x_0x62_temperature") == pytest.approx(20.5, abs=0.01)

    def magnus(celsius: float) -> float:  # saturation vapour pressure, hPa
        return 6.112 * math.exp(17.62 * celsius / (243.12 + celsius))

    # Same absolute humidity, read at the reported temperature.
    expected_rh = 50.0 * magnus(22.0) / magnus(20.5)
    assert _value(hass, "sensor.scd4x_0x62_humidity") == pytest.approx(expected_rh, abs=0.01)


async def test_ina219_entities(hass: HomeAssistant, simulated: SimulatedBus) -> None:
    """Voltage, current and power through the configured 0.1 ohm shunt."""
    simulated.circuit.bus_voltage = 12.0
    simulated.circuit.current = 0.5
    entry = i2c_entry(hass, "ina219", DEMO_ADDRESSES["ina219"], shunt_ohms=0.1, max_current_a=3.2)
    await _setup(hass, entry)
    # LSBs: bus 4 mV; current 3.2 A / 2^15 = 98 µA; power 20 x that = 1.95 mW (x V).
    assert _value(hass, "sensor.ina219_0x40_voltage") == pytest.approx(12.0, abs=0.004)
    assert _value(hass, "sensor.ina219_0x40_current") == pytest.approx(0.5, abs=0.0001)
    assert _value(hass, "sensor.ina219_0x40_power") == pytest.approx(6.0, abs=0.004)
    units = {
        suffix: hass.states.get(f"sensor.ina219_0x40_{suffix}").attributes[ATTR_UNIT_OF_MEASUREMENT]
        for suffix in ("voltage", "current", "power")
    }
    assert units == {"voltage": "V", "current": "A", "power": "W"}


async def test_outlier_filter(hass: HomeAssistant, simulated: SimulatedBus) -> None:
    """Hampel filter, window 5: a single spike is dropped, a lasting step gets through.

    Derived by hand from the definition: a reading is rejected when it is further than
    max(3 * 1.4826 * MAD, 10 lx) from the median of the five readings before it (all
    readings, rejected ones included); fewer than three earlier readings accept anything.
    """
    simulated.ambient.illuminance = 300.0
    entry = i2c_entry(
        hass,
        "bh1750",
        DEMO_ADDRESSES["bh1750"],
        options={"outlier_filter": True, "filter_window": 5},
    )
    await _setup(hass, entry)
    entity_id = "sensor.bh1750_0x23_illuminance"

    # (reading, reported state); the comment shows the window before the reading.
    sequence = [
        (300.0, 300.0),  # setup: [] -> accepted
        (300.0, 300.0),  # [300] -> accepted
        (300.0, 300.0),  # [300 300] -> accepted
        (5000.0, 300.0),  # [300 300 300] median 300, MAD 0 -> rejected
        (300.0, 300.0),  # [300 300 300 5000] median 300 -> accepted
        (800.0, 300.0),  # [300 300 300 5000 300] median 300, MAD 0 -> rejected
        (800.0, 300.0),  # [300 300 5000 300 800] median 300, MAD 0 -> rejected
        (800.0, 800.0),  # [300 5000 300 800 800] median 800, MAD 500 -> accepted
    ]
    for lux, reported in sequence[1:]:
        simulated.ambient.illuminance = lux
        await _poll(hass)
        # BH1750 counts are 1/1.2 lx.
        assert _value(hass, entity_id) == pytest.approx(reported, abs=0.5)
    assert entry.runtime_data.cleaner.stats.outliers == 3


@pytest.mark.parametrize(("model", "address_key"), [(m, m) for m in DEMO_ADDRESSES])
async def test_every_demo_chip_reports_every_quantity(
    hass: HomeAssistant, simulated: SimulatedBus, model: str, address_key: str
) -> None:
    """Each chip of the demo bus sets up and all its quantity entities have values."""
    extra = {"shunt_ohms": 0.1, "max_current_a": 3.2} if model == "ina219" else {}
    entry = i2c_entry(hass, model, DEMO_ADDRESSES[address_key], **extra)
    await _setup(hass, entry)
    quantities = entry.runtime_data.device.quantities
    values = entry.runtime_data.data
    assert set(values) == set(quantities)
    registry = er.async_get(hass)
    for key in quantities:
        entity_id = registry.async_get_entity_id("sensor", DOMAIN, f"{entry.entry_id}_{key}")
        assert hass.states.get(entity_id).state != STATE_UNAVAILABLE


async def test_bh1750_emulator_is_what_the_demo_uses(simulated: SimulatedBus) -> None:
    """Sanity: the demo bus holds the same emulator class the driver tests use."""
    assert isinstance(simulated.emulated.devices[DEMO_ADDRESSES["bh1750"]], Bh1750Emulator)
