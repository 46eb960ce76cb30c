"""From raw reading to state: plausibility bounds, optional Hampel outlier filter, calibration.

Pure Python with no Home Assistant imports, so the arithmetic is testable on its own.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from statistics import median

from .drivers.quantities import QUANTITIES

# 1.4826 * MAD estimates the standard deviation of normally distributed data.
MAD_TO_SIGMA = 1.4826
HAMPEL_SIGMAS = 3.0
# Below this many samples the median says nothing about what is an outlier.
HAMPEL_MIN_SAMPLES = 3

# A deviation smaller than this is never an outlier, even when the window is constant
# (MAD = 0): a dust count going from 0 to 1 is news, not noise. Roughly the sensors' noise.
OUTLIER_TOLERANCE: dict[str, float] = {
    "temperature": 0.5,
    "humidity": 2.0,
    "pressure": 1.0,
    "illuminance": 10.0,
    "co2": 30.0,
    "voltage": 0.05,
    "current": 0.01,
    "power": 0.2,
    "pm1": 5.0,
    "pm25": 5.0,
    "pm10": 5.0,
}


@dataclass(frozen=True, slots=True)
class Calibration:
    """Linear correction applied last: reported = raw * multiplier + offset."""

    offset: float = 0.0
    multiplier: float = 1.0

    def apply(self, value: float) -> float:
        """Return the corrected value."""
        return value * self.multiplier + self.offset


class HampelFilter:
    """Causal Hampel identifier over a sliding window of raw samples.

    Every sample enters the window, accepted or not, so a genuine step change is
    accepted as soon as it holds the window's median; a single spike never does.
    """

    def __init__(self, window: int, tolerance: float) -> None:
        self._samples: deque[float] = deque(maxlen=window)
        self._tolerance = tolerance

    def accept(self, value: float) -> bool:
        """Record the sample; return False when it is an outlier."""
        history = list(self._samples)
        self._samples.append(value)
        if len(history) < HAMPEL_MIN_SAMPLES:
            return True
        centre = median(history)
        mad = median(abs(sample - centre) for sample in history)
        threshold = max(HAMPEL_SIGMAS * MAD_TO_SIGMA * mad, self._tolerance)
        return abs(value - centre) <= threshold


@dataclass(slots=True)
class CleaningStats:
    """Counts shown by the diagnostic sensors and in diagnostics."""

    implausible: int = 0
    outliers: int = 0

    @property
    def rejected(self) -> int:
        """Readings that never became state."""
        return self.implausible + self.outliers


@dataclass(slots=True)
class Cleaner:
    """Per-device pipeline; one filter per quantity."""

    calibration: dict[str, Calibration] = field(default_factory=dict)
    filter_window: int | None = None
    stats: CleaningStats = field(default_factory=CleaningStats)
    _filters: dict[str, HampelFilter] = field(default_factory=dict)

    def clean(self, reading: dict[str, float]) -> dict[str, float]:
        """Return the accepted, calibrated values of one reading; rejected ones are absent."""
        accepted: dict[str, float] = {}
        for key, value in reading.items():
            quantity = QUANTITIES[key]
            if not quantity.low <= value <= quantity.high:
                self.stats.implausible += 1
                continue
            if self.filter_window is not None:
                hampel = self._filters.get(key)
                if hampel is None:
                    hampel = self._filters[key] = HampelFilter(
                        self.filter_window, OUTLIER_TOLERANCE[key]
                    )
                if not hampel.accept(value):
                    self.stats.outliers += 1
                    continue
            accepted[key] = self.calibration.get(key, Calibration()).apply(value)
        return accepted
