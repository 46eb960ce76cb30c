"""The household side of a round: turn one reading into sealed shares and deliver them.

reading -> ``encode_report`` -> ``validity.prove`` (report || witness || proof) ->
Shamir shares (degree t, one per committee seat, x = seat + 1) -> each share packed
as little-endian uint64 and sealed with the share context (federation, task, round,
sender, recipient): under the channel this node has with the member
(``mpc_backend.node.channels``), else HPKE-sealed to the member's key -> one
``shares`` envelope per member (several tasks' shares can ride in one envelope),
MAC'd under the channel or signed -> ``POST /peer/v1/shares``. A delivery counts as
acknowledged only by the member's ack of exactly it (signed, or MAC'd under the
channel): this household, each item's task, round and ciphertext hash
(``ack_problem``); anything else, such as an ack a relay replays from another
delivery, leaves it pending.

The node keeps an outbox: before anything is sent, the sealed shares are
committed to storage, so a retry (in the background until the round's window
closes, or when Home Assistant resends the same reading) sends the very same
ciphertexts and the committee sees an idempotent duplicate, not a second
contribution. The value itself is never stored, only an HMAC of it under a
local key, which is enough to tell "same reading again" (200) from "a different
reading for a round already contributed to" (409). That key lives in the same
database and readings have little entropy, so the MAC and the outbox are deleted
by housekeeping once the round has ended (they only matter while it is open).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import math
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from mpc_backend.arith import FieldRNG, shamir_share
from mpc_backend.crypto import (
    AuthError,
    NodeKeys,
    UnsupportedSuiteError,
    b64url_decode,
    b64url_encode,
    seal_share,
    share_aad,
    sign_envelope,
    verify_envelope,
)
from mpc_backend.crypto import channel as channels
from mpc_backend.crypto.channel import Channel
from mpc_backend.crypto.envelope import request_envelope
from mpc_backend.protocol import TaskSpec, encode_report
from mpc_backend.protocol.validity import prove
from mpc_backend.storage import ChannelRecord, Contribution, Delivery

from .channels import ChannelService
from .context import MAX_MESSAGE_AGE_S, NodeContext
from .errors import BadRequest, Conflict, NodeError, NotFound, Unavailable, Unprocessable
from .forwarding import MAX_FORWARDS, Forward, choose_forwarder
from .peers import PeerError, PeerRejected, request_headers
from .roster import MemberInfo
from .wire import pack_elements

log = logging.getLogger("mpc_backend.household")

MAC_KEY_META = "contribution_mac_key"
SHARES_PATH = "/peer/v1/shares"


def seal_report(
    keys: NodeKeys,
    federation_id: str,
    spec: TaskSpec,
    round_id: int,
    committee: Sequence[MemberInfo],
    value: float,
    rng: FieldRNG,
    channels_by_seat: Sequence[Channel | None] | None = None,
) -> list[bytes]:
    """One sealed share per committee seat; ValueError if ``value`` is outside the range."""
    return seal_vector(keys, federation_id, spec, round_id, committee,
                       encode_report(spec, value), rng, channels_by_seat)


def seal_vector(
    keys: NodeKeys,
    federation_id: str,
    spec: TaskSpec,
    round_id: int,
    committee: Sequence[MemberInfo],
    vector: np.ndarray,
    rng: FieldRNG,
    channels_by_seat: Sequence[Channel | None] | None = None,
) -> list[bytes]:
    """Prove an encoded report valid, Shamir-share it with its proof and seal one share to
    each committee seat: under the seat's channel where ``channels_by_seat`` has one, else
    with HPKE to the member's key."""
    shares = shamir_share(prove(spec, vector, rng), spec.t, len(committee), rng)
    sealed = []
    for seat, member in enumerate(committee):
        plaintext = pack_elements(shares[seat])
        aad = share_aad(federation_id, spec.task_id, round_id, keys.node_id, member.node_id)
        channel = channels_by_seat[seat] if channels_by_seat else None
        sealed.append(channels.seal(channel, plaintext, aad) if channel is not None
                      else seal_share(member.hpke_public, member.hpke_suite, plaintext, aad))
    return sealed


