"""Which reports a round sums: one contributor set, derived, never chosen.

At a round's close every committee member signs the set of senders it holds
shares from (its *held statement*, one per member per round, kept for ever). The
contributor set is a function of t + 1 or more such statements, which every
member recomputes before it answers:

    S(A) = the senders named by at least t + 1 statements of A.

A sender in S is held by t + 1 members, so t + 1 partial sums over S exist. No
coalition of t members can put a sender into S on its own (it needs an honest
statement too), and none can take an honest household out of S: a member
answering for S checks that every sender it holds and S leaves out is *provably*
unsummable, i.e. at least k - t statements of A lack it (so at most t members
can hold it, and no t + 1 partial sums over it can exist). Members that sent no
statement count as holding everything, which is why liars and silence cannot
shrink S. ``check_contributor_set`` is that check; it raises ``SetRefused``.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Mapping, Sequence


class SetRefused(ValueError):
    """A member must not answer for this contributor set; the message says why."""


def contributor_set(held: Mapping[str, frozenset[str]], t: int) -> list[str]:
    """Senders named by at least t + 1 of the held statements, sorted."""
    if len(held) < t + 1:
        return []
    # Statements mostly agree: the senders all of them name are in (set operations, in C),
    # and only the few the statements disagree on are counted one by one.
    common = frozenset.intersection(*map(frozenset, held.values()))
    counts = Counter(s for senders in held.values() for s in senders - common)
    return sorted(common.union(s for s, n in counts.items() if n >= t + 1))


def answering_members(held: Mapping[str, frozenset[str]], senders: Sequence[str]) -> list[str]:
    """Members whose statements cover every sender of the set (they can sum it)."""
    wanted = set(senders)
    return sorted(m for m, held_set in held.items() if wanted <= held_set)


def senders_digest(senders: Sequence[str]) -> str:
    """A short, order-fixed name for a contributor set, bound into partials and results."""
    return hashlib.sha256("\n".join(sorted(senders)).encode()).hexdigest()


def check_contributor_set(
    me: str,
    held: Mapping[str, frozenset[str]],
    senders: Sequence[str],
    k: int,
    t: int,
    *,
    must_hold: bool = True,
) -> None:
    """Whether member ``me`` may answer a partial sum over ``senders`` given statements ``held``.

    ``held`` maps committee members to their verified statements and must hold
    ``me``'s own. ``must_hold=False`` checks the set without requiring ``me`` to
    hold every share of it (co-signing an "insufficient" outcome). SetRefused
    names the first rule broken.
    """
    if me not in held:
        raise SetRefused("the request does not carry this member's own held statement")
    if len(held) < t + 1:
        raise SetRefused(f"{len(held)} held statement(s); at least t + 1 = {t + 1} are needed")
    expected = contributor_set(held, t)
    if sorted(senders) != expected:
        raise SetRefused(
            f"the contributor set ({len(senders)} senders) is not the one the held statements "
            f"determine ({len(expected)} senders named by at least {t + 1} statements)"
        )
    mine = held[me]
    missing = set(senders) - mine
    if missing and must_hold:
        raise SetRefused(f"this member holds no share from {len(missing)} sender(s) of the set")
    for sender in sorted(mine.difference(senders)):
        lacking = sum(sender not in held_set for held_set in held.values())
        if lacking < k - t:
            raise SetRefused(
                f"the set leaves out sender {sender}, whose share this member holds, although "
                f"only {lacking} statement(s) lack it ({k - t} would prove it cannot be summed)"
            )
