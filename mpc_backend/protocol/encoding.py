"""Linear encoding of one reading: [1, q, q^2, one-hot(bucket)] over GF(P).

q = round((value - low) / resolution) is the offset fixed-point code in [0, Q].
Every block is linear in the reports, so summing Shamir shares sums the blocks.
Only the blocks the task's stats need are present (``TaskSpec.components``):
count always, q for sum/mean/variance/stddev, q^2 for variance/stddev, the
one-hot histogram for histogram/quantiles. Bin j of the histogram is
[edge_{j-1}, edge_j) in quantised values, bin 0 starts at low, the last ends at
high (inclusive).
"""

from __future__ import annotations

import math
import numbers
from bisect import bisect_right
from functools import lru_cache

import numpy as np

from mpc_backend.arith import FixedPoint

from .task import TaskSpec


@lru_cache(maxsize=256)
def fixed_point(spec: TaskSpec) -> FixedPoint:
    """The task's fixed-point code (cached: specs are immutable)."""
    return FixedPoint(spec.low, spec.high, spec.resolution)


def vector_length(spec: TaskSpec) -> int:
    """Number of field elements in one report of ``spec``."""
    return sum(c.size for c in spec.components)


def vector_layout(spec: TaskSpec) -> dict[str, slice]:
    """Position of each component block in the report vector."""
    layout: dict[str, slice] = {}
    start = 0
    for comp in spec.components:
        layout[comp.name] = slice(start, start + comp.size)
        start += comp.size
    return layout


def encode_report(spec: TaskSpec, value: float) -> np.ndarray:
    """One household's report as uint64 field elements; ValueError if outside [low, high]."""
    if not isinstance(value, numbers.Real) or isinstance(value, bool):
        raise ValueError(f"value must be a number, got {value!r}")
    if not (math.isfinite(value) and spec.low <= value <= spec.high):
        raise ValueError(
            f"value {value} outside the task range [{spec.low}, {spec.high}] of "
            f"{spec.task_id!r}; clip it to the range or widen the task"
        )
    q = int(fixed_point(spec).encode(np.array([value], dtype=np.float64))[0])
    vector = np.zeros(vector_length(spec), dtype=np.uint64)
    layout = vector_layout(spec)
    vector[layout["count"]] = 1
    if "sum_q" in layout:
        vector[layout["sum_q"]] = q
    if "sum_q2" in layout:
        vector[layout["sum_q2"]] = q * q
    if "histogram" in layout:
        vector[layout["histogram"].start + bisect_right(spec.bucket_steps, q)] = 1
    return vector
