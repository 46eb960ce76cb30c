"""Held statements: signing, checking, and the memory of statements already checked."""

from __future__ import annotations

import copy
import hashlib
from typing import Any

import pytest

from mpc_backend.crypto import NodeKeys, b64url_decode, canonical_json
from mpc_backend.node import statements
from mpc_backend.node.statements import StatementError, sign_held, verify_held
from mpc_backend.node.verification import statements_digest

FED, TASK, ROUND = "fed", "temp", 7
COMMIT = "ab" * 32


@pytest.fixture(autouse=True)
def _fresh_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(statements, "_VERIFIED", statements._VerifiedStatements(max_weight=1000))


def _keys() -> tuple[NodeKeys, NodeKeys]:
    return NodeKeys.generate(), NodeKeys.generate()


def _check(wire: Any, keys: dict[str, bytes]) -> tuple[str, frozenset[str]]:
    return verify_held(wire, keys.get, FED, TASK, ROUND)


def test_a_statement_checks_the_same_the_second_time_and_tampered_copies_never_do() -> None:
    a, b = _keys()
    keys = {a.node_id: a.signing_public, b.node_id: b.signing_public}
    wire = sign_held(a, FED, TASK, ROUND, ["h2", "h1", "h3"], COMMIT)
    first = _check(copy.deepcopy(wire), keys)
    assert first == (a.node_id, frozenset({"h1", "h2", "h3"}))
    assert _check(copy.deepcopy(wire), keys) == first  # from memory: same answer

    def tampered(**changes: Any) -> dict[str, Any]:
        forged = copy.deepcopy(wire)
        forged["statement"].update(changes)
        return forged

    # Each differs from the checked statement in its signed bytes, with the same signature.
    for forged in (
        tampered(senders=["h1", "h2"]),
        tampered(senders=["h1", "h2", "h4"]),
        tampered(verify_commit="cd" * 32),
        tampered(extra=1),
        tampered(round=float(ROUND)),  # == ROUND in Python, not in JSON
        tampered(member=b.node_id),
    ):
        with pytest.raises(StatementError):
            _check(forged, keys)
    # Not under another key: a statement checked for one committee is not one of another's.
    other = NodeKeys.generate()
    with pytest.raises(StatementError, match="bad signature"):
        _check(copy.deepcopy(wire), {a.node_id: other.signing_public})
    # Context is checked first, remembered or not.
    with pytest.raises(StatementError, match="another federation"):
        verify_held(copy.deepcopy(wire), keys.get, FED, TASK, ROUND + 1)
    # The memory keeps its own copy: changing the checked wire afterwards changes nothing.
    wire["statement"]["senders"].append("h9")
    with pytest.raises(StatementError):
        _check(wire, keys)


def test_the_digest_is_the_signed_bytes_remembered_or_not() -> None:
    a, b = _keys()
    keys = {a.node_id: a.signing_public, b.node_id: b.signing_public}
    wires = [sign_held(k, FED, TASK, ROUND, [f"h{i}" for i in range(50)], COMMIT)
             for k in (a, b)]

    def direct(ws: list[dict[str, Any]]) -> str:
        parts = sorted(canonical_json(w["statement"]) + b"\x00" + b64url_decode(w["sig"])
                       for w in ws)
        return hashlib.sha256(b"\n".join(parts)).hexdigest()

    before = statements_digest(wires)
    for wire in wires:
        _check(copy.deepcopy(wire), keys)
    assert statements_digest(copy.deepcopy(wires)) == before == direct(wires)
    changed = copy.deepcopy(wires)
    changed[0]["statement"]["senders"] = ["h1"]  # not the remembered statement
    assert statements_digest(changed) == direct(changed) != before


def test_the_memory_is_bounded_by_statements_and_the_senders_they_name() -> None:
    """One unit per statement and one per sender: large statements and empty ones alike
    (rounds nobody reported to, or a member signing distinct empty ones) are evicted, the
    least recently used first, and a statement found by its signature is the one kept."""
    memory = statements._VerifiedStatements(max_weight=250)
    a = NodeKeys.generate()
    wires = []
    for r in range(5):
        wire = sign_held(a, FED, TASK, r, [f"h{i}" for i in range(100)], COMMIT)
        memory.add(a.signing_public, wire, canonical_json(wire["statement"]))
        assert memory.get(a.signing_public, wire) is not None
        wires.append(wire)
    assert len(memory) == 2 and memory._weight == 202
    assert memory.find(wires[0]) is None and memory.find(wires[4]) is not None
    for r in range(1000):
        wire = sign_held(a, FED, TASK, 100 + r, [], COMMIT)
        memory.add(a.signing_public, wire, canonical_json(wire["statement"]))
    assert len(memory) == 250 and memory._weight == 250
    assert memory.find(wires[4]) is None and memory.find(wire) is not None
    assert len(memory._by_sig) == 250
