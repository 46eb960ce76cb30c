"""Channels: one signed, sealed offer per household and member; then no public-key work per
report. The pure parts against their definitions, then real nodes on loopback."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from typing import Any

import aiohttp
import pytest

from mpc_backend.crypto import DecryptionError, NodeKeys, b64url_encode, sign_envelope
from mpc_backend.crypto import channel as ch
from mpc_backend.crypto.sealing import seal_share
from mpc_backend.node import channels as node_channels
from mpc_backend.node.errors import NotFound
from mpc_backend.node.peers import SIGNATURE_HEADER, request_headers
from mpc_backend.storage import ChannelRecord
from tests.backend.conftest import PERIOD, FakeClock, LiveNode

FED = "f" * 32


def pair() -> tuple[bytes, ch.Channel, ch.Channel]:
    secret = ch.new_secret()
    cid = ch.new_channel_id()
    return (secret, ch.derive(secret, FED, "a" * 64, "b" * 64, cid, 2_000_000_000),
            ch.derive(secret, FED, "a" * 64, "b" * 64, cid, 2_000_000_000))


def test_both_ends_derive_the_same_keys_and_every_context_field_changes_them() -> None:
    secret, mine, theirs = pair()
    assert mine == theirs
    keys = {mine.share_key, mine.request_key, mine.answer_key}
    assert len(keys) == 3 and all(len(k) == 32 for k in keys)
    other_id = ch.new_channel_id()
    variants = [
        ch.derive(secret, "e" * 32, mine.sender, mine.receiver, mine.channel, mine.expires),
        ch.derive(secret, FED, "c" * 64, mine.receiver, mine.channel, mine.expires),
        ch.derive(secret, FED, mine.sender, "c" * 64, mine.channel, mine.expires),
        ch.derive(secret, FED, mine.sender, mine.receiver, other_id, mine.expires),
        ch.derive(secret, FED, mine.sender, mine.receiver, mine.channel, mine.expires + 1),
        ch.derive(ch.new_secret(), FED, mine.sender, mine.receiver, mine.channel, mine.expires),
    ]
    assert all(v.share_key != mine.share_key and v.request_key != mine.request_key
               for v in variants)
    with pytest.raises(ValueError, match="32 bytes"):
        ch.derive(secret[:31], FED, "a", "b", mine.channel, 1)
    assert secret.hex() not in repr(mine) and mine.share_key.hex() not in repr(mine)


def test_a_sealed_share_opens_only_under_its_channel_and_context() -> None:
    _, mine, theirs = pair()
    aad = b"hearth/share/v1 context"
    sealed = ch.seal(mine, b"share bytes", aad)
    assert ch.sealed_channel_id(sealed) == mine.channel
    assert ch.open_sealed(theirs, sealed, aad) == b"share bytes"
    assert ch.seal(mine, b"share bytes", aad) != sealed  # a fresh nonce each time
    _, other, _ = pair()
    tampered = sealed[:-1] + bytes([sealed[-1] ^ 1])
    for ciphertext, context in [(sealed, b"another context"), (tampered, aad),
                                (sealed[:20], aad)]:
        with pytest.raises(DecryptionError):
            ch.open_sealed(theirs, ciphertext, context)
    with pytest.raises(DecryptionError, match="not sealed under the channel"):
        ch.open_sealed(other, sealed, aad)
    # Under another channel's key but relabelled with this id: the tag fails.
    relabelled = bytes.fromhex(mine.channel) + ch.seal(other, b"x", aad)[16:]
    with pytest.raises(DecryptionError):
        ch.open_sealed(theirs, relabelled, aad)


def test_request_and_ack_macs_cover_every_field() -> None:
    _, mine, theirs = pair()
    digest = hashlib.sha256(b"body").digest()
    mac = ch.request_mac(mine, "/peer/v1/shares", 100, digest)
    assert ch.check_request_mac(theirs, "/peer/v1/shares", 100, digest, mac)
    for path, ts, d in [("/peer/v1/results", 100, digest), ("/peer/v1/shares", 101, digest),
                        ("/peer/v1/shares", 100, hashlib.sha256(b"other").digest())]:
        assert not ch.check_request_mac(theirs, path, ts, d, mac)
    ack = {"household": "a" * 64, "items": [["temp", 7, "00"]], "duplicate": False}
    tag = ch.ack_mac(theirs, ack)
    assert ch.check_ack_mac(mine, ack, tag)
    assert not ch.check_ack_mac(mine, {**ack, "duplicate": True}, tag)
    assert tag != mac and not ch.check_ack_mac(mine, ack, mac)  # separate keys per use


def offer_body(household: NodeKeys, member: LiveNode, clock: FakeClock, *,
               channel: str | None = None, expires: int | None = None,
               secret: bytes | None = None, to: str | None = None,
               sealed_for: str | None = None) -> dict[str, Any]:
    ctx = member.node.ctx
    cid = channel or ch.new_channel_id()
    expires = int(clock() + 3600) if expires is None else expires
    me = member.node.ctx.me()
    ct = seal_share(me.hpke_public, me.hpke_suite, secret or ch.new_secret(),
                    ch.offer_aad(ctx.federation_id, household.node_id,
                                 sealed_for or member.node_id, cid, expires))
    return sign_envelope(household, "channel", ctx.federation_id,
                         {"member": to or member.node_id, "channel": cid, "expires": expires,
                          "ct": b64url_encode(ct)}, now=clock())


async def post(http: aiohttp.ClientSession, sender: NodeKeys, member: LiveNode,
               clock: FakeClock, path: str, doc: Any,
               channel: ch.Channel | None = None) -> tuple[int, dict[str, Any]]:
    body = json.dumps(doc).encode()
    headers = request_headers(sender, path, body, clock(), channel)
    async with http.post(f"{member.url}{path}", data=body, headers=headers) as resp:
        return resp.status, await resp.json()


async def offered(household: LiveNode) -> None:
    """Wait for the channel offers a contribution started in the background."""
    for _ in range(100):
        if not household.node.channels._offering:
            return
        await asyncio.sleep(0.02)
    raise AssertionError("channel offers still in flight after 2 s")


async def test_a_households_shares_travel_over_channels_offered_once(
    trio: list[LiveNode], clock: FakeClock,
) -> None:
    household, members = trio[0], trio[1:]
    # The first reading goes with HPKE (a contribution never waits for an offer) and
    # starts the offers; the next ones travel over the channels.
    await household.node.household.contribute("temp", 20.0)
    first = await household.node.ctx.storage.deliveries("temp", int(clock() // PERIOD))
    assert all(d.acked for d in first)
    for d in first:
        assert await household.node.channels.by_id(d.member, d.ciphertext[:16].hex()) is None
    await offered(household)
    clock.advance(PERIOD)
    await household.node.household.contribute("temp", 21.0)
    round_id = int(clock() // PERIOD)
    deliveries = await household.node.ctx.storage.deliveries("temp", round_id)
    assert all(d.acked for d in deliveries)
    channels: dict[str, str] = {}
    for member in members:
        out = await household.node.ctx.storage.live_channels("out", member.node_id, clock())
        held = await member.node.ctx.storage.live_channels("in", household.node_id, clock())
        assert len(out) == 1 and [(r.channel, r.secret) for r in held] == [
            (out[0].channel, out[0].secret)]
        assert out[0].expires >= (round_id + 1) * PERIOD + node_channels.RENEW_BEFORE_S
        channels[member.node_id] = out[0].channel
    for d in deliveries:  # the others: under the channel it names; own seat: HPKE
        if d.member == household.node_id:
            assert d.ciphertext[:16].hex() not in channels.values()
            assert await household.node.channels.by_id(d.member, d.ciphertext[:16].hex()) \
                is None
        else:
            assert ch.sealed_channel_id(d.ciphertext) == channels[d.member]
    # The next round reuses them: no new offer.
    clock.advance(PERIOD)
    await household.node.household.contribute("temp", 22.0)
    for member in members:
        assert len(await member.node.ctx.storage.live_channels(
            "in", household.node_id, clock())) == 1


@pytest.mark.parametrize("case", [
    "another member", "malformed id", "expiry not an integer", "expired", "expiry too far",
    "sealed for another member", "secret for another expiry", "secret not 32 bytes",
])
async def test_bad_channel_offers_are_refused_with_what_to_fix(
    trio: list[LiveNode], clock: FakeClock, http: aiohttp.ClientSession, case: str,
) -> None:
    household, member, other = trio[0], trio[1], trio[2]
    keys = household.node.ctx.keys
    now = int(clock())
    doc = {
        "another member": lambda: offer_body(keys, member, clock, to=other.node_id),
        "malformed id": lambda: offer_body(keys, member, clock, channel="ABC"),
        "expiry not an integer": lambda: offer_body(keys, member, clock),
        "expired": lambda: offer_body(keys, member, clock, expires=now - 1),
        "expiry too far": lambda: offer_body(keys, member, clock,
                                             expires=now + ch.MAX_LIFETIME_S + 3600),
        "sealed for another member": lambda: offer_body(keys, member, clock,
                                                        sealed_for=other.node_id),
        "secret for another expiry": lambda: offer_body(keys, member, clock),
        "secret not 32 bytes": lambda: offer_body(keys, member, clock, secret=b"x" * 31),
    }[case]()
    if case == "expiry not an integer":
        doc = sign_envelope(keys, "channel", member.node.ctx.federation_id,
                            {**doc["body"], "expires": "soon"}, now=clock())
    if case == "secret for another expiry":  # the sealed secret is bound to the old expiry
        doc = sign_envelope(keys, "channel", member.node.ctx.federation_id,
                            {**doc["body"], "expires": doc["body"]["expires"] + 1}, now=clock())
    status, answer = await post(http, keys, member, clock, "/peer/v1/channel", doc)
    expected = {
        "another member": (422, "wrong_recipient"), "malformed id": (400, "bad_request"),
        "expiry not an integer": (400, "bad_request"), "expired": (422, "bad_expiry"),
        "expiry too far": (422, "bad_expiry"),
        "sealed for another member": (403, "decryption_failed"),
        "secret for another expiry": (403, "decryption_failed"),
        "secret not 32 bytes": (422, "bad_secret"),
    }[case]
    assert (status, answer["error"]["code"]) == expected, answer
    assert answer["error"]["message"]
    assert await member.node.ctx.storage.live_channels("in", keys.node_id, clock()) == []


async def test_an_offer_is_idempotent_first_wins_and_capped_per_sender(
    trio: list[LiveNode], clock: FakeClock, http: aiohttp.ClientSession,
) -> None:
    household, member = trio[0], trio[1]
    keys = household.node.ctx.keys
    cid, secret = ch.new_channel_id(), ch.new_secret()
    doc = offer_body(keys, member, clock, channel=cid, secret=secret)
    status, answer = await post(http, keys, member, clock, "/peer/v1/channel", doc)
    assert status == 200 and answer == {"channel": cid, "expires": doc["body"]["expires"]}
    again = offer_body(keys, member, clock, channel=cid, secret=secret,
                       expires=doc["body"]["expires"])
    assert (await post(http, keys, member, clock, "/peer/v1/channel", again))[0] == 200
    status, answer = await post(http, keys, member, clock, "/peer/v1/channel", offer_body(
        keys, member, clock, channel=cid, expires=doc["body"]["expires"]))
    assert (status, answer["error"]["code"]) == (409, "channel_conflict")
    stored = await member.node.ctx.storage.get_channel("in", keys.node_id, cid)
    assert stored is not None and stored.secret == secret
    for _ in range(node_channels.MAX_LIVE_PER_SENDER - 1):
        assert (await post(http, keys, member, clock, "/peer/v1/channel",
                           offer_body(keys, member, clock)))[0] == 200
    status, answer = await post(http, keys, member, clock, "/peer/v1/channel",
                                offer_body(keys, member, clock))
    assert (status, answer["error"]["code"]) == (429, "too_many_channels")
    # Another sender is not held back by this one's cap.
    other = trio[2].node.ctx.keys
    assert (await post(http, other, member, clock, "/peer/v1/channel",
                       offer_body(other, member, clock)))[0] == 200


async def channel_with(household: LiveNode, member: LiveNode, clock: FakeClock) -> ch.Channel:
    target = member.node.ctx.me()
    assert await household.node.channels.outbound(target, clock() + 60) is None  # offers
    await offered(household)
    channel = await household.node.channels.outbound(target, clock() + 60)
    assert channel is not None
    return channel


async def test_channel_requests_are_checked_like_signatures(
    trio: list[LiveNode], clock: FakeClock, http: aiohttp.ClientSession,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    household, member, other = trio
    keys = household.node.ctx.keys
    channel = await channel_with(household, member, clock)
    shares = "/peer/v1/shares"
    envelope = {"any": "thing"}

    # Only /shares takes a channel MAC.
    status, answer = await post(http, keys, member, clock, "/peer/v1/results/fetch", envelope,
                                channel)
    assert status == 403 and "only shares travel over a channel" in answer["error"]["message"]
    # A channel this member does not hold from this sender (the household holds it with
    # another member; or another household names it): unknown, offer it again.
    to_other = await channel_with(household, other, clock)
    status, answer = await post(http, keys, member, clock, shares, envelope, to_other)
    assert (status, answer["error"]["code"]) == (403, "unknown_channel")
    status, answer = await post(http, other.node.ctx.keys, member, clock, shares, envelope,
                                channel)
    assert (status, answer["error"]["code"]) == (403, "unknown_channel")
    # A MAC under the right channel over another body.
    body = json.dumps(envelope).encode()
    headers = request_headers(keys, shares, body, clock(), channel)
    headers[SIGNATURE_HEADER] = request_headers(keys, shares, b"{}", clock(),
                                                channel)[SIGNATURE_HEADER]
    async with http.post(f"{member.url}{shares}", data=body, headers=headers) as resp:
        assert resp.status == 403
        assert "MAC does not verify" in (await resp.json())["error"]["message"]
    # A valid request, then the same request again: a replay.
    headers = request_headers(keys, shares, body, clock(), channel)
    async with http.post(f"{member.url}{shares}", data=body, headers=headers) as resp:
        assert resp.status == 403  # past authentication: not a shares envelope
        assert (await resp.json())["error"]["code"] == "auth_failed"
    async with http.post(f"{member.url}{shares}", data=body, headers=headers) as resp:
        assert resp.status == 409 and (await resp.json())["error"]["code"] == "replay"
    # An expired channel is refused like an unknown one.
    clock.advance(channel.expires - clock() + 1)
    status, answer = await post(http, keys, member, clock, shares, envelope, channel)
    assert (status, answer["error"]["code"]) == (403, "unknown_channel")
    assert channel.request_key.hex() not in caplog.text


async def test_a_member_that_lost_the_channel_gets_it_offered_again(
    trio: list[LiveNode], clock: FakeClock,
) -> None:
    household, member = trio[0], trio[1]
    await channel_with(household, member, clock)
    # The member loses the channel (say its database was restored from before the offer).
    store = member.node.ctx.storage
    [record] = await store.live_channels("in", household.node_id, clock())
    await store.forget_channels(record.expires + 1)
    member.node.channels.forget_before(record.expires + 1)
    assert await store.live_channels("in", household.node_id, clock()) == []
    clock.advance(PERIOD)
    answer = await household.node.household.contribute("temp", 22.0)
    assert answer["acknowledged_by"] == 3
    again = await store.live_channels("in", household.node_id, clock())
    assert [(r.channel, r.secret) for r in again] == [(record.channel, record.secret)]


async def test_a_member_without_channels_gets_hpke_and_signatures(
    trio: list[LiveNode], clock: FakeClock, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A member on a version from before channels answers 404 to the offer: the household
    seals to it as before, and does not offer again on every report."""
    household, old = trio[0], trio[1]
    offers: list[str] = []
    real_offer = household.node.channels.offer

    async def counting(member: Any, record: ChannelRecord) -> bool:
        offers.append(member.node_id)
        return await real_offer(member, record)

    async def no_such_route(envelope: Any, remote: str | None) -> dict[str, Any]:
        raise NotFound("no peer route /peer/v1/channel")

    monkeypatch.setattr(household.node.channels, "offer", counting)
    monkeypatch.setattr(old.node.channels, "handle_offer", no_such_route)
    await household.node.household.contribute("temp", 20.0)
    await offered(household)
    clock.advance(PERIOD)
    answer = await household.node.household.contribute("temp", 21.0)
    assert answer["acknowledged_by"] == 3
    round_id = int(clock() // PERIOD)
    [to_old] = [d for d in await household.node.ctx.storage.deliveries("temp", round_id)
                if d.member == old.node_id]
    assert await household.node.channels.by_id(old.node_id, to_old.ciphertext[:16].hex()) \
        is None  # HPKE-sealed
    assert old.node.ingest.accepted >= 1
    clock.advance(PERIOD)
    await household.node.household.contribute("temp", 22.0)
    assert offers.count(old.node_id) == 1


async def test_housekeeping_forgets_expired_channels_on_both_ends(
    trio: list[LiveNode], clock: FakeClock,
) -> None:
    household, member = trio[0], trio[1]
    channel = await channel_with(household, member, clock)
    clock.advance(channel.expires - clock() + 1)
    for live in (household, member):
        await live.node.housekeep()
    direction = {household.node_id: ("out", member.node_id),
                 member.node_id: ("in", household.node_id)}
    for live in (household, member):
        way, peer = direction[live.node_id]
        assert await live.node.ctx.storage.get_channel(way, peer, channel.channel) is None


async def test_a_member_that_never_answers_offers_delays_nothing(
    trio: list[LiveNode], clock: FakeClock, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The reading is sealed (HPKE for a seat without a channel), stored in the outbox and
    delivered to every seat while the offer to a silent member is still unanswered."""
    household, silent = trio[0], trio[1]
    stalled, released = asyncio.Event(), asyncio.Event()

    async def never(envelope: Any, remote: str | None) -> dict[str, Any]:
        stalled.set()
        await released.wait()  # until the test is over
        raise NotFound("gone")

    monkeypatch.setattr(silent.node.channels, "handle_offer", never)
    answer = await household.node.household.contribute("temp", 21.0)
    assert answer["acknowledged_by"] == 3
    assert stalled.is_set() and silent.node_id in household.node.channels._offering
    await household.node.channels.close()  # what stopping the node does
    assert household.node.channels._offering == {}
    released.set()  # the silent member's handler ends: no task outlives the test
    await asyncio.sleep(0.1)


def count_channel_reads(live: LiveNode, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The channel ids ``live`` looks up in its storage from now on."""
    reads: list[str] = []
    real = live.node.ctx.storage.get_channel

    async def counted(direction: str, peer: str, cid: str) -> ChannelRecord | None:
        reads.append(cid)
        return await real(direction, peer, cid)

    monkeypatch.setattr(live.node.ctx.storage, "get_channel", counted)
    return reads


async def test_an_unknown_channel_costs_the_main_process_no_storage_query(
    trio: list[LiveNode], clock: FakeClock, http: aiohttp.ClientSession,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Every live channel offered to it is in its memory (loaded at start, then each offer):
    a request naming another is refused without reading storage. After a restart the
    channels are loaded again and work."""
    household, member = trio[0], trio[1]
    channel = await channel_with(household, member, clock)
    reads = count_channel_reads(member, monkeypatch)
    made_up = ch.derive(ch.new_secret(), channel.federation, channel.sender, channel.receiver,
                        ch.new_channel_id(), channel.expires)
    for _ in range(20):
        status, answer = await post(http, household.node.ctx.keys, member, clock,
                                    "/peer/v1/shares", {}, made_up)
        assert (status, answer["error"]["code"]) == (403, "unknown_channel")
    assert reads == []
    fresh = node_channels.ChannelService(member.node.ctx)  # what a restart builds
    await fresh.load()
    assert await fresh.inbound(household.node_id, channel.channel) == channel
    assert await fresh.inbound(household.node_id, made_up.channel) is None
    assert reads == []


async def test_a_worker_asks_storage_once_per_channel_and_not_again_at_once_after_a_miss(
    trio: list[LiveNode], clock: FakeClock, monkeypatch: pytest.MonkeyPatch,
) -> None:
    household, member = trio[0], trio[1]
    channel = await channel_with(household, member, clock)
    worker = node_channels.ChannelService(member.node.ctx)  # an ingest worker's: not loaded
    reads = count_channel_reads(member, monkeypatch)
    for _ in range(3):
        assert await worker.inbound(household.node_id, channel.channel) == channel
    assert reads == [channel.channel]
    for _ in range(5):
        assert await worker.inbound(household.node_id, ch.new_channel_id()) is None
    assert len(reads) == 2  # one miss, then none for that sender until WORKER_MISS_S passes
    clock.advance(node_channels.WORKER_MISS_S + 0.1)
    assert await worker.inbound(household.node_id, ch.new_channel_id()) is None
    assert len(reads) == 3


async def test_a_channel_the_member_refuses_anew_is_not_used_again(
    trio: list[LiveNode], clock: FakeClock, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The member lost the channel and now answers offers with 404 (say it went back to a
    version without channels): that round's share to it stays pending, and the next
    reports to it are HPKE-sealed and acknowledged."""
    household, member = trio[0], trio[1]
    channel = await channel_with(household, member, clock)
    await member.node.ctx.storage.forget_channels(channel.expires + 1)
    member.node.channels.forget_before(channel.expires + 1)

    async def no_such_route(envelope: Any, remote: str | None) -> dict[str, Any]:
        raise NotFound("no peer route /peer/v1/channel")

    monkeypatch.setattr(member.node.channels, "handle_offer", no_such_route)
    first = await household.node.household.contribute("temp", 21.0)
    assert first["acknowledged_by"] == 2
    clock.advance(PERIOD)
    second = await household.node.household.contribute("temp", 22.0)
    assert second["acknowledged_by"] == 3
    [to_member] = [d for d in await household.node.ctx.storage.deliveries(
        "temp", int(clock() // PERIOD)) if d.member == member.node_id]
    assert ch.sealed_channel_id(to_member.ciphertext) != channel.channel
