"""Time helpers shared by results, rounds and status."""

from __future__ import annotations

import datetime as dt

from mpc_backend.protocol import TaskSpec

from .config import Timing


def iso(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).isoformat(timespec="seconds").replace(
        "+00:00", "Z"
    )


def round_end(spec: TaskSpec, round_id: int) -> float:
    return float((round_id + 1) * spec.period_s)


def decision_deadline(spec: TaskSpec, round_id: int, timing: Timing) -> float:
    """When a round must be released or failed, fixed by the task and the timing alone.

    ``round end + grace + (k + 2) x takeover``: every one of the k seats gets its
    turn to close (seat i starts i x takeover after seat 0), and the last one
    has three takeover periods to finish. No request moves it.
    """
    return round_end(spec, round_id) + timing.grace_s + (spec.k + 2) * timing.takeover_s
