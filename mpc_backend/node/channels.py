"""Channels (``mpc_backend.crypto.channel``) as a node keeps them, on both ends.

Receiving member (``/peer/v1/channel``, ``inbound``): an offer comes in a signed
request and a signed ``channel`` envelope from a member or admitted household; it
must name this node, a well-formed id and an expiry no more than
``MAX_LIFETIME_S`` ahead, and its sealed secret must open for exactly that
channel. It is stored first-wins (the same offer again is a 200, another secret
under the same id a 409) before it is answered, so an acknowledged channel
survives a restart. A sender holds at most ``MAX_LIVE_PER_SENDER`` live channels
here, so offers cannot fill the disk. ``inbound`` looks a channel up for the peer
API. The main process holds every live channel in memory (``load`` at start, then
each offer it accepts: only it answers offers), so a request naming a channel it
does not hold costs no storage query. An ingest worker learns the main process's
channels from the shared database, one query per channel it has not seen, and after
a miss asks again for that sender only ``WORKER_MISS_S`` later; an expired channel
is not found. A channel a member refused again when offered anew (it lost it and
no longer takes channels) is not used for further reports (``refused``).

Household (``outbound``, ``by_id``): before sealing a round's shares to a member,
the node uses a live channel that outlasts the round's window. It never waits for
an offer: when no channel lasts ``RENEW_BEFORE_S`` beyond the round, one is offered
in the background (one at a time per member; after a failure, not again for
``OFFER_RETRY_S``, or ``UNSUPPORTED_RETRY_S`` after a 404 from a version without
channels) and stored once accepted, for the reports after this one. Until then the
shares are HPKE-sealed and signed as before, so a slow or hostile member delays
neither the reading's outbox nor the other seats.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from mpc_backend.crypto import (
    DecryptionError,
    NodeKeys,
    b64url_decode,
    b64url_encode,
    sign_envelope,
)
from mpc_backend.crypto.channel import (
    MAX_LIFETIME_S,
    Channel,
    derive,
    new_channel_id,
    new_secret,
    offer_aad,
    valid_id,
)
from mpc_backend.crypto.sealing import seal_share
from mpc_backend.storage import ChannelRecord

from .context import MAX_MESSAGE_AGE_S, NodeContext
from .errors import BadRequest, Conflict, Forbidden, TooManyRequests, Unprocessable
from .peers import PeerError, PeerRejected
from .roster import MemberInfo

log = logging.getLogger("mpc_backend.channels")

LIFETIME_S = 86_400  # a new channel's life: one offer per member per day
RENEW_BEFORE_S = 6 * 3600  # offer a successor once the newest has less than this left
MAX_LIVE_PER_SENDER = 8
OFFER_RETRY_S = 300.0  # after an offer that failed
UNSUPPORTED_RETRY_S = 3600.0  # after a 404: a member on a version without channels
WORKER_MISS_S = 2.0


def offer_envelope(keys: NodeKeys, federation: str, member: MemberInfo, record: ChannelRecord,
                   now: float) -> dict[str, Any]:
    """The signed ``channel`` offer of ``record`` to ``member``, its secret sealed to it."""
    expires = int(record.expires)
    ct = seal_share(member.hpke_public, member.hpke_suite, record.secret,
                    offer_aad(federation, keys.node_id, member.node_id, record.channel, expires))
    return sign_envelope(keys, "channel", federation,
                         {"member": member.node_id, "channel": record.channel,
                          "expires": expires, "ct": b64url_encode(ct)}, now=now)


def channel_of(record: ChannelRecord, federation: str, me: str) -> Channel:
    sender, receiver = (me, record.peer) if record.direction == "out" else (record.peer, me)
    return derive(record.secret, federation, sender, receiver, record.channel,
                  int(record.expires))


class ChannelService:
    def __init__(self, ctx: NodeContext) -> None:
        self.ctx = ctx
        self._inbound: dict[tuple[str, str], Channel] = {}
        self._outbound: dict[tuple[str, str], Channel] = {}
        self._accepting: dict[str, asyncio.Lock] = {}  # per sender: the cap holds under bursts
        self._offering: dict[str, asyncio.Task[None]] = {}
        self._retry_at: dict[str, float] = {}
        self._refused: set[tuple[str, str]] = set()  # (member, channel)
        self._complete = False  # every live inbound channel is in memory (main process)
        self._missed: dict[str, float] = {}  # sender -> last storage miss (workers)

    async def load(self) -> None:
        """Hold every live channel offered to this node (the main process, at start)."""
        ctx = self.ctx
        if ctx.signed_roster is not None:
            for record in await ctx.storage.live_channels("in", None, ctx.clock()):
                self._inbound[(record.peer, record.channel)] = channel_of(
                    record, ctx.federation_id, ctx.node_id)
        self._complete = True

    # -- receiving member -------------------------------------------------------------

    async def handle_offer(self, envelope: Any, remote: str | None) -> dict[str, Any]:
        ctx = self.ctx
        body = ctx.verify(envelope, "channel", remote=remote)
        sender, now = envelope["sender"], ctx.clock()
        channel, expires, ct_text = body.get("channel"), body.get("expires"), body.get("ct")
        if body.get("member") != ctx.node_id:
            raise Unprocessable("this channel offer is for another member", field="body.member",
                                code="wrong_recipient")
        if not valid_id(channel):
            raise BadRequest("channel must be 32 lowercase hex digits", field="body.channel")
        if isinstance(expires, bool) or not isinstance(expires, int):
            raise BadRequest("expires must be a Unix time in whole seconds",
                             field="body.expires")
        if not now < expires <= now + MAX_LIFETIME_S + MAX_MESSAGE_AGE_S:
            raise Unprocessable(
                f"a channel must expire within {MAX_LIFETIME_S} s from now (this offer "
                f"expires {expires - now:.0f} s from this node's time); check the hub's clock",
                field="body.expires", code="bad_expiry")
        if not isinstance(ct_text, str):
            raise BadRequest("ct must be a base64url string", field="body.ct")
        try:
            secret = ctx.keys.open_share(
                b64url_decode(ct_text),
                offer_aad(ctx.federation_id, sender, ctx.node_id, channel, expires))
        except (DecryptionError, ValueError):
            log.warning("refused a channel offer from %s (%s): its secret does not open",
                        sender, remote or "?")
            raise Forbidden("the channel secret does not open with this node's key for this "
                            "sender, channel and expiry", field="body.ct",
                            code="decryption_failed") from None
        if len(secret) != 32:
            raise Unprocessable("a channel secret is 32 bytes", field="body.ct",
                                code="bad_secret")
        record = ChannelRecord("in", sender, channel, secret, expires)
        # Only this (main) process answers /channel, so a lock per sender keeps the count
        # and the insert together.
        async with self._accepting.setdefault(sender, asyncio.Lock()):
            storage = ctx.storage
            if await storage.get_channel("in", sender, channel) is None:
                live = await storage.live_channels("in", sender, now)
                if len(live) >= MAX_LIVE_PER_SENDER:
                    raise TooManyRequests(
                        f"this sender already holds {len(live)} live channels with this node "
                        f"(limit {MAX_LIVE_PER_SENDER}); use one of them until it expires",
                        code="too_many_channels")
            if not await storage.put_channel(record):
                raise Conflict("another secret is already stored under this channel id; "
                               "offer a new channel", code="channel_conflict")
        # Kept in memory too: the first report over it then needs no storage read.
        self._inbound[(sender, channel)] = channel_of(record, ctx.federation_id, ctx.node_id)
        return {"channel": channel, "expires": expires}

    async def inbound(self, sender: str, channel: str) -> Channel | None:
        """The live channel ``sender`` offered this node under that id, or None."""
        now = self.ctx.clock()
        known = self._inbound.get((sender, channel))
        if known is None:
            if self._complete or now < self._missed.get(sender, 0.0) + WORKER_MISS_S:
                return None
            record = await self.ctx.storage.get_channel("in", sender, channel)
            if record is None:
                self._missed[sender] = now
                return None
            known = channel_of(record, self.ctx.federation_id, self.ctx.node_id)
            self._inbound[(sender, channel)] = known
        if known.expires <= now:
            del self._inbound[(sender, channel)]
            return None
        return known

    def forget_before(self, before: float) -> None:
        for book in (self._inbound, self._outbound):
            for key in [k for k, c in book.items() if c.expires < before]:
                del book[key]
        self._missed = {s: t for s, t in self._missed.items() if t > before - WORKER_MISS_S}

    async def close(self) -> None:
        """Cancel offers still in flight."""
        tasks = list(self._offering.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # -- household ------------------------------------------------------------------

    async def outbound(self, member: MemberInfo, until: float) -> Channel | None:
        """A live channel to ``member`` lasting until ``until``, or None (seal with HPKE).

        Never waits for an offer; starts one in the background when no channel lasts
        ``RENEW_BEFORE_S`` beyond ``until``."""
        ctx = self.ctx
        if member.node_id == ctx.node_id or not ctx.peers.reachable(member):
            return None
        records = [r for r in await ctx.storage.live_channels("out", member.node_id, ctx.clock())
                   if (r.peer, r.channel) not in self._refused]
        if not records or records[0].expires < until + RENEW_BEFORE_S:
            self._offer_soon(member, until)
        usable = next((r for r in records if r.expires >= until), None)
        return None if usable is None else self._remember(usable)

    def _offer_soon(self, member: MemberInfo, until: float) -> None:
        node_id, now = member.node_id, self.ctx.clock()
        if node_id in self._offering or now < self._retry_at.get(node_id, 0.0):
            return
        expires = int(max(now + LIFETIME_S, until + RENEW_BEFORE_S))
        if expires > now + MAX_LIFETIME_S:
            return  # rounds longer than a channel lives: their shares go with HPKE
        record = ChannelRecord("out", node_id, new_channel_id(), new_secret(), expires)
        task = asyncio.create_task(self._open(member, record))
        self._offering[node_id] = task
        task.add_done_callback(lambda _: self._offering.pop(node_id, None))

    async def _open(self, member: MemberInfo, record: ChannelRecord) -> None:
        try:
            if await self.offer(member, record):
                await self.ctx.storage.put_channel(record)
                return
        except Exception:  # a background offer must not die silently
            log.exception("offering a channel to %s failed", member.name)
        retry = self.ctx.clock() + OFFER_RETRY_S
        self._retry_at[member.node_id] = max(self._retry_at.get(member.node_id, 0.0), retry)

    def refused(self, member: str, channel: str) -> None:
        """``member`` no longer takes this channel (it refused it offered anew): seal the next
        reports to it otherwise."""
        self._refused.add((member, channel))

    async def by_id(self, member: str, channel: str) -> tuple[Channel, ChannelRecord] | None:
        """This node's channel to ``member`` under that id (live or not), with its record."""
        record = await self.ctx.storage.get_channel("out", member, channel)
        return None if record is None else (self._remember(record), record)

    async def offer(self, member: MemberInfo, record: ChannelRecord) -> bool:
        """Offer ``record`` to ``member``; whether it accepted it."""
        ctx = self.ctx
        federation = ctx.federation_id

        def envelope() -> dict[str, Any]:
            return offer_envelope(ctx.keys, federation, member, record, ctx.clock())

        try:
            answer = await ctx.peers.post(member, "/peer/v1/channel", envelope)
        except PeerRejected as err:
            if err.status == 404:
                self._retry_at[member.node_id] = ctx.clock() + UNSUPPORTED_RETRY_S
            log.info("channel offer to %s refused: %s", member.name, err)
            return False
        except PeerError as err:
            log.info("channel offer to %s not delivered: %s", member.name, err)
            return False
        return (answer.get("channel") == record.channel
                and answer.get("expires") == int(record.expires))

    def _remember(self, record: ChannelRecord) -> Channel:
        key = (record.peer, record.channel)
        known = self._outbound.get(key)
        if known is None:
            known = channel_of(record, self.ctx.federation_id, self.ctx.node_id)
            self._outbound[key] = known
        return known
