"""One upload per household: a committee member forwards the others' shares in bulk.

The pure decisions (who forwards, what a forward list and a batch answer may hold), then
live nodes on loopback HTTP: a household's round reaches every member through one upload,
each member acks it itself, and a member answers each entry of a batch alone.
"""

from __future__ import annotations

import asyncio
import collections
import json
import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from mpc_backend.arith import FieldRNG
from mpc_backend.crypto import b64url_decode, b64url_encode, sign_envelope
from mpc_backend.crypto.envelope import request_envelope
from mpc_backend.node.errors import BadRequest
from mpc_backend.node.forwarding import (
    BATCH_MAX,
    BATCH_PATH,
    FORWARD_TEXT,
    MAX_FORWARDS,
    Forward,
    batch_answers,
    choose_forwarder,
    forward_targets,
    parse_forwards,
)
from mpc_backend.node.household import ack_problem, forward_of, seal_report, shares_envelope
from mpc_backend.node.peers import SENDER_HEADER, PeerRejected, request_headers
from tests.backend.conftest import PERIOD, TASK, FakeClock, LiveNode, federation_of

MEMBERS = [secrets.token_hex(16) for _ in range(3)]
HOUSEHOLD = secrets.token_hex(16)


def test_each_household_uploads_to_one_member_spread_over_the_committee() -> None:
    picks = collections.Counter(choose_forwarder(secrets.token_hex(16), "temp", 7, MEMBERS)
                                for _ in range(3000))
    assert set(picks) == set(MEMBERS)
    assert all(800 <= count <= 1200 for count in picks.values()), picks
    # The same member for the same household and round, in whatever order it lists them.
    assert choose_forwarder(HOUSEHOLD, "temp", 7, MEMBERS) == choose_forwarder(
        HOUSEHOLD, "temp", 7, MEMBERS[::-1])
    rounds = {choose_forwarder(HOUSEHOLD, "temp", r, MEMBERS) for r in range(40)}
    assert len(rounds) > 1, "the choice changes with the round"


def _entry(**change: Any) -> dict[str, Any]:
    entry = Forward(MEMBERS[1], {SENDER_HEADER: HOUSEHOLD}, b64url_encode(b"{}")).wire()
    entry.update(change)
    return entry


@pytest.mark.parametrize(("value", "field", "message"), [
    ({}, "body.forward", "must be a list"),
    ([], "body.forward", "must be a list"),
    ([_entry()] * (MAX_FORWARDS + 1), "body.forward", "must be a list"),
    (["x"], "body.forward[0]", "must be an object"),
    ([_entry(to=MEMBERS[0])], "body.forward[0].to", "another member"),
    ([_entry(to=7)], "body.forward[0].to", "another member"),
    ([_entry(), _entry()], "body.forward[1].to", "one forward per member"),
    ([_entry(headers={SENDER_HEADER: MEMBERS[2]})], "body.forward[0].headers",
     "its own requests only"),
    ([_entry(headers={SENDER_HEADER: HOUSEHOLD, "Host": "x"})], "body.forward[0].headers",
     "not Host"),
    ([_entry(headers=[])], "body.forward[0].headers", "object of strings"),
    ([_entry(body=7)], "body.forward[0].body", "base64url string"),
    # JSON would pass these on escaped, 6 or 12 bytes a character, past a batch's bounds.
    ([_entry(body="AAAA\U0001f321")], "body.forward[0].body", "base64url string"),
    ([_entry(body="AA\nA")], "body.forward[0].body", "base64url string"),
    ([_entry(body="A" * (FORWARD_TEXT + 1))], "body.forward[0].body", "bytes at most"),
])
def test_a_forward_list_that_is_not_the_households_own_requests_is_refused(
        value: Any, field: str, message: str) -> None:
    with pytest.raises(Exception) as caught:
        parse_forwards(value, HOUSEHOLD, MEMBERS[0])
    err = caught.value
    assert getattr(err, "status", None) == 400 and err.field == field  # type: ignore[attr-defined]
    assert message in str(err)


