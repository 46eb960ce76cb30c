"""Member records and rosters: the membership policy, capacity history, and old rosters.

A member may run a modified node, so what it declares is checked when its record
is read: capacity within MIN_CAPACITY..MAX_CAPACITY, a plain http(s)://HOST[:PORT]
URL, a key for a known HPKE suite. Rosters signed before a field existed still verify.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from mpc_backend.crypto import NodeKeys, b64url_encode, canonical_json
from mpc_backend.crypto.sealing import SUITE_HYBRID, SUITE_X25519
from mpc_backend.node.roster import (
    HPKE_POLICY_ANY,
    HPKE_POLICY_HYBRID,
    MAX_CAPACITY,
    MIN_CAPACITY,
    ROSTER_CONTEXT,
    CapacityError,
    MemberInfo,
    Roster,
    RosterError,
    RosterTask,
    sign_roster,
    verify_roster,
)
from mpc_backend.protocol import TaskSpec
from tests.backend.conftest import TASK

KEYS = NodeKeys.generate()


def member_dict(keys: NodeKeys = KEYS, **overrides: Any) -> dict[str, Any]:
    data = MemberInfo.of_keys(keys, "house", "http://127.0.0.1:1", 1.0, False).to_dict()
    return {**data, **overrides}


def roster_of(*members: MemberInfo, policy: str = HPKE_POLICY_HYBRID) -> Roster:
    return Roster("f" * 32, "Elm Street", 1, 1000.0, members[0].node_id, members,
                  hpke_policy=policy)


def test_member_hpke_suite_and_key_are_checked() -> None:
    good = member_dict()
    assert MemberInfo.from_dict(good).hpke_public == KEYS.hpke_public
    with pytest.raises(RosterError, match="unknown HPKE suite 'RSA-2048'"):
        MemberInfo.from_dict({**good, "hpke_suite": "RSA-2048"})
    short = MemberInfo.from_dict(good).to_dict()
    short["hpke_public"] = short["hpke_public"][:20]
    with pytest.raises(RosterError, match=f"{KEYS.hpke_suite} public key must be"):
        MemberInfo.from_dict(short)


@pytest.mark.parametrize("capacity", [1e12, 2.01, 0.49, 0.0, -1.0, float("nan"), float("inf")])
def test_capacity_outside_the_bounds_is_refused(capacity: float) -> None:
    with pytest.raises(CapacityError) as err:
        MemberInfo.from_dict(member_dict(capacity=capacity))
    message = str(err.value)
    assert message.startswith("member house: capacity ")
    assert "outside the allowed range 0.5 to 2; capacity is a small hint" in message


def test_capacity_bounds_are_the_policy() -> None:
    assert (MIN_CAPACITY, MAX_CAPACITY) == (0.5, 2.0)
    for capacity in (MIN_CAPACITY, 1, MAX_CAPACITY):
        assert MemberInfo.from_dict(member_dict(capacity=capacity)).capacity == capacity


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("http://hub.lan:8731/hearth", "has a path (/hearth)"),
        ("http://hub.lan:8731/?x=1", "has a query"),
        ("http://hub.lan:8731?", "has a query"),
        ("http://hub.lan:8731#top", "has a fragment"),
        ("http://user:secret@hub.lan:8731", "carries a user name or password"),
        ("ftp://hub.lan", "is not an http or https URL"),
        ("hub.lan:8731", "is not an http or https URL"),
        ("http://:8731", "has no host"),
        ("http://hub.lan:99999", "is not a valid URL or has an invalid port"),
        ("http://hub.lan:0", "has port 0"),
        ("http://hub .lan", "contains spaces"),
        ("http://" + "h" * 300, "is longer than 300 characters"),
    ],
)
def test_member_url_is_scheme_host_and_port_only(url: str, problem: str) -> None:
    with pytest.raises(RosterError) as err:
        MemberInfo.from_dict(member_dict(url=url))
    assert not isinstance(err.value, CapacityError)
    message = str(err.value)
    assert message.startswith(f"member house: URL {url!r} {problem}")
    assert "use http://HOST[:PORT] or https://HOST[:PORT]" in message


@pytest.mark.parametrize("url", ["http://127.0.0.1:8731", "https://hub.example",
                                 "http://[::1]:8731/", "https://hub.lan:443/"])
def test_plain_member_urls_are_accepted(url: str) -> None:
    assert MemberInfo.from_dict(member_dict(url=url)).url == url


def test_capacity_history_keeps_earlier_rounds_on_their_capacity() -> None:
    member = MemberInfo.from_dict(member_dict())
    assert "earlier_capacities" not in member.to_dict()  # old rosters keep their JSON
    changed = member.with_capacity(2.0, since=100.0).with_capacity(0.5, since=200.0)
    assert changed.capacity == 0.5
    assert [changed.capacity_at(t) for t in (0.0, 99.9, 100.0, 199.9, 200.0, 1e9)] == [
        1.0, 1.0, 2.0, 2.0, 0.5, 0.5]
    assert MemberInfo.from_dict(changed.to_dict()) == changed
    with pytest.raises(RosterError, match="earlier capacities must be in time order"):
        MemberInfo.from_dict({**changed.to_dict(), "earlier_capacities": [[200, 1], [100, 2]]})
    with pytest.raises(CapacityError, match="capacity 50 is outside"):
        MemberInfo.from_dict({**changed.to_dict(), "earlier_capacities": [[100, 50]]})
    with pytest.raises(RosterError, match="member record is malformed"):
        MemberInfo.from_dict({**changed.to_dict(), "earlier_capacities": [[100]]})


def test_post_quantum_is_the_hybrid_suite() -> None:
    hybrid = MemberInfo.of_keys(NodeKeys.generate(SUITE_HYBRID), "a", None, 1.0, True)
    classical = MemberInfo.of_keys(NodeKeys.generate(SUITE_X25519), "b", None, 1.0, True)
    assert hybrid.post_quantum and not classical.post_quantum


def test_hpke_policy_admits_suites_and_is_written_only_when_not_the_default() -> None:
    founder = MemberInfo.from_dict(member_dict())
    strict = roster_of(founder)
    assert "hpke_policy" not in strict.to_dict()
    assert Roster.from_dict(strict.to_dict()).hpke_policy == HPKE_POLICY_HYBRID
    assert strict.admits_suite(SUITE_HYBRID) and not strict.admits_suite(SUITE_X25519)
    lenient = roster_of(founder, policy=HPKE_POLICY_ANY)
    assert lenient.to_dict()["hpke_policy"] == "any"
    assert Roster.from_dict(lenient.to_dict()) == lenient
    assert lenient.admits_suite(SUITE_HYBRID) and lenient.admits_suite(SUITE_X25519)
    with pytest.raises(RosterError, match="unknown HPKE policy 'none'"):
        Roster.from_dict({**strict.to_dict(), "hpke_policy": "none"})


def test_a_roster_signed_before_the_policy_existed_still_verifies() -> None:
    founder = MemberInfo.of_keys(KEYS, "house", "http://127.0.0.1:1", 1.0, False)
    old = roster_of(replace(founder, joined_at=1000.0)).to_dict()
    assert set(old) == {"federation", "name", "version", "issued_at", "founder", "members",
                        "tasks"}  # exactly the fields of the first version
    wire = {"roster": old, "sig": b64url_encode(KEYS.sign(ROSTER_CONTEXT + canonical_json(old)))}
    signed = verify_roster(wire, KEYS.signing_public)
    assert signed.roster.hpke_policy == HPKE_POLICY_HYBRID
    assert signed.wire() == wire
    assert verify_roster(signed.wire(), KEYS.signing_public).roster == signed.roster


def test_a_signed_roster_is_forwarded_exactly_as_signed() -> None:
    """Fields this version does not know (a newer founder's) stay under the signature."""
    founder = MemberInfo.of_keys(KEYS, "house", "http://127.0.0.1:1", 1.0, False)
    newer = {**roster_of(founder).to_dict(), "future_field": {"x": 1}}
    wire = {"roster": newer,
            "sig": b64url_encode(KEYS.sign(ROSTER_CONTEXT + canonical_json(newer)))}
    forwarded = verify_roster(wire, KEYS.signing_public).wire()
    assert forwarded["roster"]["future_field"] == {"x": 1}
    verify_roster(forwarded, KEYS.signing_public)
    assert sign_roster(KEYS, roster_of(founder)).wire()["roster"] == roster_of(founder).to_dict()


def test_with_changes_replaces_updated_members_in_place() -> None:
    founder = MemberInfo.from_dict(member_dict())
    other = MemberInfo.of_keys(NodeKeys.generate(), "other", "http://127.0.0.1:2", 1.0, False)
    roster = roster_of(founder, other)
    newer = roster.with_changes(updated=[other.with_capacity(2.0, 5000.0)], issued_at=5000.0)
    assert newer.version == roster.version + 1
    assert [m.node_id for m in newer.members] == [founder.node_id, other.node_id]
    assert newer.by_id[other.node_id].capacity == 2.0
    assert newer.by_id[other.node_id].capacity_at(4999.0) == 1.0


def test_a_capacity_change_never_moves_a_started_rounds_committee() -> None:
    members = tuple(
        replace(MemberInfo.of_keys(NodeKeys.generate(), f"hub{i}", f"http://127.0.0.1:{i + 1}",
                                   1.0, False), joined_at=0.0)
        for i in range(8)
    )
    spec = TaskSpec.from_dict(TASK)
    roster = replace(roster_of(*members), tasks=(RosterTask(spec, 0.0, members[0].node_id),))
    for round_id in range(1, 40):
        change_at = round_id * spec.period_s + spec.period_s / 2  # mid-round
        before = [m.node_id for m in roster.committee("temp", round_id)]
        # Every seat holder weakened, everyone else strengthened, half-way through the round.
        updated = [m.with_capacity(MIN_CAPACITY if m.node_id in before else MAX_CAPACITY,
                                   change_at) for m in members]
        after = roster.with_changes(updated=updated, issued_at=change_at)
        assert [m.node_id for m in after.committee("temp", round_id)] == before
