"""Fixed-point encoding of bounded real readings as GF(P) elements.

A value x in [low, high] becomes q = round((x - low) / resolution), an integer in
[0, levels] with levels = (high - low) / resolution; the offset makes negative
readings non-negative. Sums of q over many households stay exact as long as
they cannot wrap: `check_capacity` refuses counts whose worst-case sum could
exceed P / 2 (the upper half is left free, e.g. for noise shares).
"""

from __future__ import annotations

import math
import numbers
from typing import Final, overload

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ._checks import P, U64Array, integer

_HALF_P: Final[int] = (P - 1) // 2
# Tolerance for (high - low) / resolution landing a float rounding away from a whole number.
_STEP_TOLERANCE: Final[float] = 1e-9


class FixedPoint:
    """Encoder for readings in [low, high] at a given resolution (e.g. -40, 85, 0.01 degC)."""

    __slots__ = ("high", "levels", "low", "resolution")

    def __init__(self, low: float, high: float, resolution: float) -> None:
        for name, value in (("low", low), ("high", high), ("resolution", resolution)):
            if isinstance(value, bool) or not isinstance(value, numbers.Real):
                raise TypeError(f"{name} must be a real number, got {value!r}")
            if not math.isfinite(value):
                raise ValueError(f"{name} must be finite, got {value!r}")
        if not low < high:
            raise ValueError(f"low must be below high, got low={low}, high={high}")
        if not resolution > 0:
            raise ValueError(f"resolution must be positive, got {resolution}")
        steps = (high - low) / resolution
        levels = round(steps)
        if abs(steps - levels) > _STEP_TOLERANCE * steps:
            raise ValueError(
                f"high - low = {high - low} must be a whole number of resolution steps "
                f"({resolution}); got {steps} steps"
            )
        if levels > _HALF_P:
            raise ValueError(
                f"range / resolution = {levels} levels exceeds P / 2; use a coarser resolution"
            )
        self.low: float = float(low)
        self.high: float = float(high)
        self.resolution: float = float(resolution)
        self.levels: int = levels

    def __repr__(self) -> str:
        return f"FixedPoint(low={self.low}, high={self.high}, resolution={self.resolution})"

    def encode(self, values: ArrayLike) -> U64Array:
        """Field elements q for readings in [low, high]; anything outside (or NaN) is refused."""
        x = np.asarray(values, dtype=np.float64)
        outside = ~((x >= self.low) & (x <= self.high))
        if outside.any():
            index = int(np.flatnonzero(outside.reshape(-1))[0])
            raise ValueError(
                f"value {float(x.reshape(-1)[index])!r} (element {index}) is outside the declared "
                f"range [{self.low}, {self.high}]; clip readings to the range before encoding"
            )
        q = np.rint((x - self.low) / self.resolution)
        # (high - low) / resolution may round to just above levels.
        return np.minimum(q, self.levels).astype(np.uint64)

    def encode_squares(self, values: ArrayLike) -> U64Array:
        """q^2 for each reading, the term whose sum gives the sum of squares."""
        self.check_capacity(1, degree=2)
        q = self.encode(values)
        return q * q

    def max_count(self, degree: int = 1) -> int:
        """Most values whose encoded sum (degree 1) or sum of squares (2) is safe."""
        return _HALF_P // self.levels ** _degree(degree)

    def check_capacity(self, count: int, degree: int = 1) -> None:
        """Raise ValueError if `count` worst-case terms of this degree could exceed P / 2."""
        n = integer(count, "count")
        power = _degree(degree)
        if n < 0:
            raise ValueError(f"count must be non-negative, got {n}")
        if n * self.levels**power > _HALF_P:
            raise ValueError(
                f"{n} values x {self.levels} levels"
                f"{'^2' if power == 2 else ''} could exceed P / 2 and wrap around; "
                f"at most {self.max_count(power)} values fit at this resolution"
            )

    @overload
    def decode_sum(self, total: int, count: int) -> float: ...
    @overload
    def decode_sum(self, total: U64Array, count: int) -> NDArray[np.float64]: ...
    def decode_sum(self, total: int | U64Array, count: int) -> float | NDArray[np.float64]:
        """Real sum of `count` readings from the sum `total` of their encodings."""
        self.check_capacity(count, degree=1)
        q = _total(total, "total", count * self.levels)
        return count * self.low + q * self.resolution

    @overload
    def decode_sum_of_squares(self, total_squares: int, total: int, count: int) -> float: ...
    @overload
    def decode_sum_of_squares(
        self, total_squares: U64Array, total: U64Array, count: int
    ) -> NDArray[np.float64]: ...
    def decode_sum_of_squares(
        self, total_squares: int | U64Array, total: int | U64Array, count: int
    ) -> float | NDArray[np.float64]:
        """Real sum of squares of `count` readings, from the sums of q^2 and of q.

        With x = low + r q: sum x^2 = count low^2 + 2 low r sum q + r^2 sum q^2.
        """
        self.check_capacity(count, degree=2)
        q2 = _total(total_squares, "total_squares", count * self.levels**2)
        q = _total(total, "total", count * self.levels)
        r = self.resolution
        return count * self.low**2 + 2 * self.low * r * q + r * r * q2


def _degree(degree: object) -> int:
    power = integer(degree, "degree")
    if power not in (1, 2):
        raise ValueError(f"degree must be 1 (sums) or 2 (sums of squares), got {power}")
    return power


def _total(total: object, name: str, bound: int) -> float | NDArray[np.float64]:
    """A reconstructed sum as float(s), after checking it is one `count` values can produce."""
    if isinstance(total, np.ndarray):
        if total.dtype != np.uint64:
            raise TypeError(f"{name} must have dtype uint64, got {total.dtype}")
        too_big = total > np.uint64(bound)
        if too_big.any():
            index = int(np.flatnonzero(too_big.reshape(-1))[0])
            raise ValueError(
                f"{name}.flat[{index}] = {int(total.reshape(-1)[index])} exceeds the largest "
                f"possible sum {bound}; the shares or the count are wrong"
            )
        return total.astype(np.float64)
    value = integer(total, name)
    if not 0 <= value <= bound:
        raise ValueError(
            f"{name} = {value} is outside [0, {bound}], the possible sums; "
            f"the shares or the count are wrong"
        )
    return float(value)
