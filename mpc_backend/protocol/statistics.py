"""Decode a reconstructed aggregate vector into the task's statistics.

Field elements above P // 2 are read as negative (only DP noise makes them so).
With noise, every block is clamped to what real reports could produce
(counts in [0, MAX_CONTRIBUTORS], 0 <= sum_q <= count * Q,
0 <= variance <= (range / 2)^2), so results stay well-formed; statistics that
need a count of at least one are None when the (noisy) count is zero. Without
noise the vector must be exactly consistent, otherwise decoding refuses (wrong
shares or a malformed contribution).

Variance is the *population* variance sum((x - mean)^2) / count, computed exactly
on the integer codes q (shift-invariant, so the offset ``low`` drops out) and
scaled by resolution^2.

Quantiles p10..p90 come from the histogram: the rank r = p * n (n = histogram
total) falls in bin j with cum_{j-1} < r <= cum_j, and the estimate interpolates
linearly inside that bin. The exact quantile (inverted-CDF definition: the
ceil(p * n)-th smallest quantised value) lies in the same bin, so the error is at
most that bin's width.
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Any

import numpy as np

from mpc_backend.arith import P

from .encoding import fixed_point, vector_layout, vector_length
from .task import MAX_CONTRIBUTORS, STATS, TaskSpec

QUANTILES: dict[str, Fraction] = {
    "p10": Fraction(1, 10),
    "p25": Fraction(1, 4),
    "p50": Fraction(1, 2),
    "p75": Fraction(3, 4),
    "p90": Fraction(9, 10),
}


def decode_aggregate(spec: TaskSpec, total: np.ndarray, noisy: bool) -> dict[str, Any]:
    """Statistics for ``spec`` from the summed report vector (count plus requested stats).

    Returns JSON-safe values: ``{"count": int, "sum": float, "mean": float | None,
    "variance": float | None, "stddev": float | None, "histogram": [{"low", "high",
    "count"}], "quantiles": {"p10".."p90": float} | None}``, restricted to ``spec.stats``.
    """
    values = _signed(spec, total)
    layout = vector_layout(spec)
    count = values[0]
    if not noisy:
        _check_consistent(spec, values, layout)
    count = min(max(count, 0), MAX_CONTRIBUTORS)
    levels = spec.levels
    found: dict[str, Any] = {"count": count}

    if "sum_q" in layout:
        sum_q = min(max(values[layout["sum_q"].start], 0), count * levels)
        found["sum"] = float(fixed_point(spec).decode_sum(sum_q, count))
        mean = spec.low + spec.resolution * sum_q / count if count else None
        found["mean"] = None if mean is None else min(max(mean, spec.low), spec.high)
    if "sum_q2" in layout:
        found["variance"] = found["stddev"] = None
        if count:
            sum_q2 = values[layout["sum_q2"].start]
            var_q = Fraction(count * sum_q2 - sum_q * sum_q, count * count)
            var_q = min(max(var_q, Fraction(0)), Fraction(levels * levels, 4))
            variance = spec.resolution**2 * float(var_q)
            found["variance"] = variance
            found["stddev"] = math.sqrt(variance)
    if "histogram" in layout:
        counts = [min(max(c, 0), MAX_CONTRIBUTORS) for c in values[layout["histogram"]]]
        edges = (spec.low, *spec.buckets, spec.high)
        found["histogram"] = [
            {"low": edges[j], "high": edges[j + 1], "count": c} for j, c in enumerate(counts)
        ]
        found["quantiles"] = _quantiles(edges, counts)

    return {name: found[name] for name in STATS if name == "count" or name in spec.stats}


def _signed(spec: TaskSpec, total: np.ndarray) -> list[int]:
    arr = np.asarray(total)
    if arr.shape != (vector_length(spec),) or arr.dtype != np.uint64:
        raise ValueError(
            f"aggregate for {spec.task_id!r} must be a uint64 vector of length "
            f"{vector_length(spec)}, got {arr.dtype} with shape {arr.shape}"
        )
    if arr.size and int(arr.max()) >= P:
        raise ValueError("aggregate holds values >= P; reduce it modulo P first")
    half = P // 2
    return [v if v <= half else v - P for v in map(int, arr)]


class InconsistentAggregateError(ValueError):
    """A noise-free aggregate no set of valid reports can produce.

    The message quotes the aggregate's values (for local debugging only: they
    are aggregate data); ``kinds`` names the failed checks without any value,
    for anything that leaves the node.
    """

    def __init__(self, task_id: str, problems: list[tuple[str, str]]) -> None:
        super().__init__(
            f"aggregate for {task_id!r} is inconsistent "
            f"({'; '.join(detail for _, detail in problems)}): shares were summed or "
            "reconstructed wrongly, or a contribution was malformed"
        )
        self.kinds = tuple(kind for kind, _ in problems)


def _check_consistent(spec: TaskSpec, values: list[int], layout: dict[str, slice]) -> None:
    count = values[0]
    problems: list[tuple[str, str]] = []
    if not 0 <= count <= MAX_CONTRIBUTORS:
        problems.append(("count", f"count {count} outside [0, {MAX_CONTRIBUTORS}]"))
    if "sum_q" in layout:
        sum_q = values[layout["sum_q"].start]
        if not 0 <= sum_q <= count * spec.levels:
            problems.append(("sum", f"sum of codes {sum_q} outside [0, count * {spec.levels}]"))
        if "sum_q2" in layout:
            sum_q2 = values[layout["sum_q2"].start]
            if not (sum_q * sum_q <= count * sum_q2 and 0 <= sum_q2 <= spec.levels * sum_q):
                problems.append(("sum of squares",
                                 f"sum of squares {sum_q2} impossible for sum {sum_q}"))
    if "histogram" in layout:
        hist = values[layout["histogram"]]
        if min(hist) < 0 or sum(hist) != count:
            problems.append(("histogram", f"histogram {hist} does not add up to count {count}"))
    if problems:
        raise InconsistentAggregateError(spec.task_id, problems)


def _quantiles(edges: tuple[float, ...], counts: list[int]) -> dict[str, float] | None:
    n = sum(counts)
    if n == 0:
        return None
    found = {}
    for name, p in QUANTILES.items():
        rank = p * n
        below = 0
        for j, c in enumerate(counts):
            if c and below < rank <= below + c:
                width = edges[j + 1] - edges[j]
                found[name] = edges[j] + float((rank - below) / c) * width
                break
            below += c
    return found
