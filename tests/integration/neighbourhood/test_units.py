"""Which device class a task's unit implies, and which source sensors can feed it."""

from __future__ import annotations

import pytest
from homeassistant.components.sensor import SensorDeviceClass
from homeassistant.const import ATTR_DEVICE_CLASS, ATTR_UNIT_OF_MEASUREMENT
from homeassistant.core import State

from custom_components.hearth.neighbourhood.entity import metric_name
from custom_components.hearth.neighbourhood.models import TaskSpec
from custom_components.hearth.neighbourhood.units import (
    display_precision,
    source_units,
    state_value,
    value_device_class,
)


def spec(unit: str, metric: str = "metric") -> TaskSpec:
    return TaskSpec("t", metric, unit, 0.0, 100.0, 0.1, ("mean",), (), 60, 2, None)


@pytest.mark.parametrize(
    ("unit", "metric", "expected"),
    [
        ("°C", "indoor_temperature", SensorDeviceClass.TEMPERATURE),
        ("W", "household power", SensorDeviceClass.POWER),
        ("hPa", "air pressure", SensorDeviceClass.ATMOSPHERIC_PRESSURE),
        # "%" and "ppm" fit several classes: the metric's name decides, or nothing does.
        ("%", "indoor_humidity", SensorDeviceClass.HUMIDITY),
        ("%", "cpu load", None),
        ("ppm", "co2", SensorDeviceClass.CO2),
        ("ppm", "radon", None),
        # The micro sign as typed on a keyboard means HA's Greek mu.
        ("µg/m³", "pm2_5", SensorDeviceClass.PM25),
        ("μg/m³", "pm10", SensorDeviceClass.PM10),
        # Energy per period is not a stored stock, and energy totals are not measurements.
        ("kWh", "energy", None),
        ("", "people at home", None),
    ],
)
def test_value_device_class(unit: str, metric: str, expected: SensorDeviceClass | None) -> None:
    assert value_device_class(spec(unit, metric)) == expected


def test_source_units() -> None:
    assert set(source_units(spec("°C"))) == {"°C", "°F", "K"}
    assert source_units(spec("%", "cpu load")) == ["%"]
    assert source_units(spec("µg/m³", "pm2_5")) == ["μg/m³"]


@pytest.mark.parametrize(
    ("state", "unit", "device_class", "expected"),
    [
        ("21.5", "°C", "temperature", 21.5),
        ("293.15", "K", "temperature", 20.0),
        ("68", "°F", "temperature", 20.0),
        ("68", "°F", None, None),  # no device class, no conversion
        ("41", "%", "humidity", None),
        ("inf", "°C", "temperature", None),
    ],
)
def test_state_value(
    state: str, unit: str, device_class: str | None, expected: float | None
) -> None:
    attributes = {ATTR_UNIT_OF_MEASUREMENT: unit}
    if device_class:
        attributes[ATTR_DEVICE_CLASS] = device_class
    value = state_value(State("sensor.x", state, attributes), spec("°C"))
    assert value == (None if expected is None else pytest.approx(expected))


@pytest.mark.parametrize(
    ("resolution", "extra", "digits"), [(0.1, 1, 2), (0.01, 0, 2), (1.0, 1, 1), (5.0, 0, 0)]
)
def test_display_precision(resolution: float, extra: int, digits: int) -> None:
    assert display_precision(resolution, extra) == digits


@pytest.mark.parametrize(
    ("metric", "name"),
    [
        ("co2", "CO₂"),
        ("pm25", "PM2.5"),
        ("PM10", "PM10"),
        ("indoor_temperature", "Indoor temperature"),
    ],
)
def test_metric_names_spell_known_abbreviations(metric: str, name: str) -> None:
    """Chemical and particle names keep their spelling in entity names and Assist answers."""
    assert metric_name(metric) == name