def test_a_good_forward_list_parses_to_the_exact_text() -> None:
    # Passed on unread: the member decodes it (a bad one fails that entry alone, below).
    body = b64url_encode(secrets.token_bytes(100))
    parsed = parse_forwards([Forward(MEMBERS[2], {SENDER_HEADER: HOUSEHOLD}, body).wire()],
                            HOUSEHOLD, MEMBERS[0])
    assert parsed == [Forward(MEMBERS[2], {SENDER_HEADER: HOUSEHOLD}, body)]
    forward_targets(parsed, MEMBERS.__contains__)


def test_a_forward_to_a_member_off_the_committee_is_named() -> None:
    forwards = parse_forwards([_entry(to=MEMBERS[1]), _entry(to="f" * 32)], HOUSEHOLD,
                              MEMBERS[0])
    with pytest.raises(BadRequest, match="another member of the committee") as caught:
        forward_targets(forwards, MEMBERS.__contains__)
    assert caught.value.status == 400 and caught.value.field == "body.forward[1].to"


@pytest.mark.parametrize("answer", [
    {}, {"answers": []}, {"answers": [{"status": 200, "answer": {}}] * 3},
    {"answers": [{"status": "200", "answer": {}}] * 2},
    {"answers": [{"status": True, "answer": {}}] * 2},
    {"answers": [{"status": 200, "answer": []}] * 2}, {"answers": ["x", "y"]},
])
def test_a_batch_answer_of_another_shape_counts_as_none(answer: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="answer"):
        batch_answers(answer, 2)
    assert batch_answers({"answers": [{"status": 409, "answer": {"e": 1}}]}, 1) == [
        (409, {"e": 1})]


def record_deliveries(trio: list[LiveNode], monkeypatch: pytest.MonkeyPatch
                      ) -> list[tuple[str, str | None, bool]]:
    """Per share request a member's ingest takes over HTTP: (member, the member that
    forwarded it or None, whether it carried forwards)."""
    seen: list[tuple[str, str | None, bool]] = []
    for live in trio:
        real = live.node.ingest.handle_shares

        async def record(envelope: Any, remote: str | None, real: Any = real,
                         live: LiveNode = live, preauth: Any = None) -> dict[str, Any]:
            if preauth is not None:
                seen.append((live.node_id, preauth.forwarded_by,
                             "forward" in envelope.get("body", {})))
            return await real(envelope, remote, preauth)

        monkeypatch.setattr(live.node.ingest, "handle_shares", record)
    return seen


