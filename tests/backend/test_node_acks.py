"""A committee member's ack counts only for the delivery it was given for.

The ack names the household and, per item, task, round and the ciphertext's
SHA-256; the household accepts exactly its own delivery, so an ack replayed by
a relay (of another household, round or ciphertext) leaves the share pending.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from typing import Any

import pytest

from mpc_backend.crypto import NodeKeys, b64url_decode, sign_envelope
from mpc_backend.crypto.channel import check_ack_mac
from mpc_backend.node.household import ack_problem
from mpc_backend.node.roster import MemberInfo
from tests.backend.conftest import PERIOD, FakeClock, LiveNode

FED = "f" * 32
NOW = 1_800_000_000.0
CT = b"sealed share"


def ack(signer: NodeKeys, household: str, items: list[list[Any]], now: float = NOW,
        federation: str = FED) -> dict[str, Any]:
    return {"ack": sign_envelope(signer, "shares-ack", federation,
                                 {"household": household, "items": items, "duplicate": False},
                                 now=now)}


@pytest.fixture
def parties() -> tuple[NodeKeys, MemberInfo, NodeKeys]:
    member_keys = NodeKeys.generate()
    member = MemberInfo.of_keys(member_keys, "member", "http://127.0.0.1:9", 1.0, False)
    return member_keys, member, NodeKeys.generate()


def test_only_an_ack_of_exactly_this_delivery_counts(
    parties: tuple[NodeKeys, MemberInfo, NodeKeys],
) -> None:
    member_keys, member, household = parties
    me = household.node_id
    sent = [("temp", 7, CT)]
    digest = hashlib.sha256(CT).hexdigest()
    other_digest = hashlib.sha256(b"another ciphertext").hexdigest()

    def problem(answer: dict[str, Any]) -> str | None:
        return ack_problem(answer, member, FED, me, sent, NOW)

    assert problem(ack(member_keys, me, [["temp", 7, digest]])) is None
    refused = {
        "another household": ack(member_keys, NodeKeys.generate().node_id,
                                 [["temp", 7, digest]]),
        "another ciphertext": ack(member_keys, me, [["temp", 7, other_digest]]),
        "another round": ack(member_keys, me, [["temp", 6, digest]]),
        "another task": ack(member_keys, me, [["humidity", 7, digest]]),
        "an extra item": ack(member_keys, me, [["temp", 7, digest], ["temp", 8, digest]]),
        "no items": ack(member_keys, me, []),
        "the old, unbound form": ack(member_keys, me, [["temp", 7]]),
        "another member's signature": ack(NodeKeys.generate(), me, [["temp", 7, digest]]),
        "another federation": ack(member_keys, me, [["temp", 7, digest]], federation="e" * 32),
        "a stale ack": ack(member_keys, me, [["temp", 7, digest]], now=NOW - 3600),
        "no ack at all": {"status": "ok"},
    }
    for what, answer in refused.items():
        assert problem(answer) is not None, what
    assert "not from this household" in problem(refused["another household"])  # type: ignore[operator]
    assert "another task, round or ciphertext" in problem(refused["another round"])  # type: ignore[operator]


async def test_a_members_ack_names_the_household_and_the_ciphertext(
    trio: list[LiveNode], clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    household = trio[0]
    acks = capture_acks(trio, monkeypatch)
    # The first reading goes with HPKE and signed acks while channels are offered; the
    # second over the channels, with MAC'd acks.
    await household.node.household.contribute("temp", 20.0)
    signed = [(member_id, answer) for member_id, answer in acks]
    for _ in range(100):
        if not household.node.channels._offering:
            break
        await asyncio.sleep(0.02)
    acks.clear()
    clock.advance(PERIOD)
    await household.node.household.contribute("temp", 21.0)
    round_id = int(clock() // PERIOD)
    # (Its own seat is delivered in-process, past the HTTP handlers recorded here.)
    assert len(signed) == 2 and all("mac" not in answer and answer["ack"]["sender"] == member_id
                                    for member_id, answer in signed)
    deliveries = {d.member: d for d in
                  await household.node.ctx.storage.deliveries("temp", round_id)}
    assert acks and all(d.acked for d in deliveries.values())
    assert len(acks) == 2
    for member_id, answer in acks:
        ciphertext = deliveries[member_id].ciphertext
        channel, _ = await household.node.channels.by_id(  # type: ignore[misc]
            member_id, ciphertext[:16].hex())
        body = answer["ack"]
        assert check_ack_mac(channel, body, b64url_decode(answer["mac"]))
        assert body["household"] == household.node_id
        assert body["items"] == [["temp", round_id,
                                  hashlib.sha256(ciphertext).hexdigest()]]


def capture_acks(
    trio: list[LiveNode], monkeypatch: pytest.MonkeyPatch
) -> list[tuple[str, dict[str, Any]]]:
    """Record every (member, answer) the members' share handlers give over HTTP."""
    seen: list[tuple[str, dict[str, Any]]] = []
    for live in trio:
        real = live.node.ingest.handle_shares

        async def record(envelope: Any, remote: str | None, real: Any = real,
                         live: LiveNode = live, **preauth: Any) -> dict[str, Any]:
            answer = await real(envelope, remote, **preauth)
            seen.append((live.node_id, answer))
            return answer

        monkeypatch.setattr(live.node.ingest, "handle_shares", record)
    return seen


@pytest.mark.parametrize("replayed", ["another household's", "an earlier round's"])
async def test_a_replayed_ack_leaves_the_share_pending_until_really_acknowledged(
    trio: list[LiveNode], clock: FakeClock, monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture, replayed: str,
) -> None:
    caplog.set_level(logging.WARNING)
    household, other, member = trio
    acks = capture_acks(trio, monkeypatch)
    # An honest delivery first, whose ack a relay keeps.
    earlier = other if replayed == "another household's" else household
    await earlier.node.household.contribute("temp", 19.0)
    kept = next(answer for member_id, answer in acks if member_id == member.node_id)
    if replayed == "an earlier round's":
        clock.advance(PERIOD)
    round_id = int(clock() // PERIOD)
    real = member.node.ingest.handle_shares
    replays: list[int] = []

    async def relay(envelope: Any, remote: str | None, **preauth: Any) -> dict[str, Any]:
        replays.append(1)
        return kept  # the share never reaches the member

    monkeypatch.setattr(member.node.ingest, "handle_shares", relay)
    answer = await household.node.household.contribute("temp", 22.0)
    assert answer["acknowledged_by"] == 2 and replays
    assert f"ignored an acknowledgement from {member.node.ctx.config.name}" in caplog.text
    pending = [d.member for d in await household.node.ctx.storage.deliveries("temp", round_id)
               if not d.acked]
    assert pending == [member.node_id]
    # The outbox keeps retrying; once shares reach the member again, the delivery completes.
    tried = len(replays)
    for _ in range(50):
        if len(replays) > tried:
            break
        await asyncio.sleep(0.1)
    assert len(replays) > tried, "the outbox retried the pending share"
    monkeypatch.setattr(member.node.ingest, "handle_shares", real)
    for _ in range(50):
        deliveries = await household.node.ctx.storage.deliveries("temp", round_id)
        if all(d.acked for d in deliveries):
            break
        await asyncio.sleep(0.1)
    assert all(d.acked for d in deliveries)
    again = await household.node.household.contribute("temp", 22.0)
    assert again["acknowledged_by"] == 3 and again["duplicate"] is True