def shares_envelope(
    keys: NodeKeys,
    federation_id: str,
    items: Sequence[tuple[str, int, bytes]],
    now: float | None = None,
    *,
    signed: bool = True,
    forward: Sequence[Forward] = (),
) -> dict[str, Any]:
    """A ``shares`` message carrying (task, round, ciphertext) items for one member: signed,
    or (``signed=False``, for a request a channel MAC authenticates) with an empty sig; with
    ``forward``, the requests that member is to pass on (``mpc_backend.node.forwarding``)."""
    body: dict[str, Any] = {
        "items": [{"task": t, "round": r, "ct": b64url_encode(ct)} for t, r, ct in items]}
    if forward:
        body["forward"] = [f.wire() for f in forward]
    if signed:
        return sign_envelope(keys, "shares", federation_id, body, now=now)
    return request_envelope(keys.node_id, "shares", federation_id, body, now=now)


def forward_of(keys: NodeKeys, federation_id: str, member_id: str,
               items: Sequence[tuple[str, int, bytes]], channel: Channel | None,
               now: float) -> Forward:
    """The very request this household would send ``member_id`` itself, to be forwarded."""
    body = json.dumps(shares_envelope(keys, federation_id, items, now=now,
                                      signed=channel is None), separators=(",", ":")).encode()
    return Forward(member_id, request_headers(keys, SHARES_PATH, body, now, channel),
                   b64url_encode(body))


def ack_problem(
    answer: dict[str, Any],
    member: MemberInfo,
    federation_id: str,
    household: str,
    sent: Sequence[tuple[str, int, bytes]],
    now: float | None = None,
    channel: Channel | None = None,
) -> str | None:
    """Why ``answer`` is not ``member``'s acknowledgement of exactly ``sent``; None if it is.

    ``sent`` is the (task, round, ciphertext) items ``household`` delivered. A
    valid ack is a fresh ``shares-ack`` signed by the member (over a channel: an ack
    body with the channel's MAC), naming this household and listing exactly these
    items with each ciphertext's SHA-256: an ack of another household's, round's or
    ciphertext's delivery, as a relay could replay it, does not count.
    """
    if channel is not None:
        body, mac = answer.get("ack"), answer.get("mac")
        try:
            valid = (isinstance(body, dict) and isinstance(mac, str)
                     and channels.check_ack_mac(channel, body, b64url_decode(mac)))
        except ValueError:
            valid = False
        if not valid:
            return "the ack does not carry this channel's MAC"
        assert isinstance(body, dict)
    else:
        try:
            body = verify_envelope(answer.get("ack"), lambda s: member.signing_public
                                   if s == member.node_id else None, "shares-ack",
                                   federation_id, MAX_MESSAGE_AGE_S, now=now)
        except AuthError as err:
            return f"{type(err).__name__}: {err}"
    if body.get("household") != household:
        return f"it acknowledges shares from {body.get('household')!r}, not from this household"
    expected = [[task, round_id, hashlib.sha256(ct).hexdigest()] for task, round_id, ct in sent]
    if body.get("items") != expected:
        return "it acknowledges other shares (another task, round or ciphertext)"
    return None


@dataclass(frozen=True)
class _Target:
    """A pending delivery, its member, and the channel its share was sealed under (with the
    stored offer) if any."""

    delivery: Delivery
    member: MemberInfo
    found: tuple[Channel, ChannelRecord] | None

    @property
    def channel(self) -> Channel | None:
        return self.found[0] if self.found else None

    @property
    def sent(self) -> list[tuple[str, int, bytes]]:
        return [(self.delivery.task, self.delivery.round, self.delivery.ciphertext)]


