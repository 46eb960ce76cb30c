"""The peer API's answers to bad, forged, replayed and faulty messages, over real HTTP.

After every fault the attacked node keeps serving and the round still releases
the right statistics: nothing a bad message does touches stored data.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import logging
import sqlite3
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import aiohttp
import numpy as np
import pytest

from mpc_backend.arith import FieldRNG, shamir_share
from mpc_backend.crypto import NodeKeys, b64url_encode, seal_share, share_aad, sign_envelope
from mpc_backend.node.household import seal_report, shares_envelope
from mpc_backend.node.peers import request_headers
from mpc_backend.node.roster import sign_roster
from mpc_backend.node.wire import pack_elements
from mpc_backend.protocol import encode_report, vector_length
from mpc_backend.protocol.validity import prove, shared_length
from mpc_backend.storage.sqlite import DB_FILE_NAME
from tests.backend.conftest import PERIOD, FakeClock, LiveNode
from tests.backend.test_node_rounds import contribute_all, wait_result


def sealed_for(
    sender: LiveNode, trio: list[LiveNode], clock: FakeClock, value: float
) -> tuple[int, list[Any], list[bytes]]:
    ctx = sender.node.ctx
    spec = ctx.roster.task("temp").spec  # type: ignore[union-attr]
    round_id = int(clock() // PERIOD)
    committee = ctx.roster.committee("temp", round_id)
    sealed = seal_report(ctx.keys, ctx.federation_id, spec, round_id, committee, value,
                         FieldRNG())
    return round_id, committee, sealed


def by_id(trio: list[LiveNode], node_id: str) -> LiveNode:
    return next(live for live in trio if live.node_id == node_id)


async def post(http: aiohttp.ClientSession, live: LiveNode, path: str, body: Any,
               raw: bytes | None = None, *,
               signer: tuple[NodeKeys, Callable[[], float]] | None = None
               ) -> tuple[int, dict[str, Any]]:
    """POST to the peer API; with ``signer`` (keys, clock) the request carries its headers."""
    data = raw if raw is not None else json.dumps(body).encode()
    headers = {"Content-Type": "application/json"}
    if signer is not None:
        keys, clock = signer
        headers.update(request_headers(keys, f"/peer/v1{path}", data, clock()))
    async with http.post(f"{live.url}/peer/v1{path}", data=data, headers=headers) as resp:
        return resp.status, await resp.json()


async def test_share_faults_get_the_right_status_and_leave_data_intact(
    trio: list[LiveNode], clock: FakeClock, http: aiohttp.ClientSession,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING)
    sender = trio[0]
    ctx = sender.node.ctx
    round_id, committee, sealed = sealed_for(sender, trio, clock, 21.5)
    target = by_id(trio, committee[1].node_id)
    item = ("temp", round_id, sealed[1])
    envelope = shares_envelope(ctx.keys, ctx.federation_id, [item], now=clock())

    async def send(live: LiveNode, body: Any, raw: bytes | None = None,
                   at: Callable[[], float] = clock) -> tuple[int, Any]:
        return await post(http, live, "/shares", body, raw, signer=(ctx.keys, at))

    # A tampered ciphertext (correctly signed): 403, logged, nothing stored.
    broken = bytearray(sealed[1])
    broken[-5] ^= 0x40
    status, body = await send(target, shares_envelope(
        ctx.keys, ctx.federation_id, [("temp", round_id, bytes(broken))], now=clock()))
    assert status == 403 and body["error"]["code"] == "decryption_failed"
    assert "rejected a share from" in caplog.text

    # A share sealed for another member does not open here either.
    status, body = await send(target, shares_envelope(
        ctx.keys, ctx.federation_id, [("temp", round_id, sealed[2])], now=clock()))
    assert status == 403

    # Another's envelope (a non-member's) in this member's request: 403 and logged.
    stranger = NodeKeys.generate()
    status, body = await send(target, shares_envelope(
        stranger, ctx.federation_id, [item], now=clock()))
    assert status == 403 and "but the request carrying it is signed by" in body["error"]["message"]
    assert f"rejected shares message from {stranger.node_id}" in caplog.text

    # An envelope altered on the way: the request's signature no longer covers it, 403.
    altered = copy.deepcopy(envelope)
    altered["body"]["items"][0]["round"] = round_id + 1
    signed = request_headers(ctx.keys, "/peer/v1/shares", json.dumps(envelope).encode(),
                             clock() - 1)  # not the genuine request's signature, sent below
    async with http.post(f"{target.url}/peer/v1/shares", data=json.dumps(altered).encode(),
                         headers=signed) as resp:
        assert resp.status == 403

    # The genuine envelope: 200 with a signed ack; the same request again is a replay: 409,
    # and so is the same envelope in a request signed a second later.
    status, body = await send(target, envelope)
    assert status == 200 and body["ack"]["body"]["duplicate"] is False
    status, body = await send(target, envelope)
    assert status == 409 and "replayed request" in body["error"]["message"]
    status, body = await send(target, envelope, at=lambda: clock() + 1)
    assert status == 409 and body["error"]["code"] == "replay"
    assert "nonce already seen" in body["error"]["message"]

    # The same share in a fresh envelope is an idempotent resend; a different share is 409.
    status, body = await send(target, shares_envelope(ctx.keys, ctx.federation_id, [item],
                                                      now=clock()))
    assert status == 200 and body["ack"]["body"]["duplicate"] is True
    _, _, other = sealed_for(sender, trio, clock, 30.0)
    status, body = await send(target, shares_envelope(
        ctx.keys, ctx.federation_id, [("temp", round_id, other[1])], now=clock()))
    assert status == 409 and body["error"]["code"] == "duplicate_contribution"

    # Outside the round window: 422; unknown task: 404.
    status, body = await send(target, shares_envelope(
        ctx.keys, ctx.federation_id, [("temp", round_id - 3, sealed[1])], now=clock()))
    assert status == 422 and body["error"]["field"] == "body.items[0].round"
    status, body = await send(target, shares_envelope(
        ctx.keys, ctx.federation_id, [("nope", round_id, sealed[1])], now=clock()))
    assert status == 404 and body["error"]["field"] == "body.items[0].task"

    # Malformed and oversize bodies.
    status, body = await send(target, None, raw=b'{"type": "shares",')
    assert status == 400 and body["error"]["field"] == "body"
    bad_items = sign_envelope(ctx.keys, "shares", ctx.federation_id, {"items": "x"}, now=clock())
    status, body = await send(target, bad_items)
    assert status == 400 and body["error"]["field"] == "body.items"
    status, body = await send(target, None, raw=b"x" * (1024 * 1024 + 1))
    assert status == 413
    assert "Traceback" not in caplog.text.split("rejected")[0]

    # The attacked node still works and its stored share still counts: deliver the
    # sender's other two shares of the same sharing, the others contribute normally.
    for seat in (0, 2):
        status, _ = await send(by_id(trio, committee[seat].node_id),
                               shares_envelope(ctx.keys, ctx.federation_id,
                                               [("temp", round_id, sealed[seat])], now=clock()))
        assert status == 200
    for live, value in zip(trio[1:], [19.0, 23.0], strict=True):
        answer = await live.node.household.contribute("temp", value)
        assert answer["acknowledged_by"] == 3
    clock.advance(PERIOD + 2)
    result = await wait_result(target)
    assert result["status"] == "released"
    assert result["statistics"]["mean"] == pytest.approx(np.mean([21.5, 19.0, 23.0]), abs=0.005)


def forged_result(ctx: Any, clock: FakeClock) -> dict[str, Any]:
    """A result for the current round of "temp" ("99 contributors") whose committee
    signature is zeros; the clock then moves past the round (results are taken for ended
    rounds only)."""
    round_id = int(clock() // PERIOD)
    clock.advance(PERIOD)
    committee_ids = [m.node_id for m in ctx.roster.committee("temp", round_id)]
    doc = {"federation": ctx.federation_id, "task": "temp", "metric": "m", "unit": "",
           "round": round_id, "round_start": 0.0, "round_end": 1.0, "status": "released",
           "reason": None, "contributors": 99, "statistics": {"count": 99},
           "dp_epsilon": None, "committee": committee_ids, "coordinator": committee_ids[0],
           "released_at": clock()}
    return {"result": doc, "sigs": {committee_ids[0]: b64url_encode(b"\0" * 64)}}


async def test_forged_results_and_rosters_are_refused(
    trio: list[LiveNode], clock: FakeClock, http: aiohttp.ClientSession
) -> None:
    member = trio[1].node.ctx
    # Pushed by a member, but with a committee signature that is not that member's.
    forged = forged_result(member, clock)
    envelope = sign_envelope(member.keys, "result", member.federation_id, {"result": forged},
                             now=clock())
    as_member = (member.keys, clock)
    status, body = await post(http, trio[2], "/results", envelope, signer=as_member)
    assert status == 403 and "signature" in body["error"]["message"]

    # A roster push signed by a non-founder member.
    wire = trio[0].node.ctx.signed_roster.wire()  # type: ignore[union-attr]
    forged = sign_envelope(member.keys, "roster", member.federation_id, {"roster": wire},
                           now=clock())
    status, _ = await post(http, trio[2], "/roster", forged, signer=as_member)
    assert status == 403
    # A genuine founder signature on an older version: 409, the member keeps its roster.
    founder = trio[0].node.ctx
    older = sign_roster(founder.keys, replace(founder.roster, version=founder.roster.version - 1))
    push = sign_envelope(founder.keys, "roster", founder.federation_id,
                         {"roster": older.wire()}, now=clock())
    status, body = await post(http, trio[2], "/roster", push, signer=(founder.keys, clock))
    assert status == 409 and body["error"]["code"] == "stale_roster"
    assert trio[2].node.ctx.roster.version == founder.roster.version


async def test_join_with_a_used_or_unknown_invite_is_refused(
    trio: list[LiveNode], tmp_path: Any, clock: FakeClock
) -> None:
    from tests.backend.conftest import start_node, stop_node  # noqa: PLC0415

    founder = trio[0].node.federation
    invite = await founder.invite(600)
    newcomer = await start_node(tmp_path / "new", "newcomer", clock)
    late = await start_node(tmp_path / "late", "late", clock)
    try:
        roster = await newcomer.node.federation.join(invite["token"])
        assert roster.member(newcomer.node_id) is not None
        with pytest.raises(Exception, match="invite already used"):
            await late.node.federation.join(invite["token"])
        for _ in range(100):
            if all(live.node.ctx.roster.member(newcomer.node_id) for live in trio):
                break
            await asyncio.sleep(0.02)
        assert all(live.node.ctx.roster.member(newcomer.node_id) for live in trio)
    finally:
        await stop_node(newcomer)
        await stop_node(late)


async def test_large_bodies_are_read_whole(
    trio: list[LiveNode], clock: FakeClock, http: aiohttp.ClientSession
) -> None:
    """A body arriving in many TCP chunks is parsed whole, not cut at the first chunk."""
    big = json.dumps({"type": "result", "padding": "x" * 3_000_000}).encode()
    status, body = await post(http, trio[1], "/results", None, raw=big,
                              signer=(trio[0].node.ctx.keys, clock))
    assert status == 403, body  # parsed, then refused as a malformed envelope
    assert "envelope" in body["error"]["message"]


async def test_refused_joins_leave_no_trace_in_the_replay_memory(
    trio: list[LiveNode], clock: FakeClock, http: aiohttp.ClientSession
) -> None:
    """Any key pair can sign a join: only an accepted one may take replay memory."""
    founder = trio[0]
    stranger = NodeKeys.generate()
    member = {"node_id": stranger.node_id, "name": "stranger", "url": "http://127.0.0.1:9",
              "signing_public": b64url_encode(stranger.signing_public),
              "hpke_public": b64url_encode(stranger.hpke_public),
              "hpke_suite": stranger.hpke_suite, "capacity": 1.0, "input_only": False}
    envelope = sign_envelope(stranger, "join", founder.node.ctx.federation_id,
                             {"secret": "guessed", "member": member}, now=clock())
    for _ in range(2):  # the same envelope again is refused for the invite, not as a replay
        status, body = await post(http, founder, "/join", envelope)
        assert status == 403 and body["error"]["code"] == "invite_unknown"
    assert not founder.node.ctx.replay.seen(stranger.node_id, envelope["nonce"])


@pytest.mark.parametrize("cut", ["no_proof", "short_proof", "long_proof"])
async def test_a_share_whose_proof_does_not_parse_is_422_and_stores_nothing(
    trio: list[LiveNode], clock: FakeClock, http: aiohttp.ClientSession, cut: str,
) -> None:
    """A share must carry the report and its whole validity proof: a bare report (as a node
    from before proofs would send), a proof one element short or one too long is refused
    at ingest with a message that says so, and the sender's correct share is then taken."""
    sender = trio[0]
    ctx = sender.node.ctx
    spec = ctx.roster.task("temp").spec  # type: ignore[union-attr]
    round_id = int(clock() // PERIOD)
    committee = ctx.roster.committee("temp", round_id)
    target = by_id(trio, committee[1].node_id)
    proved = prove(spec, encode_report(spec, 21.5), FieldRNG())
    wrong = {"no_proof": proved[: vector_length(spec)], "short_proof": proved[:-1],
             "long_proof": np.append(proved, proved[:1])}[cut]
    share = shamir_share(wrong, spec.t, len(committee), FieldRNG())[1]
    aad = share_aad(ctx.federation_id, "temp", round_id, ctx.node_id, committee[1].node_id)
    sealed = seal_share(committee[1].hpke_public, committee[1].hpke_suite,
                        pack_elements(share), aad)
    status, body = await post(http, target, "/shares", shares_envelope(
        ctx.keys, ctx.federation_id, [("temp", round_id, sealed)], now=clock()),
        signer=(ctx.keys, clock))
    assert status == 422 and body["error"]["code"] == "malformed_share"
    assert f"its validity proof ({shared_length(spec)} field elements" in body["error"]["message"]
    _, _, good = sealed_for(sender, trio, clock, 21.5)
    status, body = await post(http, target, "/shares", shares_envelope(
        ctx.keys, ctx.federation_id, [("temp", round_id, good[1])], now=clock()),
        signer=(ctx.keys, clock))
    assert status == 200 and body["ack"]["body"]["duplicate"] is False


async def test_catching_up_takes_results_a_member_holds_and_names_a_forger(
    trio: list[LiveNode], clock: FakeClock, http: aiohttp.ClientSession,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A node back from an absence asks members for the results it missed: a malformed
    ask is refused, a genuine result is stored, and a member offering a forgery is named."""
    member, founder = trio[1], trio[0]
    ctx = member.node.ctx
    bad = sign_envelope(ctx.keys, "results-fetch", ctx.federation_id, {"after": [1]},
                        now=clock())
    status, body = await post(http, founder, "/results/fetch", bad, signer=(ctx.keys, clock))
    assert status == 400 and body["error"]["field"] == "body.after"

    forged = forged_result(ctx, clock)

    async def offer_forgery(envelope: Any, remote: str | None) -> dict[str, Any]:
        return {"results": [forged]}

    monkeypatch.setattr(founder.node.results, "handle_fetch", offer_forgery)
    await member.node.results.catch_up()
    assert await member.node.results.latest("temp", 0, 1) == []
    kinds = {m["node_id"]: m["kinds"] for m in
             (await member.node.misbehaviour.summary())["members"]}
    assert kinds[founder.node_id] == {"forged_result": 1}
    monkeypatch.undo()

    # A genuine released result that the member missed (here: removed from its database,
    # since every member of this trio sits on the committee) reaches it when it catches up.
    target = await contribute_all(trio, [20.0, 21.0, 22.0])
    clock.advance(PERIOD + 6)
    assert (await wait_result(founder))["round"] == target
    await wait_result(member)
    with contextlib.closing(sqlite3.connect(ctx.data_dir / DB_FILE_NAME)) as db, db:
        db.execute("DELETE FROM results WHERE task = 'temp'")
    assert await member.node.results.latest("temp", 0, 1) == []
    await member.node.results.catch_up()
    caught = await member.node.results.latest("temp", 0, 1)
    assert caught and caught[0]["round"] == target and caught[0]["status"] == "released"
    assert caught[0]["statistics"]["mean"] == pytest.approx(21.0, abs=0.01)
