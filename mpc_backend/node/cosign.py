"""What a committee member checks before it co-signs a released result (pure functions).

A member signs only a document that is exactly what the round gives from its
own point of view: the fixed fields of the round, its own committed contributor
set, and statistics that the signed partial sums — its own among them —
reconstruct. With at most t colluding members, a forged statistic therefore
never gathers t + 1 signatures unless t colluders and the honest members whose
partials were used all agree on it; which partials can be combined is limited
by the cross-check of every extra partial against the first t + 1.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from mpc_backend.arith import shamir_reconstruct
from mpc_backend.crypto import AuthError, b64url_decode, canonical_json, verify_envelope
from mpc_backend.protocol import TaskSpec, decode_aggregate, vector_length
from mpc_backend.protocol.contributors import senders_digest
from mpc_backend.storage import RoundCommit

from .context import MAX_MESSAGE_AGE_S
from .roster import MemberInfo
from .wire import pack_elements, unpack_elements


def excluded_doc(excluded: Mapping[str, str] | Sequence[tuple[str, str]]) -> list[dict[str, str]]:
    """The result document's signed verdicts: each excluded household and why, sorted."""
    items = excluded.items() if isinstance(excluded, Mapping) else excluded
    return [{"household": h, "verdict": v} for h, v in sorted(items)]


_FIXED = ("federation", "task", "metric", "unit", "round", "round_start", "round_end",
          "dp_epsilon", "committee")


def reconstruct_checked(partials: dict[int, np.ndarray], t: int) -> np.ndarray | None:
    """Total from t+1 partial sums (x = seat + 1); None if the others disagree with it."""
    seats = sorted(partials)
    first = seats[: t + 1]
    total = shamir_reconstruct(np.stack([partials[s] for s in first]), [s + 1 for s in first], t)
    for extra in seats[t + 1 :]:
        check_seats = [*seats[1 : t + 1], extra]
        check = shamir_reconstruct(
            np.stack([partials[s] for s in check_seats]), [s + 1 for s in check_seats], t
        )
        if not np.array_equal(check, total):
            return None
    return total


def check_frame(doc: dict[str, Any], expected: dict[str, Any], requester: str) -> None:
    """ValueError unless the round's fixed fields are the expected ones."""
    for name in _FIXED:
        if doc.get(name) != expected[name]:
            raise ValueError(f"{name} does not match the round")
    if doc.get("coordinator") != requester or set(doc) != set(expected):
        raise ValueError("the document's fields or coordinator are not as expected")
    released_at = doc.get("released_at")
    if (isinstance(released_at, bool) or not isinstance(released_at, int | float)
            or released_at < expected["round_end"]):
        raise ValueError("released_at is before the round's end")


def check_released(
    spec: TaskSpec,
    committee: Sequence[MemberInfo],
    me: str,
    commit: RoundCommit,
    doc: dict[str, Any],
    evidence: Any,
    federation: str,
    now: float,
    required: Sequence[int] = (),
) -> None:
    """ValueError unless ``doc`` is what the signed partial sums ``evidence`` reconstruct.

    ``required``: seats whose partial sums must be among those used (members that hold
    the whole set and answered this member), so that no colluder's partial is the only
    other point of the polynomial while an honest one could have pinned it.
    """
    digest = senders_digest(commit.senders)
    if doc.get("senders_digest") != digest or doc.get("contributors") != len(commit.senders):
        raise ValueError("the result is over another contributor set")
    if doc.get("dealers") != list(commit.dealers):
        raise ValueError("the result names other DP noise dealers")
    if doc.get("excluded") != excluded_doc(commit.excluded):
        raise ValueError("the result names other excluded reports than this member's verdicts")
    if not isinstance(evidence, dict):
        raise ValueError("partials must map seats to signed partial sums")
    partials = {
        seat: _verified_partial(spec, member, signed, digest, commit, federation, now)
        for seat, member, signed in _seats(committee, evidence)
    }
    mine = [m.node_id for m in committee].index(me)
    if mine not in partials or pack_elements(partials[mine]) != commit.partial:
        raise ValueError("this member's own partial sum is not among those used")
    left_out = sorted(set(required) - set(partials))
    if left_out:
        raise ValueError(f"the partial sums of seat(s) {left_out}, which hold the whole set "
                         "and answer, are not among those used")
    if len(partials) < spec.t + 1:
        raise ValueError(f"{len(partials)} partial sums; t + 1 = {spec.t + 1} are needed")
    total = reconstruct_checked(partials, spec.t)
    if total is None:
        raise ValueError("the partial sums do not lie on one polynomial")
    if spec.dp_epsilon is None and int(total[0]) != len(commit.senders):
        raise ValueError("the reconstructed count is not the number of contributors")
    try:
        stats = decode_aggregate(spec, total, noisy=spec.dp_epsilon is not None)
    except ValueError:
        raise ValueError("the partial sums do not decode to an aggregate") from None
    if canonical_json(stats) != canonical_json(doc.get("statistics")):
        raise ValueError("the statistics are not what the partial sums reconstruct")


def seat_number(text: Any) -> int:
    """A committee seat from its decimal key ("0", "1", ...); -1 for anything else, so that
    no two keys ("0", "00") name one seat."""
    if isinstance(text, str) and text.isascii() and text.isdigit() and text == str(int(text)):
        return int(text)
    return -1


def _seats(
    committee: Sequence[MemberInfo], evidence: dict[Any, Any]
) -> list[tuple[int, MemberInfo, Any]]:
    out = []
    for seat_text, signed in evidence.items():
        seat = seat_number(seat_text)
        if not 0 <= seat < len(committee):
            raise ValueError(f"no committee seat {seat_text!r}")
        out.append((seat, committee[seat], signed))
    return out


def _verified_partial(
    spec: TaskSpec,
    member: MemberInfo,
    signed: Any,
    digest: str,
    commit: RoundCommit,
    federation: str,
    now: float,
) -> np.ndarray:
    try:
        reply = verify_envelope(
            signed, lambda s: member.signing_public if s == member.node_id else None,
            "round-partial-reply", federation, MAX_MESSAGE_AGE_S, now=now)
    except AuthError as err:
        raise ValueError(f"the partial sum of {member.name} is not authentic: {err}") from None
    if (reply.get("task"), reply.get("round"), reply.get("senders_digest"),
            reply.get("dealers")) != (spec.task_id, commit.round, digest, list(commit.dealers)):
        raise ValueError(f"the partial sum of {member.name} is for another set")
    try:
        return unpack_elements(b64url_decode(reply.get("partial", "")), vector_length(spec))
    except (ValueError, TypeError):
        raise ValueError(f"the partial sum of {member.name} is malformed") from None
