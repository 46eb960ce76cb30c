"""Matching a task's unit to Home Assistant device classes and to source sensors."""

from __future__ import annotations

import math

from homeassistant.components.sensor import SensorDeviceClass, SensorStateClass
from homeassistant.components.sensor.const import (
    DEVICE_CLASS_STATE_CLASSES,
    DEVICE_CLASS_UNITS,
    UNIT_CONVERTERS,
)
from homeassistant.const import ATTR_DEVICE_CLASS, ATTR_UNIT_OF_MEASUREMENT
from homeassistant.core import State

from .models import TaskSpec

# Metric words that pick a device class when a unit fits several (%, ppm, µg/m³).
_METRIC_HINTS: dict[str, SensorDeviceClass] = {
    "co2": SensorDeviceClass.CO2,
    "carbon_dioxide": SensorDeviceClass.CO2,
    "humidity": SensorDeviceClass.HUMIDITY,
    "pm1": SensorDeviceClass.PM1,
    "pm2_5": SensorDeviceClass.PM25,
    "pm25": SensorDeviceClass.PM25,
    "pm10": SensorDeviceClass.PM10,
    "pressure": SensorDeviceClass.ATMOSPHERIC_PRESSURE,
}
# Classes whose unit conversion adds an offset: a spread of such values is a delta.
DELTA_CLASSES = {SensorDeviceClass.TEMPERATURE: SensorDeviceClass.TEMPERATURE_DELTA}
# Stock levels (a battery's charge): a per-period aggregate of households is not one.
_STOCK_CLASSES = {SensorDeviceClass.ENERGY_STORAGE, SensorDeviceClass.VOLUME_STORAGE}


def normal_unit(unit: str | None) -> str:
    """Units as Home Assistant spells them: "µg/m³" typed with the micro sign uses Greek mu."""
    return (unit or "").replace("\u00b5", "\u03bc")


def display_precision(resolution: float, extra: int) -> int:
    """Decimals that show a task's resolution, plus ``extra`` for averaged values."""
    return max(0, -math.floor(math.log10(resolution) + 1e-9)) + extra


def value_device_class(spec: TaskSpec) -> SensorDeviceClass | None:
    """The device class of the task's values, if its unit (and metric name) pin one down."""
    unit = normal_unit(spec.unit)
    candidates = [
        dc
        for dc, units in DEVICE_CLASS_UNITS.items()
        if unit in units
        and SensorStateClass.MEASUREMENT in DEVICE_CLASS_STATE_CLASSES.get(dc, set())
        and dc not in DELTA_CLASSES.values()
        and dc not in _STOCK_CLASSES
    ]
    if len(candidates) == 1:
        return candidates[0]
    metric = spec.metric.lower()
    for hint in sorted(_METRIC_HINTS, key=len, reverse=True):
        if hint in metric and _METRIC_HINTS[hint] in candidates:
            return _METRIC_HINTS[hint]
    return None


def source_units(spec: TaskSpec) -> list[str]:
    """Units a source sensor may have: the task's, or any its device class converts from."""
    unit = normal_unit(spec.unit)
    device_class = value_device_class(spec)
    if device_class is None or (converter := UNIT_CONVERTERS.get(device_class)) is None:
        return [unit]
    allowed = DEVICE_CLASS_UNITS[device_class]
    return sorted(str(u) for u in converter.VALID_UNITS if u is not None and u in allowed)


def unit_compatible(state: State, spec: TaskSpec) -> bool:
    """Whether the entity's unit is the task's or converts to it by the entity's device class."""
    unit = normal_unit(state.attributes.get(ATTR_UNIT_OF_MEASUREMENT))
    wanted = normal_unit(spec.unit)
    if unit == wanted:
        return True
    converter = UNIT_CONVERTERS.get(state.attributes.get(ATTR_DEVICE_CLASS))
    return converter is not None and {unit, wanted} <= set(converter.VALID_UNITS)


def state_value(state: State | None, spec: TaskSpec) -> float | None:
    """The state as a finite number in the task's unit, or None if it is not a valid reading."""
    if state is None:
        return None
    try:
        value = float(state.state)  # "unavailable", "unknown" and text fail here
    except ValueError:
        return None
    if not math.isfinite(value):
        return None
    unit = normal_unit(state.attributes.get(ATTR_UNIT_OF_MEASUREMENT))
    wanted = normal_unit(spec.unit)
    if unit == wanted:
        return value
    if not unit_compatible(state, spec):
        return None
    converter = UNIT_CONVERTERS[state.attributes[ATTR_DEVICE_CLASS]]
    return converter.converter_factory(unit, wanted)(value)
