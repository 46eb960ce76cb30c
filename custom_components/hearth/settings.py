"""A sensor entry's options, read with the defaults that fit its device."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .cleaning import Calibration, Cleaner
from .const import (
    CONF_CALIBRATION,
    CONF_FILTER_WINDOW,
    CONF_MULTIPLIER,
    CONF_OFFSET,
    CONF_OUTLIER_FILTER,
    CONF_SCAN_INTERVAL,
    DEFAULT_FILTER_WINDOW,
)
from .device import I2CDevice, SensorDevice

# Streaming sensors default to continuous reading; duty cycles are opt-in.
CONTINUOUS = 0


def scan_interval(options: Mapping[str, Any], device: SensorDevice) -> int:
    """Seconds between readings; for a streaming device 0 means every frame."""
    default = CONTINUOUS if device.streaming else device.default_scan_interval
    return int(options.get(CONF_SCAN_INTERVAL, default))


def calibrations(options: Mapping[str, Any]) -> dict[str, Calibration]:
    """Per-quantity linear corrections."""
    return {
        key: Calibration(
            offset=float(values.get(CONF_OFFSET, 0.0)),
            multiplier=float(values.get(CONF_MULTIPLIER, 1.0)),
        )
        for key, values in options.get(CONF_CALIBRATION, {}).items()
    }


def filter_window(options: Mapping[str, Any]) -> int | None:
    """Hampel window length, or None when the outlier filter is off."""
    if not options.get(CONF_OUTLIER_FILTER, False):
        return None
    return int(options.get(CONF_FILTER_WINDOW, DEFAULT_FILTER_WINDOW))


def configure(device: SensorDevice, options: Mapping[str, Any]) -> Cleaner:
    """The cleaning pipeline for the options.

    A chip that corrects temperature itself (SCD4x) is handed the temperature offset,
    so its humidity is computed from the corrected temperature too.
    """
    corrections = calibrations(options)
    temperature = corrections.get("temperature")
    if isinstance(device, I2CDevice) and device.applies_temperature_offset and temperature:
        device.chip_temperature_offset = temperature.offset
        corrections["temperature"] = Calibration(multiplier=temperature.multiplier)
    return Cleaner(calibration=corrections, filter_window=filter_window(options))
