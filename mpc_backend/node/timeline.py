"""Time helpers shared by results, rounds and status."""

from __future__ import annotations

import datetime as dt

from mpc_backend.protocol import TaskSpec


def iso(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).isoformat(timespec="seconds").replace(
        "+00:00", "Z"
    )


def round_end(spec: TaskSpec, round_id: int) -> float:
    return float((round_id + 1) * spec.period_s)


def decision_deadline(spec: TaskSpec, round_id: int) -> float:
    """When a round must be released or failed: two periods after its end.

    Fixed by the task alone, so every member agrees on it whatever its own timing
    settings, and no request moves it. Two periods leave every committee seat its
    turn to close with the default timing (seat i starts grace + i x takeover
    after the end) for periods of five minutes and more.
    """
    return round_end(spec, round_id) + 2 * spec.period_s


# Members' clocks differ a little: a failure decided at the deadline by a member
# whose clock runs this much ahead is still accepted (and not taken for an attack).
CLOCK_SKEW_S = 5.0