def _error_text(status: Any, answer: Any) -> str:
    if status is None:
        return "no answer"
    error = answer.get("error") if isinstance(answer, dict) else None
    if isinstance(error, dict):
        return f"{status} {error.get('code')}: {error.get('message')}"
    return f"{status}, no valid ack"


def round_of(spec: TaskSpec, now: float) -> int:
    return math.floor(now / spec.period_s)


class ContributionService:
    """This household's readings: validate, seal, store in the outbox, deliver, retry."""

    def __init__(self, ctx: NodeContext, deliver_local: Any, channels: ChannelService) -> None:
        self.ctx = ctx
        self._deliver_local = deliver_local  # IngestService.handle_shares, for our own seat
        self._channels = channels
        self._rng = FieldRNG()
        self._mac_key: bytes | None = None
        self._locks: dict[tuple[str, int], tuple[asyncio.Lock, int]] = {}  # lock, users
        self.accepted = 0

    async def _mac(self, task: str, round_id: int, value: float) -> bytes:
        if self._mac_key is None:
            stored = await self.ctx.storage.get_meta(MAC_KEY_META)
            if stored is None:
                stored = secrets.token_hex(32)
                await self.ctx.storage.set_meta(MAC_KEY_META, stored)
            self._mac_key = bytes.fromhex(stored)
        msg = f"{task}\x00{round_id}\x00{float(value)!r}".encode()
        return hmac.new(self._mac_key, msg, hashlib.sha256).digest()

    async def contribute(self, task_id: Any, value: Any) -> dict[str, Any]:
        if not isinstance(task_id, str) or not task_id:
            raise BadRequest("task must be a task id string", field="task")
        numeric = isinstance(value, int | float) and not isinstance(value, bool)
        try:
            finite = numeric and math.isfinite(value)
        except OverflowError:  # an integer beyond float range
            finite = False
        if not finite:
            raise BadRequest("value must be a finite number", field="value")
        roster = self.ctx.roster
        rtask = roster.task(task_id)
        if rtask is None:
            raise NotFound(f"unknown task {task_id!r}; list tasks with mpc-backend status",
                           field="task", code="unknown_task")
        spec = rtask.spec
        now = self.ctx.clock()
        round_id = round_of(spec, now)
        round_end = (round_id + 1) * spec.period_s
        if round_id < rtask.first_round():
            starts = rtask.first_round() * spec.period_s
            raise Unprocessable(
                f"task {task_id!r} starts with round {rtask.first_round()} in "
                f"{starts - now:.0f} s; send the reading then",
                field="task", code="outside_round_window",
            )
        if not spec.low <= value <= spec.high:
            raise Unprocessable(
                f"value {value} is outside the task range [{spec.low}, {spec.high}]",
                field="value", code="out_of_range",
            )
        key = (task_id, round_id)
        lock, users = self._locks.get(key, (asyncio.Lock(), 0))
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                return await self._contribute_locked(spec, round_id, round_end, float(value))
        finally:
            lock, users = self._locks[key]
            if users == 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)

    async def _contribute_locked(
        self, spec: TaskSpec, round_id: int, round_end: float, value: float
    ) -> dict[str, Any]:
        storage = self.ctx.storage
        mac = await self._mac(spec.task_id, round_id, value)
        existing = await storage.get_contribution(spec.task_id, round_id)
        duplicate = existing is not None
        if existing is None:
            committee = self.ctx.roster.committee(spec.task_id, round_id)
            try:
                vector = encode_report(spec, value)
            except ValueError as err:
                raise Unprocessable(str(err), field="value", code="out_of_range") from None
            # A channel must outlast every retry: the outbox resends the very same bytes.
            until = round_end + self.ctx.config.timing.grace_s
            by_seat = await asyncio.gather(*(self._channels.outbound(m, until)
                                             for m in committee))
            try:
                sealed = seal_vector(self.ctx.keys, self.ctx.federation_id, spec, round_id,
                                     committee, vector, self._rng, by_seat)
            except UnsupportedSuiteError as err:
                raise NodeError(f"cannot seal shares for this committee: {err}",
                                code="unsupported_suite") from None
            contribution = Contribution(spec.task_id, round_id, mac,
                                        tuple(m.node_id for m in committee), round_end,
                                        self.ctx.clock())
            deliveries = [Delivery(spec.task_id, round_id, m.node_id, ct, False, 0)
                          for m, ct in zip(committee, sealed, strict=True)]
            if await storage.put_contribution(contribution, deliveries):
                existing = contribution
            else:  # another ingest worker stored this round's contribution first
                existing, duplicate = await storage.get_contribution(spec.task_id, round_id), True
        if existing is None or not hmac.compare_digest(existing.value_mac, mac):
            raise Conflict(
                f"this household already contributed a different value to {spec.task_id!r} "
                f"round {round_id}; one contribution per round",
                code="duplicate_contribution",
            )
        committee_ids = existing.committee
        pending = [d for d in await storage.deliveries(spec.task_id, round_id) if not d.acked]
        await self._deliver_all(pending)
        final = await storage.deliveries(spec.task_id, round_id)
        delivered = sum(d.acked for d in final)
        if delivered < spec.t + 1:
            raise Unavailable(
                f"only {delivered} of {spec.k} committee members acknowledged; the node keeps "
                f"retrying until round {round_id} closes",
                code="committee_unreachable",
            )
        if not duplicate:
            self.accepted += 1
        log.info("contributed to %s round %d (%d/%d committee acks)", spec.task_id, round_id,
                 delivered, spec.k)
        return {
            "task": spec.task_id,
            "round": round_id,
            "status": "accepted",
            "duplicate": duplicate,
            "acknowledged_by": delivered,
            "committee_size": spec.k,
            "committee": list(committee_ids),
            "round_ends_at": round_end,
        }

    async def _target(self, delivery: Delivery) -> _Target | None:
        member = self.ctx.roster.member(delivery.member)
        if member is None:
            return None
        # A share sealed under a channel starts with its id; an HPKE one matches none of
        # ours (its first 16 bytes are an encapsulated key).
        cid = channels.sealed_channel_id(delivery.ciphertext)
        found = None
        if cid is not None and member.node_id != self.ctx.node_id:
            found = await self._channels.by_id(member.node_id, cid)
        return _Target(delivery, member, found)

    def _acked(self, target: _Target, answer: dict[str, Any], via: str = "") -> bool:
        """Whether ``answer`` is the member's ack of exactly this delivery (logged if not)."""
        delivery, member = target.delivery, target.member
        problem = ack_problem(answer, member, self.ctx.federation_id, self.ctx.node_id,
                              target.sent, self.ctx.clock(), target.channel)
        if problem is not None:
            log.warning("ignored an acknowledgement from %s (%s)%s for %s round %d: %s; the "
                        "share stays pending and is sent again", member.name, member.node_id,
                        via, delivery.task, delivery.round, problem)
        return problem is None

    async def _deliver_all(self, pending: Sequence[Delivery]) -> None:
        """One upload for the round where two or more members are remote: to one of them,
        which forwards the others' requests; then straight to each member whatever that did
        not get acknowledged (and to a local or lone member at once)."""
        targets = [t for t in await asyncio.gather(*(self._target(d) for d in pending))
                   if t is not None]
        remote = [t for t in targets if t.member.node_id != self.ctx.node_id
                  and self.ctx.peers.reachable(t.member)]
        acked: set[str] = set()
        if len(remote) >= 2:
            acked = await self._upload(remote)
        await asyncio.gather(*(self._deliver(d) for d in pending if d.member not in acked))

    async def _upload(self, targets: Sequence[_Target]) -> set[str]:
        """Send every target's share in one request to a forwarder among them; the members
        whose own ack came back (their deliveries marked acknowledged)."""
        ctx, first = self.ctx, targets[0].delivery
        head_id = choose_forwarder(ctx.node_id, first.task, first.round,
                                   [t.member.node_id for t in targets])
        head = next(t for t in targets if t.member.node_id == head_id)
        # (Past MAX_FORWARDS other members, the rest go directly.)
        others = {t.member.node_id: t for t in targets if t is not head}
        others = dict(list(others.items())[:MAX_FORWARDS])

        def envelope() -> dict[str, Any]:
            now = ctx.clock()
            forward = [forward_of(ctx.keys, ctx.federation_id, member_id, t.sent, t.channel,
                                  now) for member_id, t in others.items()]
            return shares_envelope(ctx.keys, ctx.federation_id, head.sent, now=now,
                                   signed=head.channel is None, forward=forward)

        try:
            # One attempt: whatever it does not deliver goes directly, at once.
            answer = await ctx.peers.post(head.member, SHARES_PATH, envelope, attempts=1,
                                          channel=head.channel)
        except (PeerError, NodeError) as err:
            log.info("one upload for %s round %d through %s failed (%s); sending to each "
                     "member directly", first.task, first.round, head.member.name, err)
            return set()
        acked = {head_id} if self._acked(head, answer) else set()
        forwarded = answer.get("forwarded")
        replies = {item["to"]: item for item in
                   (forwarded if isinstance(forwarded, list) else [])
                   if isinstance(item, dict) and isinstance(item.get("to"), str)}
        for member_id, target in others.items():
            item = replies.get(member_id, {})
            reply = item.get("answer")
            if item.get("status") == 200 and isinstance(reply, dict) and self._acked(
                    target, reply, f" via {head.member.name}"):
                acked.add(member_id)
            else:
                log.info("share for %s round %d not delivered to %s via %s (%s); sending it "
                         "directly", first.task, first.round, target.member.name,
                         head.member.name, _error_text(item.get("status"), reply))
        for member_id in acked:
            await ctx.storage.mark_delivery(first.task, first.round, member_id, True)
        return acked

    async def _deliver(self, delivery: Delivery) -> bool:
        target = await self._target(delivery)
        if target is None:
            return False
        member, found, channel = target.member, target.found, target.channel

        def envelope() -> dict[str, Any]:
            return shares_envelope(self.ctx.keys, self.ctx.federation_id, target.sent,
                                   now=self.ctx.clock(), signed=channel is None)

        try:
            if member.node_id == self.ctx.node_id:
                answer = await self._deliver_local(envelope(), "local")
            elif not self.ctx.peers.reachable(member):
                return False
            else:
                try:
                    answer = await self.ctx.peers.post(member, SHARES_PATH, envelope,
                                                       channel=channel)
                except PeerRejected as err:
                    if found is None or err.code != "unknown_channel":
                        raise
                    # The member never stored the offer (its answer was lost) or lost it:
                    # offer the same channel again, then resend the same bytes.
                    if not await self._channels.offer(member, found[1]):
                        self._channels.refused(member.node_id, found[1].channel)
                        raise
                    answer = await self.ctx.peers.post(member, SHARES_PATH, envelope,
                                                       channel=channel)
            acked = self._acked(target, answer)
        except (PeerError, NodeError) as err:
            log.info("share for %s round %d not delivered to %s: %s", delivery.task,
                     delivery.round, member.name, err)
            acked = False
        await self.ctx.storage.mark_delivery(delivery.task, delivery.round, delivery.member, acked)
        return acked

    async def retry_loop(self) -> None:
        """Re-send unacknowledged shares while their round still accepts them."""
        grace = self.ctx.config.timing.grace_s
        while True:
            await asyncio.sleep(max(1.0, grace))
            if self.ctx.signed_roster is None:
                continue
            try:
                pending = await self.ctx.storage.pending_deliveries(self.ctx.clock() - grace)
                await asyncio.gather(*(self._deliver(d) for d in pending))
            except Exception:  # a retry round must never end the loop
                log.exception("share re-delivery failed")
