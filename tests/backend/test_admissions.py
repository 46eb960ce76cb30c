"""Admissions: households that only contribute join by a founder-signed record, not a roster.

Pure functions first (signing, checking, the no-gap rule), then in-process nodes
on loopback: the founder answers a household's join with its admission and no new
roster version, the members that compute learn it by push or, when a push was
missed, by catching up when the household first calls, and accept its shares.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from mpc_backend.crypto import NodeKeys, parse_invite, sign_envelope
from mpc_backend.node import directory as directory_module
from mpc_backend.node import federation as federation_module
from mpc_backend.node.admission import (
    AdmissionError,
    continuing,
    sign_admission,
    verify_admission,
)
from mpc_backend.node.errors import Conflict, Forbidden, TooManyRequests
from mpc_backend.node.roster import MemberInfo
from mpc_backend.storage import SQLiteStorage
from tests.backend.conftest import FakeClock, LiveNode, start_node, stop_node
from tests.backend.nodes import wait_for
from tests.backend.test_membership_policy import join_request

FED = "f" * 32


def household(name: str = "house9", keys: NodeKeys | None = None) -> MemberInfo:
    return MemberInfo.of_keys(keys or NodeKeys.generate(), name, None, 1.0, True)


# -- pure functions ------------------------------------------------------------------------

def test_an_admission_verifies_under_the_founders_key_only() -> None:
    founder, member = NodeKeys.generate(), household()
    wire = sign_admission(founder, FED, 1, member, 1000.0).wire()
    admission = verify_admission(wire, founder.signing_public, FED)
    assert (admission.seq, admission.member, admission.issued_at) == (1, member, 1000.0)
    assert admission.wire() == wire
    mallory = NodeKeys.generate()
    forged = sign_admission(mallory, FED, 1, member, 1000.0).wire()  # a member signs its own
    with pytest.raises(AdmissionError, match="not signed by the founder"):
        verify_admission(forged, founder.signing_public, FED)


@pytest.mark.parametrize("change", [
    {"seq": 2}, {"issued_at": 1.0}, {"member": {"name": "someone else"}},
    {"member": {"capacity": 2.0}}, {"member": {"url": "http://127.0.0.1:9"}},
])
def test_a_tampered_admission_is_refused(change: dict[str, Any]) -> None:
    founder = NodeKeys.generate()
    wire = sign_admission(founder, FED, 1, household(), 1000.0).wire()
    data = wire["admission"]
    for key, value in change.items():
        data[key] = {**data[key], **value} if isinstance(value, dict) else value
    with pytest.raises(AdmissionError, match="not signed by the founder"):
        verify_admission(wire, founder.signing_public, FED)


def test_an_admission_for_another_federation_is_refused() -> None:
    founder = NodeKeys.generate()
    wire = sign_admission(founder, "e" * 32, 1, household(), 1000.0).wire()
    with pytest.raises(AdmissionError, match="another federation"):
        verify_admission(wire, founder.signing_public, FED)


@pytest.mark.parametrize("wire", [
    None, [], {"admission": "x"}, {"admission": {"seq": 0, "federation": FED}, "sig": ""},
    {"admission": {"seq": True, "federation": FED}, "sig": ""},
    {"admission": {"seq": 1, "federation": FED}, "sig": "!!"},
])
def test_malformed_admissions_are_refused(wire: Any) -> None:
    with pytest.raises(AdmissionError):
        verify_admission(wire, NodeKeys.generate().signing_public, FED)


def test_only_households_that_only_contribute_are_admitted() -> None:
    founder = NodeKeys.generate()
    computing = replace(household(), input_only=False, url="http://127.0.0.1:9")
    wire = sign_admission(founder, FED, 1, computing, 1000.0).wire()
    with pytest.raises(AdmissionError, match="signed roster"):
        verify_admission(wire, founder.signing_public, FED)


@pytest.mark.parametrize(("seqs", "last", "expected"), [
    ([1, 2, 3], 0, [1, 2, 3]),
    ([3, 1, 2], 0, [1, 2, 3]),  # order of arrival does not matter
    ([1, 2, 3, 4], 2, [3, 4]),  # already held: dropped
    ([4, 5], 2, []),  # a gap right away: nothing
    ([3, 4, 6, 7], 2, [3, 4]),  # up to the gap
    ([3, 3, 4], 2, [3, 4]),  # a repeat counts once
    ([], 5, []),
])
def test_a_batch_continues_the_log_only_up_to_its_first_gap(
    seqs: list[int], last: int, expected: list[int]
) -> None:
    assert continuing(seqs, last) == expected


# -- the directory on storage ----------------------------------------------------------------

async def test_the_directory_adopts_in_order_and_answers_where_a_gap_starts(
    tmp_path: Path,
) -> None:
    founder = NodeKeys.generate()
    wires = [sign_admission(founder, FED, i, household(f"h{i}"), 1000.0).wire()
             for i in range(1, 6)]
    store = SQLiteStorage(tmp_path)
    await store.open()
    try:
        book = directory_module.AdmissionDirectory(store)
        assert await book.adopt(wires[2:4], founder.signing_public, FED) == 0  # gap: 1, 2
        assert await store.last_admission_seq() == 0
        assert await book.adopt([wires[1], wires[0]], founder.signing_public, FED) == 2
        assert await book.adopt(wires, founder.signing_public, FED) == 5
        forged = sign_admission(NodeKeys.generate(), FED, 6, household(), 1000.0).wire()
        with pytest.raises(AdmissionError):
            await book.adopt([forged], founder.signing_public, FED)
        assert book.last_seq == 5 and await store.last_admission_seq() == 5
        member = verify_admission(wires[3], founder.signing_public, FED).member
        assert book.get(member.node_id) == member
        # Another process (a worker over the same database) follows the stored log: all of
        # it at first, then only what was stored since.
        fresh = directory_module.AdmissionDirectory(store)
        assert fresh.get(member.node_id) is None
        await fresh.follow()
        assert (fresh.last_seq, len(fresh)) == (5, 5) and fresh.get(member.node_id) == member
        later = sign_admission(founder, FED, 6, household(), 1000.0).wire()
        assert await book.adopt([later], founder.signing_public, FED) == 6
        await fresh.follow()
        assert (fresh.last_seq, len(fresh)) == (6, 6)
    finally:
        await store.close()


async def test_catch_up_is_single_flight_and_rate_limited(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    book = directory_module.AdmissionDirectory(SQLiteStorage(tmp_path))
    fetches = 0

    async def fetch() -> None:
        nonlocal fetches
        fetches += 1
        await asyncio.sleep(0.05)

    await asyncio.gather(*(book.catch_up(fetch) for _ in range(50)))
    assert fetches == 1  # the others waited for the one in flight
    await asyncio.gather(*(book.catch_up(fetch) for _ in range(50)))
    assert fetches == 1  # and within the interval none starts again
    monkeypatch.setattr(directory_module, "CATCH_UP_EVERY_S", 0.0)
    await book.catch_up(fetch)
    assert fetches == 2 and book.catch_ups == 2


# -- in-process nodes -----------------------------------------------------------------------

async def join_household(trio: list[LiveNode], tmp_path: Path, clock: FakeClock,
                         name: str) -> LiveNode:
    live = await start_node(tmp_path / name, name, clock, input_only=True)
    invite = await trio[0].node.federation.invite(600)
    await live.node.federation.join(invite["token"])
    return live


async def test_a_household_joins_by_admission_and_its_shares_are_accepted(
    trio: list[LiveNode], tmp_path: Path, clock: FakeClock
) -> None:
    founder = trio[0].node
    version = founder.ctx.roster.version
    live = await join_household(trio, tmp_path, clock, "house9")
    try:
        me = live.node_id
        assert founder.ctx.roster.version == version, "no roster version for a household"
        assert live.node.ctx.roster.member(me) is None
        assert live.node.ctx.member(me) is not None
        for member in trio[1:]:  # pushed to the members that compute
            await asyncio.to_thread(wait_for, lambda m=member: m.node.ctx.member(me), 5, 0.02,
                                    f"the admission on {member.node.ctx.config.name}")
            assert await member.node.ctx.storage.last_admission_seq() == 1
        status = await live.node.status()
        assert status["federation"]["households"] == 1
        assert [m["name"] for m in status["members"]] == ["house0", "house1", "house2",
                                                           "house9"]
        # The founder lists its households only when asked (a long list on a city's founder).
        founder_view = await founder.status()
        assert founder_view["federation"]["households"] == 1
        assert [m["name"] for m in founder_view["members"]] == ["house0", "house1", "house2"]
        founder_view = await founder.status(households=True)
        assert [m["name"] for m in founder_view["members"]][-1] == "house9"
        answer = await live.node.household.contribute("temp", 21.5)
        assert answer["status"] == "accepted" and answer["acknowledged_by"] == 3
        # Restarted, the household still knows it is admitted.
        await stop_node(live)
        live = await start_node(tmp_path / "house9", "house9", clock, input_only=True)
        assert live.node.ctx.member(me) is not None
        assert (await live.node.status())["federation"]["households"] == 1
    finally:
        await stop_node(live)


async def test_a_member_that_missed_the_push_catches_up_when_the_household_calls(
    trio: list[LiveNode], tmp_path: Path, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    founder = trio[0].node

    async def lost(*_: Any) -> bool:  # every admission push is lost on the way
        return True

    monkeypatch.setattr(founder.federation, "_push_admissions", lost)
    live = await join_household(trio, tmp_path, clock, "house9")
    try:
        me = live.node_id
        assert all(m.node.ctx.member(me) is None for m in trio[1:])
        answer = await live.node.household.contribute("temp", 21.5)
        assert answer["acknowledged_by"] == 3, "each member fetched the admission and accepted"
        for member in trio[1:]:
            assert member.node.ctx.member(me) is not None
            assert member.node.ctx.directory.catch_ups == 1
    finally:
        await stop_node(live)


async def test_a_retried_join_gets_the_same_admission_and_one_node_has_one_membership(
    trio: list[LiveNode], clock: FakeClock
) -> None:
    founder = trio[0]
    keys = NodeKeys.generate()
    secret = parse_invite((await founder.node.federation.invite(600))["token"]).secret
    first = await founder.node.federation.handle_join(
        await join_request(founder, keys, clock, secret), "test")
    again = await founder.node.federation.handle_join(
        await join_request(founder, keys, clock, secret), "test")
    assert again["admission"] == first["admission"]
    assert await founder.node.ctx.storage.last_admission_seq() == 1
    with pytest.raises(Conflict) as err:  # now as a member that computes
        await founder.node.federation.handle_join(
            await join_request(founder, keys, clock, input_only=False,
                               url="http://127.0.0.1:9"), "test")
    assert err.value.code == "already_member"


async def test_concurrent_joins_get_consecutive_seqs(
    trio: list[LiveNode], clock: FakeClock
) -> None:
    founder = trio[0]
    requests = [await join_request(founder, NodeKeys.generate(), clock) for _ in range(20)]
    answers = await asyncio.gather(*(founder.node.federation.handle_join(r, "test")
                                     for r in requests))
    assert sorted(a["admission"]["admission"]["seq"] for a in answers) == list(range(1, 21))
    records = await founder.node.ctx.storage.admissions_since(0, 100)
    assert [r.seq for r in records] == list(range(1, 21))


async def test_an_admission_storage_left_out_fails_the_join_and_leaves_no_gap(
    trio: list[LiveNode], clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    founder = trio[0]
    storage = founder.node.ctx.storage
    put = storage.put_admissions

    async def drop_last(records: Any) -> None:  # as a clash on seq or node id would
        await put(records[:-1])

    monkeypatch.setattr(storage, "put_admissions", drop_last)
    with pytest.raises(RuntimeError, match="admission log out of step with storage"):
        await founder.node.federation.handle_join(
            await join_request(founder, NodeKeys.generate(), clock), "test")
    assert founder.node.ctx.directory.last_seq == 0  # nothing issued past the stored log


async def test_admissions_pushed_by_anyone_but_the_founder_are_refused(
    trio: list[LiveNode], clock: FakeClock
) -> None:
    """Only the founder's envelope is taken as a push, and only founder-signed records."""
    member, target = trio[1].node, trio[2].node
    forged = sign_admission(member.ctx.keys, member.ctx.federation_id, 1, household(),
                            clock()).wire()
    push = sign_envelope(member.ctx.keys, "admissions", member.ctx.federation_id,
                         {"admissions": [forged]}, now=clock())
    with pytest.raises(Forbidden):
        await target.federation.handle_admissions_push(push, "test")
    # Even inside the founder's own envelope, a record it did not sign is refused.
    founder = trio[0].node
    push = sign_envelope(founder.ctx.keys, "admissions", founder.ctx.federation_id,
                         {"admissions": [forged]}, now=clock())
    with pytest.raises(Forbidden) as err:
        await target.federation.handle_admissions_push(push, "test")
    assert err.value.code == "bad_admission"
    assert await target.ctx.storage.last_admission_seq() == 0


