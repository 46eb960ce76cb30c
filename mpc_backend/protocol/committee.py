"""Committee selection by weighted rendezvous hashing (the logarithmic method).

For a (task, round) every eligible member m with capacity c_m gets
    U_m = (H + 1/2) / 2^52,
    H = top 52 bits of sha256("hearth/committee/v1" || task || round || node_id)
    score_m = c_m / -ln U_m
and the k highest scores form the committee, in score order. Every node computes
the same committee from the roster alone, whatever order it lists members in.
(52 bits keep U exactly representable and strictly below 1.)

This ranks independent exponential clocks E_m / c_m (E_m = -ln U_m), i.e. draws
members one by one with probability proportional to capacity, without
replacement. Capacity is a bounded hint (the roster enforces its range), so no
declaration buys more than a bounded share of seats.

A committee depends on nothing but the members, the task id and the round: no
other task, no load, no choice of any member. (Earlier versions spread seats
within a round by counting seats already held across tasks, which let whoever
proposed tasks move other tasks' committees and made a lookup cost grow with
the number of tasks.) Input-only members and members with capacity 0 never sit
on a committee.
"""

from __future__ import annotations

import hashlib
import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

_DOMAIN = b"hearth/committee/v1"


@dataclass(frozen=True)
class Member:
    """A federation member as committee selection sees it."""

    node_id: str
    capacity: float
    input_only: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.node_id, str) or not self.node_id:
            raise ValueError(f"member node_id must be a non-empty string, got {self.node_id!r}")
        if (
            isinstance(self.capacity, bool)
            or not isinstance(self.capacity, int | float)
            or not (math.isfinite(self.capacity) and self.capacity >= 0)
        ):
            raise ValueError(
                f"member {self.node_id} capacity must be a finite number >= 0, "
                f"got {self.capacity!r}"
            )

    @property
    def eligible(self) -> bool:
        return not self.input_only and self.capacity > 0


def _uniform(task_id: str, round_id: int, node_id: str) -> float:
    task, node = task_id.encode(), node_id.encode()
    digest = hashlib.sha256(
        _DOMAIN
        + len(task).to_bytes(4, "big")
        + task
        + round_id.to_bytes(8, "big", signed=True)
        + len(node).to_bytes(4, "big")
        + node
    ).digest()
    return ((int.from_bytes(digest[:8], "big") >> 12) + 0.5) / 2**52


def select_committee(
    members: Iterable[Member],
    task_id: str,
    round_id: int,
    k: int,
) -> list[str]:
    """Node ids of the k members with the highest rendezvous scores, best first."""
    roster = list(members)
    twice = sorted(n for n, c in Counter(m.node_id for m in roster).items() if c > 1)
    if twice:
        raise ValueError(f"members list node_id(s) more than once: {', '.join(twice)}")
    eligible = [m for m in roster if m.eligible]
    ids = [m.node_id for m in eligible]
    if k < 1:
        raise ValueError(f"committee size k must be at least 1, got {k}")
    if len(eligible) < k:
        raise ValueError(
            f"task {task_id!r} round {round_id} needs a committee of {k} but only "
            f"{len(eligible)} member(s) accept compute work ({', '.join(sorted(ids)) or 'none'}); "
            "add members that are not input-only, or lower k"
        )
    def score(m: Member) -> float:
        return m.capacity / -math.log(_uniform(task_id, round_id, m.node_id))

    ranked = sorted(eligible, key=lambda m: (-score(m), m.node_id))
    return [m.node_id for m in ranked[:k]]


def default_committee(eligible: int) -> tuple[int, int]:
    """(k, t) for a new task when its proposer gives none, from the compute members.

    Five seats with threshold 2 once five hubs can serve: three colluding hubs
    are needed to see a reading and two may be offline. Below that, three seats
    with threshold 1: two colluding hubs see a reading, one may be offline.
    """
    return (5, 2) if eligible >= 5 else (3, 1)
