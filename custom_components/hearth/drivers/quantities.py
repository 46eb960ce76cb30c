"""What the drivers measure: a unit and a plausibility range per quantity."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Quantity:
    """A measured quantity; readings outside [low, high] are rejected as implausible."""

    key: str
    unit: str
    low: float
    high: float


QUANTITIES: dict[str, Quantity] = {
    q.key: q
    for q in (
        Quantity("temperature", "°C", -40.0, 85.0),
        Quantity("humidity", "%", 0.0, 100.0),
        Quantity("pressure", "hPa", 300.0, 1100.0),
        Quantity("illuminance", "lx", 0.0, 100_000.0),
        Quantity("co2", "ppm", 0.0, 10_000.0),
        Quantity("voltage", "V", 0.0, 32.0),
        Quantity("current", "A", -10.0, 10.0),
        Quantity("power", "W", 0.0, 400.0),
        Quantity("pm1", "µg/m³", 0.0, 1000.0),
        Quantity("pm25", "µg/m³", 0.0, 1000.0),
        Quantity("pm10", "µg/m³", 0.0, 1000.0),
    )
}
