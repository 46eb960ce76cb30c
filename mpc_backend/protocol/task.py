"""Task specification: what a federation aggregates and what each round may release.

A task is validated once, when it is created or received, so every later step
(encoding, noise, decoding) can trust it. Every error names the field and says
what to change, because these messages reach the person configuring the task.

``task_id`` is either given or derived from the metric name with
:func:`derive_task_id` (lowercase ASCII slug, ``_`` separators, at most 64
characters), so two hubs that define the same metric agree on the id.
"""

from __future__ import annotations

import math
import re
import unicodedata
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from typing import Any, NamedTuple

from mpc_backend.arith import P

from .noise import NOISE_TAIL, component_scales

STATS = ("count", "sum", "mean", "variance", "stddev", "histogram", "quantiles")
_NEEDS_SUM = frozenset({"sum", "mean", "variance", "stddev"})
_NEEDS_SQUARES = frozenset({"variance", "stddev"})
_NEEDS_BUCKETS = frozenset({"histogram", "quantiles"})

# Upper bound on reports per round; the field must hold this many maximal
# reports plus noise without wrapping past P/2 (decoding reads > P/2 as negative).
MAX_CONTRIBUTORS = 100_000
MIN_CONTRIBUTORS = 3
MAX_BUCKET_EDGES = 256
MIN_PERIOD_S = 10
# A round is decided two periods after its end; round tombstones are kept 30 days, so a
# week keeps every decision inside that memory.
MAX_PERIOD_S = 7 * 86400

_TASK_ID = re.compile(r"[a-z0-9][a-z0-9_]{0,63}")
_REQUIRED = ("metric", "low", "high", "resolution", "stats", "period_s", "min_contributors")
_OPTIONAL = ("task_id", "unit", "buckets", "dp_epsilon", "k", "t")


class Component(NamedTuple):
    """A block of the report vector and what one report can contribute to it."""

    name: str  # "count" | "sum_q" | "sum_q2" | "histogram"
    size: int
    report_max: int  # largest value a single report puts in one element
    sensitivity: int  # L1 change of the block's total when one report is added/removed


def derive_task_id(metric: str) -> str:
    """Slug of ``metric``: "Indoor Température (°C)" -> "indoor_temperature_c"."""
    ascii_name = unicodedata.normalize("NFKD", metric).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "_", ascii_name.lower()).strip("_")[:64].rstrip("_")
    if not slug:
        raise ValueError(
            f"metric {metric!r} has no letters or digits to derive a task_id from; "
            "give task_id explicitly"
        )
    return slug


def _steps(span: float, resolution: float) -> int | None:
    """``span / resolution`` as an int if it is a whole number of steps (float-tolerant)."""
    ratio = span / resolution
    steps = round(ratio)
    return steps if abs(ratio - steps) <= 1e-9 * max(1, steps) else None


