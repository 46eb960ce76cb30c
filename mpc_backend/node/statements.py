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
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
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
    known = _VERIFIED.get(key, wire)
    if known is not None:
        return member, known.senders
    if (
        not isinstance(senders, list)
        or not all(isinstance(s, str) for s in senders)
        or senders != sorted(set(senders))
    ):
        raise StatementError(f"held statement of {member} must list distinct senders, sorted")
    if not isinstance(statement.get("verify_commit"), str) or not _HEX64.fullmatch(
            statement["verify_commit"]):
        raise StatementError(f"held statement of {member} carries no seed commitment")
    signed = canonical_json(statement)
    try:
        verify_signature(key, HELD_CONTEXT + signed, b64url_decode(wire.get("sig", "")))
    except (ValueError, BadSignatureError) as err:
        raise StatementError(f"held statement of {member}: bad signature ({err})") from None
    return member, _VERIFIED.add(key, wire, signed).senders


def statement_bytes(wire: dict[str, Any]) -> bytes:
    """The canonical JSON of a held statement (its signed bytes, less the context)."""
    known = _VERIFIED.find(wire)
    return known.signed if known is not None else canonical_json(wire["statement"])


@dataclass(frozen=True)
class _Verified:
    statement: dict[str, Any]  # as verified: compared field by field with a new copy
    senders: frozenset[str]
    signed: bytes


class _VerifiedStatements:
    """Statements whose signature already verified, by (signature, key).

    A round's close hands the same few statements around many times (every member
    forwards them with each step, and peeks at its peers' own); each would be
    canonicalised, sorted and signature-checked again. A copy is taken as verified only if
    each of its fields has the type and value of the verified one, so that it has the same
    canonical JSON, hence the same signed bytes. Bounded by weight, one per statement plus
    one per sender it names (the least recently used statements go first), so neither many
    small statements nor a few large ones grow it past a few closes' worth.
    """

    def __init__(self, max_weight: int) -> None:
        self.max_weight = max_weight
        self._weight = 0
        self._entries: OrderedDict[tuple[str, bytes], _Verified] = OrderedDict()
        self._by_sig: dict[str, tuple[str, bytes]] = {}

    def get(self, key: bytes, wire: dict[str, Any]) -> _Verified | None:
        sig = wire.get("sig")
        entry = self._entries.get((sig, key)) if isinstance(sig, str) else None
        if entry is None or not _same_fields(wire["statement"], entry.statement):
            return None
        self._entries.move_to_end((sig, key))
        return entry

    def find(self, wire: dict[str, Any]) -> _Verified | None:
        """A verified statement equal to ``wire``'s under its signature, whatever the key."""
        sig = wire.get("sig")
        at = self._by_sig.get(sig) if isinstance(sig, str) else None
        entry = self._entries.get(at) if at is not None else None
        if entry is None or not _same_fields(wire["statement"], entry.statement):
            return None
        return entry

    def add(self, key: bytes, wire: dict[str, Any], signed: bytes) -> _Verified:
        statement = wire["statement"]
        entry = _Verified({**statement, "senders": list(statement["senders"])},
                          frozenset(statement["senders"]), signed)
        at = (wire["sig"], key)
        old = self._entries.pop(at, None)
        self._weight += _weight(entry) - (_weight(old) if old else 0)
        self._entries[at] = entry
        self._by_sig[wire["sig"]] = at
        while self._weight > self.max_weight and len(self._entries) > 1:
            gone, dropped = self._entries.popitem(last=False)
            self._weight -= _weight(dropped)
            if self._by_sig.get(gone[0]) == gone:
                del self._by_sig[gone[0]]
        return entry

    def __len__(self) -> int:
        return len(self._entries)


def _weight(entry: _Verified) -> int:
    return 1 + len(entry.senders)


def _same_fields(statement: dict[str, Any], known: dict[str, Any]) -> bool:
    """Whether ``statement`` encodes to the same canonical JSON as the verified ``known``:
    the same keys, and each value of the same type (1, 1.0 and True are equal in Python,
    not in JSON) and value. The senders of ``known`` are all strings, so an equal list is."""
    return statement.keys() == known.keys() and all(
        type(statement[k]) is type(v) and statement[k] == v for k, v in known.items())


# About 100 bytes a sender and a few hundred a statement: at most ~25-50 MB, for about
# 8 closes of 3 x 10 000 senders, or 256 Ki empty statements.
_VERIFIED = _VerifiedStatements(max_weight=1 << 18)
