"""Held statements: a committee member's signed list of the senders it holds for a round.

Wire form ``{"statement": {"federation", "task", "round", "member", "senders",
"verify_commit"}, "sig": b64url}``, the Ed25519 signature over ``hearth/held/v1\\0``
+ canonical JSON. ``verify_commit`` commits the member to its secret seed for the
round's validity checks (``seed_commitment``), before any member reveals one.
Statements travel inside other messages (a coordinator forwards them with a
partial-sum request), so each carries its full context and is checked on its own:
right federation, task and round, signed by the committee member it names.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Sequence
from typing import Any

from mpc_backend.crypto import (
    BadSignatureError,
    NodeKeys,
    b64url_decode,
    b64url_encode,
    canonical_json,
    verify_signature,
)

HELD_CONTEXT = b"hearth/held/v1\x00"
_SEED_CONTEXT = b"hearth/verify-seed/v1\x00"
_HEX64 = re.compile(r"[0-9a-f]{64}")


class StatementError(ValueError):
    """A held statement is malformed, out of context or not signed by its member."""


def seed_commitment(seed: bytes) -> str:
    """The hex commitment a held statement carries for a verification seed."""
    return hashlib.sha256(_SEED_CONTEXT + seed).hexdigest()


def sign_held(
    keys: NodeKeys, federation: str, task: str, round_id: int, senders: Sequence[str],
    verify_commit: str,
) -> dict[str, Any]:
    statement = {"federation": federation, "task": task, "round": round_id,
                 "member": keys.node_id, "senders": sorted(senders),
                 "verify_commit": verify_commit}
    return {"statement": statement,
            "sig": b64url_encode(keys.sign(HELD_CONTEXT + canonical_json(statement)))}


def verify_held(
    wire: Any,
    key_of: Callable[[str], bytes | None],
    federation: str,
    task: str,
    round_id: int,
) -> tuple[str, frozenset[str]]:
    """(member, senders) of an authentic statement for this round; StatementError otherwise.

    ``key_of`` gives a committee member's signing key, None for anyone else.
    """
    if not isinstance(wire, dict) or not isinstance(wire.get("statement"), dict):
        raise StatementError("expected {'statement': {...}, 'sig': ...}")
    statement = wire["statement"]
    member, senders = statement.get("member"), statement.get("senders")
    if (statement.get("federation"), statement.get("task"), statement.get("round")) != (
        federation, task, round_id
    ):
        raise StatementError("held statement is for another federation, task or round")
    if not isinstance(member, str) or (key := key_of(member)) is None:
        raise StatementError("held statement is not from a member of the round's committee")
    if (
        not isinstance(senders, list)
        or not all(isinstance(s, str) for s in senders)
        or senders != sorted(set(senders))
    ):
        raise StatementError(f"held statement of {member} must list distinct senders, sorted")
    if not isinstance(statement.get("verify_commit"), str) or not _HEX64.fullmatch(
            statement["verify_commit"]):
        raise StatementError(f"held statement of {member} carries no seed commitment")
    try:
        verify_signature(key, HELD_CONTEXT + canonical_json(statement),
                         b64url_decode(wire.get("sig", "")))
    except (ValueError, BadSignatureError) as err:
        raise StatementError(f"held statement of {member}: bad signature ({err})") from None
    return member, frozenset(senders)