async def test_only_members_that_compute_fetch_admissions_and_rewinds_are_limited(
    trio: list[LiveNode], clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    founder, member = trio[0].node, trio[1].node
    households = [NodeKeys.generate() for _ in range(3)]
    for keys in households:
        await founder.federation.handle_join(await join_request(trio[0], keys, clock), "test")

    def fetch(keys: NodeKeys, since: int) -> dict[str, Any]:
        return sign_envelope(keys, "admissions-fetch", founder.ctx.federation_id,
                             {"since": since}, now=clock())

    with pytest.raises(Forbidden):  # a household keeps only its own admission
        await founder.federation.handle_admissions_fetch(fetch(households[0], 0), "test")
    answer = await founder.federation.handle_admissions_fetch(fetch(member.ctx.keys, 0), "t")
    assert [w["admission"]["seq"] for w in answer["admissions"]] == [1, 2, 3]
    # Fetching on is free; going back over what was sent, once per interval.
    await founder.federation.handle_admissions_fetch(fetch(member.ctx.keys, 3), "test")
    await founder.federation.handle_admissions_fetch(fetch(member.ctx.keys, 0), "test")
    with pytest.raises(TooManyRequests):
        await founder.federation.handle_admissions_fetch(fetch(member.ctx.keys, 0), "test")
    monkeypatch.setattr(federation_module, "REWIND_EVERY_S", 0.0)  # the interval passed
    answer = await founder.federation.handle_admissions_fetch(fetch(member.ctx.keys, 1), "t")
    assert [w["admission"]["seq"] for w in answer["admissions"]] == [2, 3]


@pytest.mark.parametrize("first", ["household", "computing"])
async def test_one_node_cannot_join_as_household_and_as_member_at_once(
    trio: list[LiveNode], clock: FakeClock, first: str
) -> None:
    """Two invites, the same keys, both joins sent together: one membership."""
    founder = trio[0]
    keys = NodeKeys.generate()
    joins = {
        "household": await join_request(founder, keys, clock),
        "computing": await join_request(founder, keys, clock, input_only=False,
                                        url="http://127.0.0.1:9"),
    }
    order = [first, *(k for k in joins if k != first)]
    answers = await asyncio.gather(
        *(founder.node.federation.handle_join(joins[k], "test") for k in order),
        return_exceptions=True)
    assert not isinstance(answers[0], BaseException), answers[0]
    assert isinstance(answers[1], Conflict) and answers[1].code == "already_member"
    in_roster = founder.node.ctx.roster.member(keys.node_id) is not None
    admitted = await founder.node.ctx.storage.get_admission(keys.node_id) is not None
    assert (in_roster, admitted) == (first == "computing", first == "household")