@dataclass(frozen=True)
class TaskSpec:
    """One aggregation task; constructing it validates it (ValueError naming the field)."""

    task_id: str
    metric: str
    unit: str
    low: float
    high: float
    resolution: float
    stats: tuple[str, ...]
    buckets: tuple[float, ...]
    period_s: int
    min_contributors: int
    dp_epsilon: float | None = None
    k: int = 3
    t: int = 1
    _levels: int = field(init=False, repr=False, compare=False)
    _bucket_steps: tuple[int, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Normalise JSON-ish input (lists, ints) so equal specs compare and hash equal.
        for name in ("low", "high", "resolution"):
            object.__setattr__(self, name, _number(name, getattr(self, name)))
        object.__setattr__(self, "stats", _str_tuple("stats", self.stats))
        edges = tuple(_number("buckets", b) for b in _sequence("buckets", self.buckets))
        object.__setattr__(self, "buckets", edges)
        for name in ("period_s", "min_contributors", "k", "t"):
            object.__setattr__(self, name, _integer(name, getattr(self, name)))
        if self.dp_epsilon is not None:
            object.__setattr__(self, "dp_epsilon", _number("dp_epsilon", self.dp_epsilon))
        self.validate()

    # -- validation -------------------------------------------------------

    def validate(self) -> None:
        """Raise ValueError naming the first invalid field and how to fix it."""
        if not isinstance(self.task_id, str) or not _TASK_ID.fullmatch(self.task_id):
            raise ValueError(
                f"task_id {self.task_id!r} must be 1-64 characters of a-z, 0-9 and '_', "
                "starting with a letter or digit; omit it to derive one from metric"
            )
        if not isinstance(self.metric, str) or not self.metric.strip():
            raise ValueError("metric must be a non-empty name, e.g. 'indoor_temperature'")
        if not isinstance(self.unit, str):
            raise ValueError(f"unit must be a string (may be empty), got {self.unit!r}")
        if not self.low < self.high:
            raise ValueError(f"low ({self.low}) must be less than high ({self.high})")
        if not self.resolution > 0:
            raise ValueError(f"resolution must be > 0, got {self.resolution}")
        levels = _steps(self.high - self.low, self.resolution)
        if levels is None or levels < 1:
            raise ValueError(
                f"resolution {self.resolution} must divide the range high - low = "
                f"{self.high - self.low} into a whole number of steps; pick a resolution "
                "such as 0.1, 0.5 or 1 that divides it"
            )
        object.__setattr__(self, "_levels", levels)
        self._validate_stats()
        self._validate_buckets()
        if not MIN_PERIOD_S <= self.period_s <= MAX_PERIOD_S:
            raise ValueError(
                f"period_s must be {MIN_PERIOD_S} seconds to {MAX_PERIOD_S // 86400} days, "
                f"got {self.period_s}"
            )
        if self.min_contributors < MIN_CONTRIBUTORS:
            # With two, each contributor subtracts its own reading from a released mean.
            raise ValueError(
                f"min_contributors must be at least {MIN_CONTRIBUTORS}, got "
                f"{self.min_contributors}: a released mean over two contributors tells each the "
                f"other's reading; use at least {MIN_CONTRIBUTORS}"
            )
        if self.min_contributors > MAX_CONTRIBUTORS:
            raise ValueError(f"min_contributors must be at most {MAX_CONTRIBUTORS}")
        if self.dp_epsilon is not None and not self.dp_epsilon > 0:
            raise ValueError(
                f"dp_epsilon must be > 0 (smaller = more noise), got {self.dp_epsilon}; "
                "omit it for no noise"
            )
        if self.t < 1:
            raise ValueError(
                f"t must be at least 1 (any t members together learn nothing), got {self.t}"
            )
        if self.k < 2 * self.t + 1:
            raise ValueError(
                f"k ({self.k}) must be at least 2t + 1 = {2 * self.t + 1}: with fewer seats, "
                f"t colluding members' statements could prove an honest household unsummable "
                f"and leave it out of the sum"
            )
        self._validate_headroom()

    def _validate_stats(self) -> None:
        if not self.stats:
            raise ValueError(f"stats must name at least one of {', '.join(STATS)}")
        unknown = [s for s in self.stats if s not in STATS]
        if unknown:
            raise ValueError(f"stats has unknown names {unknown}; choose from {', '.join(STATS)}")
        if len(set(self.stats)) != len(self.stats):
            raise ValueError(f"stats lists a statistic twice: {list(self.stats)}")

    def _validate_buckets(self) -> None:
        wants_buckets = bool(_NEEDS_BUCKETS.intersection(self.stats))
        if wants_buckets and not self.buckets:
            raise ValueError("buckets (histogram edges) are required for histogram and quantiles")
        if self.buckets and not wants_buckets:
            raise ValueError(
                "buckets are only used by histogram and quantiles; add one of them to stats "
                "or remove buckets"
            )
        if len(self.buckets) > MAX_BUCKET_EDGES:
            raise ValueError(f"buckets may have at most {MAX_BUCKET_EDGES} edges")
        steps: list[int] = []
        for edge in self.buckets:
            if not self.low < edge <= self.high:
                raise ValueError(
                    f"bucket edge {edge} must lie within ({self.low}, {self.high}] (low, high]"
                )
            step = _steps(edge - self.low, self.resolution)
            if step is None:
                raise ValueError(
                    f"bucket edge {edge} is not on the resolution grid low + n * resolution "
                    f"({self.low} + n * {self.resolution}); move it onto the grid"
                )
            if steps and step <= steps[-1]:
                raise ValueError(f"buckets must be strictly increasing, got {list(self.buckets)}")
            steps.append(step)
        object.__setattr__(self, "_bucket_steps", tuple(steps))

    def _validate_headroom(self) -> None:
        scales = component_scales(self, self.dp_epsilon) if self.dp_epsilon is not None else {}
        limit = P // 2
        for comp in self.components:
            noise = self.k * NOISE_TAIL * scales.get(comp.name, Fraction(0))
            if MAX_CONTRIBUTORS * comp.report_max + noise < limit:
                continue
            if comp.name in ("count", "histogram"):
                raise ValueError(
                    f"dp_epsilon {self.dp_epsilon} is so small that the {comp.name} noise could "
                    "exceed the field's range; use a larger dp_epsilon"
                )
            power = 2 if comp.name == "sum_q2" else 1
            # Largest Q with Q^power * per_step < limit (noise scales with the sensitivity).
            per_step = MAX_CONTRIBUTORS + noise / comp.sensitivity
            bound = math.ceil(limit / per_step) - 1
            max_levels = math.isqrt(bound) if power == 2 else bound
            needed = _round_up((self.high - self.low) / max(max_levels, 1))
            raise ValueError(
                f"resolution {self.resolution} over [{self.low}, {self.high}] gives "
                f"{self.levels} steps; with up to {MAX_CONTRIBUTORS} contributors"
                f"{' plus DP noise' if noise else ''} the {comp.name} total could exceed the "
                f"field's range. Set resolution to at least {needed:.3g} (or narrow low/high"
                f"{', or raise dp_epsilon' if noise else ''})"
            )

    # -- derived ----------------------------------------------------------

    @property
    def levels(self) -> int:
        """Number of resolution steps Q = (high - low) / resolution; encoded q is in [0, Q]."""
        return self._levels

    @property
    def bucket_steps(self) -> tuple[int, ...]:
        """Bucket edges as offsets q on the resolution grid (strictly increasing, in (0, Q])."""
        return self._bucket_steps

    @property
    def components(self) -> tuple[Component, ...]:
        """Blocks of the report vector, in order: only what the requested stats need.

        Leaving out unrequested blocks keeps committees from learning (and the DP
        budget from paying for) anything that is not released.
        """
        q = self.levels
        comps = [Component("count", 1, 1, 1)]
        if _NEEDS_SUM.intersection(self.stats):
            comps.append(Component("sum_q", 1, q, q))
        if _NEEDS_SQUARES.intersection(self.stats):
            comps.append(Component("sum_q2", 1, q * q, q * q))
        if self.buckets:
            comps.append(Component("histogram", len(self.buckets) + 1, 1, 1))
        return tuple(comps)

    # -- JSON -------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict (lists for tuples); ``from_dict(to_dict())`` round-trips."""
        data = {k: v for k, v in asdict(self).items() if not k.startswith("_")}
        data["stats"] = list(self.stats)
        data["buckets"] = list(self.buckets)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TaskSpec:
        """Build from JSON; task_id is derived from metric when absent or empty."""
        if not isinstance(data, dict):
            raise ValueError(f"task spec must be a JSON object, got {type(data).__name__}")
        missing = [k for k in _REQUIRED if k not in data]
        if missing:
            raise ValueError(f"task spec is missing required fields: {', '.join(missing)}")
        unknown = sorted(set(data) - set(_REQUIRED) - set(_OPTIONAL))
        if unknown:
            raise ValueError(
                f"task spec has unknown fields {unknown}; allowed: "
                f"{', '.join(_REQUIRED + _OPTIONAL)}"
            )
        metric = data["metric"]
        if not isinstance(metric, str):
            raise ValueError(f"metric must be a string, got {metric!r}")
        return cls(
            task_id=data.get("task_id") or derive_task_id(metric),
            metric=metric,
            unit=data.get("unit", ""),
            low=data["low"],
            high=data["high"],
            resolution=data["resolution"],
            stats=data["stats"],
            buckets=data.get("buckets") or (),
            period_s=data["period_s"],
            min_contributors=data["min_contributors"],
            dp_epsilon=data.get("dp_epsilon"),
            k=data.get("k", 3),
            t=data.get("t", 1),
        )


def _round_up(x: float, digits: int = 3) -> float:
    """``x`` rounded up to ``digits`` significant digits, so a suggested minimum is safe."""
    unit = 10.0 ** (math.floor(math.log10(x)) - digits + 1)
    return math.ceil(x / unit) * unit


def _number(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{name} must be a number, got {value!r}")
    try:
        number = float(value)
    except OverflowError:  # an integer beyond float range
        raise ValueError(f"{name} must be finite, got an integer too large for a float") from None
    if not math.isfinite(number):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return number


def _integer(name: str, value: object) -> int:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be a whole number, got {value!r}")
    return value


def _sequence(name: str, value: object) -> tuple[object, ...]:
    if isinstance(value, str | bytes) or not isinstance(value, list | tuple):
        raise ValueError(f"{name} must be a list, got {value!r}")
    return tuple(value)


def _str_tuple(name: str, value: object) -> tuple[str, ...]:
    items = _sequence(name, value)
    if not all(isinstance(s, str) for s in items):
        raise ValueError(f"{name} must be a list of names, got {list(items)!r}")
    return items  # type: ignore[return-value]
