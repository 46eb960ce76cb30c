"""The physical world the emulated chips measure, and a slow drift for the demo.

Several chips in one room share one Ambient (a BME280 and an SCD41 side by side read the
same air); an INA219 measures its own Circuit. Set fields directly
(`ambient.temperature = 21.5`) or let a Drift move them.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(slots=True)
class Ambient:
    """Air around the sensors."""

    temperature: float = 21.0  # °C
    humidity: float = 45.0  # %RH
    pressure: float = 1013.25  # hPa
    co2: float = 600.0  # ppm
    illuminance: float = 300.0  # lx


@dataclass(slots=True)
class Circuit:
    """A DC load behind a current shunt."""

    bus_voltage: float = 12.0  # V from IN- to GND
    current: float = 0.5  # A from IN+ to IN-


@dataclass(frozen=True, slots=True)
class Wander:
    """Ornstein-Uhlenbeck parameters of one field: reverts to `mean` with time constant
    `tau_s`, long-run standard deviation `sigma`, kept within [low, high]."""

    mean: float
    sigma: float
    tau_s: float
    low: float
    high: float


HOUR = 3600.0
INDOOR_WANDER: Mapping[str, Wander] = {
    "temperature": Wander(21.0, 1.2, 3 * HOUR, 15.0, 28.0),
    "humidity": Wander(45.0, 6.0, 3 * HOUR, 20.0, 80.0),
    "pressure": Wander(1013.25, 6.0, 12 * HOUR, 960.0, 1050.0),
    "co2": Wander(700.0, 180.0, HOUR, 400.0, 2500.0),
    "illuminance": Wander(250.0, 150.0, 0.5 * HOUR, 0.0, 2000.0),
}
LOAD_WANDER: Mapping[str, Wander] = {
    "bus_voltage": Wander(12.0, 0.08, 600.0, 11.4, 12.6),
    "current": Wander(0.8, 0.35, 300.0, 0.05, 3.0),
}


class Drift:
    """Slow, bounded, seeded random variation of a state object's fields.

    Each seed (one per simulated household) gets its own baseline, the means shifted by up
    to one sigma, and its own path. `random.Random` is right here: the values are
    simulated sensor readings, not secrets.
    """

    def __init__(
        self, state: Ambient | Circuit, wander: Mapping[str, Wander], seed: int | str
    ) -> None:
        self.state = state
        self.wander = dict(wander)
        self._rng = random.Random(seed)  # noqa: S311 - simulation values, not secrets
        self.means = {
            name: w.mean + self._rng.uniform(-w.sigma, w.sigma) for name, w in self.wander.items()
        }
        for name, w in self.wander.items():
            setattr(state, name, self._clamp(w, self.means[name] + self._rng.gauss(0, w.sigma / 2)))

    @staticmethod
    def _clamp(w: Wander, value: float) -> float:
        return min(w.high, max(w.low, value))

    def advance(self, seconds: float) -> None:
        """Move every field `seconds` forward (exact OU step, so any interval works)."""
        if seconds <= 0:
            return
        for name, w in self.wander.items():
            keep = math.exp(-seconds / w.tau_s)
            mean = self.means[name]
            value = mean + (getattr(self.state, name) - mean) * keep
            value += w.sigma * math.sqrt(1.0 - keep * keep) * self._rng.gauss(0.0, 1.0)
            setattr(self.state, name, self._clamp(w, value))