async def test_a_households_round_reaches_every_member_in_one_upload(
    trio: list[LiveNode], clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    household = trio[0]
    seen = record_deliveries(trio, monkeypatch)
    # Signed (channels still being offered), then over the channels.
    for value in (20.0, 21.0):
        seen.clear()
        answer = await household.node.household.contribute("temp", value)
        assert answer["acknowledged_by"] == 3, answer
        round_id = int(clock() // PERIOD)
        others = [live.node_id for live in trio[1:]]
        head = choose_forwarder(household.node_id, "temp", round_id, others)
        (tail,) = set(others) - {head}
        # One upload to the chosen member, which passed the other's on; nothing direct.
        assert sorted(seen, key=str) == sorted([(head, None, True), (tail, head, False)],
                                               key=str), seen
        deliveries = await household.node.ctx.storage.deliveries("temp", round_id)
        assert all(d.acked for d in deliveries)
        for _ in range(100):
            if not household.node.channels._offering:
                break
            await asyncio.sleep(0.02)
        clock.advance(PERIOD)
    forwarders = [live.node.forwarder.counters() for live in trio]
    assert sum(c["forwarded"] for c in forwarders) == 2
    assert sum(c["failed"] for c in forwarders) == 0


async def test_a_member_answers_each_entry_of_a_batch_alone(trio: list[LiveNode],
                                                            clock: FakeClock) -> None:
    household, forwarder, member = trio
    ctx = household.node.ctx
    round_id = int(clock() // PERIOD)
    committee = ctx.roster.committee("temp", round_id)
    seat = [m.node_id for m in committee].index(member.node_id)
    sealed = seal_report(ctx.keys, ctx.federation_id, ctx.roster.task("temp").spec, round_id,
                         committee, 21.5, FieldRNG())[seat]
    items = [("temp", round_id, sealed)]
    good = forward_of(ctx.keys, ctx.federation_id, member.node_id, items, None, clock())
    other = forward_of(ctx.keys, ctx.federation_id, member.node_id, items, None, clock())
    tampered = Forward(other.to, other.headers, b64url_encode(
        b64url_decode(other.body).replace(b'"shares"', b'"shareS"')))
    fresh = forward_of(ctx.keys, ctx.federation_id, member.node_id, items, None, clock())
    entries = [good, tampered, good, fresh]
    fctx = forwarder.node.ctx
    target = fctx.roster.member(member.node_id)
    assert target is not None

    def batch(entries: list[Forward]) -> Any:
        return lambda: request_envelope(fctx.node_id, "shares-batch", fctx.federation_id, {
            "requests": [{"headers": e.headers, "body": e.wire()["body"]} for e in entries]},
            now=clock())

    answer = await fctx.peers.post(target, BATCH_PATH, batch(entries))
    results = batch_answers(answer, len(entries))
    assert [status for status, _ in results] == [200, 403, 409, 200]
    assert ack_problem(results[0][1], target, ctx.federation_id, household.node_id, items,
                       clock()) is None
    assert results[1][1]["error"]["code"] == "auth_failed"
    assert results[2][1]["error"]["code"] == "replay"
    assert results[3][1]["ack"]["body"]["duplicate"] is True  # one share kept, acked again
    assert len(await member.node.ctx.storage.load_shares("temp", round_id,
                                                         [household.node_id])) == 1
    # A forwarded request may not ask for forwarding in turn (re-signed by the household:
    # only the nesting is wrong).
    body = json.loads(b64url_decode(good.body))["body"]
    nested_body = json.dumps(sign_envelope(ctx.keys, "shares", ctx.federation_id,
                                           {**body, "forward": [good.wire()]},
                                           now=clock())).encode()
    nested = Forward(member.node_id, request_headers(ctx.keys, "/peer/v1/shares", nested_body,
                                                     clock()), b64url_encode(nested_body))
    (status, refusal), = batch_answers(
        await fctx.peers.post(target, BATCH_PATH, batch([nested])), 1)
    assert status == 400 and refusal["error"]["field"] == "body.forward", refusal
    # A body that does not decode is the household's doing: its entry fails alone, the
    # next in the batch is served.
    junk = forward_of(ctx.keys, ctx.federation_id, member.node_id, items, None, clock())
    again = forward_of(ctx.keys, ctx.federation_id, member.node_id, items, None, clock())
    (status, refusal), (second, _) = batch_answers(await fctx.peers.post(
        target, BATCH_PATH, batch([Forward(junk.to, junk.headers, "AAAAA"), again])), 2)
    assert (status, second) == (400, 200), refusal
    assert refusal["error"]["field"] == "body.requests[0].body"
    assert "not base64url" in refusal["error"]["message"]
    # What the forwarder checks before passing a request on is its own to get right: a
    # batch where that is wrong is refused whole.
    for wrong, message in [
            ({"headers": []}, "object of strings"),
            ({"headers": {**fresh.headers, "Host": "x"}}, "not Host"),
            ({"body": 7}, "base64url string"),
            ({"body": "AA==="}, "base64url string"),
            ({"body": "A" * (FORWARD_TEXT + 1)}, "bytes at most")]:
        def bad(wrong: dict[str, Any] = wrong) -> dict[str, Any]:
            return request_envelope(fctx.node_id, "shares-batch", fctx.federation_id, {
                "requests": [{"headers": fresh.headers, "body": fresh.body, **wrong}]},
                now=clock())
        with pytest.raises(PeerRejected, match=message) as caught:
            await fctx.peers.post(target, BATCH_PATH, bad)
        assert caught.value.status == 400
    # The batch itself over its limit: refused whole, saying so.
    with pytest.raises(PeerRejected, match="1-64 share requests"):
        await fctx.peers.post(target, BATCH_PATH, batch([fresh] * (BATCH_MAX + 1)))


async def test_every_forwarded_entry_gets_an_answer_whatever_befalls_its_batch(
    trio: list[LiveNode], monkeypatch: pytest.MonkeyPatch
) -> None:
    forwarder, member = trio[1].node, trio[2]
    entry = Forward(member.node_id, {SENDER_HEADER: trio[0].node_id}, b"{}")

    async def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("a bug in the transport")

    monkeypatch.setattr(forwarder.ctx.peers, "post", broken)
    (answer,) = await forwarder.forwarder.forward([entry])
    assert answer["status"] == 502 and answer["answer"]["error"]["code"] == "forward_failed"
    assert forwarder.forwarder.counters()["failed"] == 1
    # Queued and not yet sent when the node stops: answered, not left waiting.
    pending = asyncio.ensure_future(forwarder.forwarder.forward([entry]))
    await asyncio.sleep(0)
    await forwarder.forwarder.close()
    (answer,) = await asyncio.wait_for(pending, 1)
    assert answer["status"] == 502 and "stopping" in answer["answer"]["error"]["message"]


@pytest.fixture
async def quartet(tmp_path: Path, clock: FakeClock) -> AsyncIterator[list[LiveNode]]:
    async for nodes in federation_of(4, tmp_path, clock):
        yield nodes


async def test_a_household_may_forward_only_to_its_rounds_committee(
        quartet: list[LiveNode], clock: FakeClock) -> None:
    """Four members, a committee of three: a forward to the fourth is refused (a forwarder
    posts to no member a household names at will), before anything is stored."""
    nodes = quartet
    ctx = nodes[0].node.ctx
    round_id = int(clock() // PERIOD)
    committee = ctx.roster.committee("temp", round_id)
    ids = [m.node_id for m in committee]
    household = next(live for live in nodes if live.node_id in ids)
    head, other = (m for m in committee if m.node_id != household.node_id)
    (outsider,) = {live.node_id for live in nodes} - set(ids)
    hctx = household.node.ctx
    sealed = seal_report(hctx.keys, hctx.federation_id, hctx.roster.task("temp").spec,
                         round_id, committee, 21.5, FieldRNG())
    items = [("temp", round_id, sealed[ids.index(head.node_id)])]
    forwards = [forward_of(hctx.keys, hctx.federation_id, to, items, None, clock())
                for to in (other.node_id, outsider)]

    async def upload(forward: list[Forward]) -> dict[str, Any]:
        return await hctx.peers.post(head, "/peer/v1/shares", lambda: shares_envelope(
            hctx.keys, hctx.federation_id, items, now=clock(), forward=forward))

    with pytest.raises(PeerRejected, match="committee") as caught:
        await upload(forwards)
    assert caught.value.status == 400
    head_node = next(live for live in nodes if live.node_id == head.node_id)
    assert await head_node.node.ctx.storage.held_senders("temp", round_id) == []
    # Without the outsider, the same upload is taken and passed on.
    answer = await upload(forwards[:1])
    assert [f["to"] for f in answer["forwarded"]] == [other.node_id]
    assert await head_node.node.ctx.storage.held_senders("temp", round_id) == [
        household.node_id]


async def test_a_forward_must_serve_every_item_of_the_upload(
        quartet: list[LiveNode], clock: FakeClock) -> None:
    """Two tasks whose committees differ in the round: a forward to a member on one of them
    only is refused (its share of the other task would have nowhere to go), one to a member
    on both is taken."""
    nodes = quartet
    await nodes[1].node.federation.propose_task({**TASK, "task_id": "temp2"})
    for live in nodes:
        for _ in range(100):
            if live.node.ctx.roster.task("temp2") is not None:
                break
            await asyncio.sleep(0.02)
        assert live.node.ctx.roster.task("temp2") is not None, "the task reached every member"
    roster = nodes[0].node.ctx.roster

    def seats(task: str, round_id: int) -> list[str]:
        return [m.node_id for m in roster.committee(task, round_id)]

    round_id = int(clock() // PERIOD) + 1
    while set(seats("temp", round_id)) == set(seats("temp2", round_id)):
        round_id += 1
    clock.now = round_id * PERIOD + 1.0
    both = set(seats("temp", round_id)) & set(seats("temp2", round_id))
    head_id, shared = sorted(both)
    (only_temp,) = set(seats("temp", round_id)) - both
    (only_temp2,) = set(seats("temp2", round_id)) - both
    household = next(live for live in nodes if live.node_id == only_temp2)
    hctx = household.node.ctx
    committees = {t: roster.committee(t, round_id) for t in ("temp", "temp2")}
    sealed = {t: seal_report(hctx.keys, hctx.federation_id, roster.task(t).spec, round_id,
                             committees[t], 21.5, FieldRNG()) for t in committees}

    def items_for(member: str) -> list[tuple[str, int, bytes]]:
        return [(t, round_id, sealed[t][seats(t, round_id).index(member)])
                for t in committees if member in seats(t, round_id)]

    head = roster.by_id[head_id]
    forwards = [forward_of(hctx.keys, hctx.federation_id, to, items_for(to), None, clock())
                for to in (shared, only_temp)]

    async def upload(forward: list[Forward]) -> dict[str, Any]:
        return await hctx.peers.post(head, "/peer/v1/shares", lambda: shares_envelope(
            hctx.keys, hctx.federation_id, items_for(head_id), now=clock(), forward=forward))

    with pytest.raises(PeerRejected, match="committee") as caught:
        await upload(forwards)
    assert caught.value.status == 400
    head_node = next(live for live in nodes if live.node_id == head_id).node
    for task in committees:
        assert await head_node.ctx.storage.held_senders(task, round_id) == []
    answer = await upload(forwards[:1])
    assert [(f["to"], f["status"]) for f in answer["forwarded"]] == [(shared, 200)]
    shared_node = next(live for live in nodes if live.node_id == shared).node
    for task in committees:
        assert await head_node.ctx.storage.held_senders(task, round_id) == [only_temp2]
        assert await shared_node.ctx.storage.held_senders(task, round_id) == [only_temp2]


async def test_a_forward_list_of_the_wrong_form_is_refused_before_any_share_is_opened(
        trio: list[LiveNode], clock: FakeClock, monkeypatch: pytest.MonkeyPatch) -> None:
    household, head = trio[0], trio[1]
    hctx = household.node.ctx
    round_id = int(clock() // PERIOD)
    committee = hctx.roster.committee("temp", round_id)
    sealed = seal_report(hctx.keys, hctx.federation_id, hctx.roster.task("temp").spec,
                         round_id, committee, 21.5, FieldRNG())
    item = {"task": "temp", "round": round_id,
            "ct": b64url_encode(sealed[[m.node_id for m in committee].index(head.node_id)])}
    opened: list[Any] = []
    real = head.node.ingest._open_item

    def counting(*args: Any) -> Any:
        opened.append(args)
        return real(*args)

    monkeypatch.setattr(head.node.ingest, "_open_item", counting)
    member = hctx.roster.member(head.node_id)
    for forward, says in (({"to": trio[2].node_id}, "forward must be a list"),
                          ([{"to": trio[2].node_id, "headers": []}], "headers must be")):
        body = {"items": [item], "forward": forward}
        with pytest.raises(PeerRejected, match=says) as caught:
            await hctx.peers.post(member, "/peer/v1/shares", lambda b=body: sign_envelope(
                hctx.keys, "shares", hctx.federation_id, b, now=clock()))
        assert caught.value.status == 400
    assert opened == []
    # The same item with a well-formed list is opened (the patch counts what it should).
    await hctx.peers.post(member, "/peer/v1/shares", lambda: sign_envelope(
        hctx.keys, "shares", hctx.federation_id, {"items": [item]}, now=clock()))
    assert len(opened) == 1
