"""Fresh-air calibration shared by the CO2 sensors: they can only learn 400 ppm."""

from __future__ import annotations

FRESH_AIR_PPM = 400.0


def check_calibration_target(model: str, target_ppm: float) -> None:
    """Raise ValueError for any target but fresh air, with what to do instead."""
    if target_ppm != FRESH_AIR_PPM:
        raise ValueError(
            f"{model} can only calibrate to {FRESH_AIR_PPM:g} ppm (fresh outdoor air), not "
            f"{target_ppm:g} ppm: leave the sensor outdoors or by an open window for 20 "
            f"minutes and calibrate with target {FRESH_AIR_PPM:g}"
        )
