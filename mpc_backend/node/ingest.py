"""The committee side of a round: accept sealed shares from households.

For each ``shares`` envelope, in this order (cheapest check first): signature by a
roster member and freshness (403), nonce not seen before (409), well-formed items and
``forward`` list (400), known task (404), round window and committee seat (422), the
HPKE ciphertext opens under the share context (403, logged without content), the
plaintext is the right number of field elements for the report and its validity proof
(422). Then all items of the envelope are committed to storage atomically, and only then
acknowledged with a signed ``shares-ack`` naming the household and, per item, task,
round and the SHA-256 of the ciphertext stored. Per (task, round, sender) exactly one
share is kept: the same ciphertext again is an idempotent 200, a different one 409.

Window: round r of a task with period p spans [r p, (r + 1) p); its shares are
accepted from ``grace_s`` before it starts (clock skew) until ``grace_s`` after it
ends, and never once this member has started closing the round.

One signature check per envelope: the peer API has verified the request's
signature over the SHA-256 of the exact body bytes (relayed: of the sealed bytes,
which open to one plaintext only) under the sender's key before it read the body
(``Preauth``), so the envelope's own signature would prove nothing more; the
envelope must then name that sender, and its type, federation, age and nonce are
checked as always. An attacker's view: without the sender's key there is no valid
request signature, hence nothing reaches this service; with it, the sender could
have signed the envelope as well. A member that signs a request carrying an
envelope in another's name is refused (the names differ), and every share's HPKE
context still names the envelope's sender. Shares delivered in-process (this
node's own seat) have no request, and their envelope signature is verified.

Over a channel (``mpc_backend.node.channels``) the request carries the channel's
MAC instead of a signature, the envelope no signature at all, every share is
sealed under the channel's share key (with the same share context as AAD), and the
ack carries the channel's MAC instead of this node's signature: no public-key
operation per report on either side.

A household's request may also carry, under ``forward``, its requests for the other
members of the round's committee (``mpc_backend.node.forwarding``): checked for form before
any share is opened, each target against the committees of the opened shares before
anything is stored, passed to the ``Forwarder`` once this member's own share is on disk,
and their members' answers returned unread in ``forwarded``. A request that was itself
forwarded may carry none.

``counters()``, cumulative, for the status API (``load.ingest``): envelopes
acknowledged and reports newly stored; seconds spent checking signatures and
freshness (the request's and the envelope's), opening HPKE shares, and in the
storage's share transactions (group commits, ``Storage.share_commit_s``); and the
sum over acknowledged envelopes of the time from the request's arrival to its ack.
"""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass
from typing import Any

from mpc_backend.crypto import (
    DecryptionError,
    b64url_decode,
    b64url_encode,
    share_aad,
    sign_envelope,
)
from mpc_backend.crypto import channel as channels
from mpc_backend.crypto.channel import Channel
from mpc_backend.protocol.validity import shared_length
from mpc_backend.storage import PutOutcome, ShareRecord

from .context import NodeContext
from .errors import BadRequest, Conflict, Forbidden, NotFound, Unprocessable
from .forwarding import Forward, Forwarder, forward_targets, parse_forwards
from .wire import unpack_elements

log = logging.getLogger("mpc_backend.ingest")

MAX_ITEMS = 256


@dataclass(frozen=True)
class Preauth:
    """What the peer API established before it read a request's body."""

    sender: str  # whose verified request signature (or channel MAC) covers the exact bytes
    arrived: float  # time.perf_counter() when the request reached the handler
    verify_s: float  # time the request signature check took
    channel: Channel | None = None  # the channel whose MAC it was, if not a signature
    forwarded_by: str | None = None  # the member that passed the request on in a batch


@dataclass
class IngestStats:
    envelopes: int = 0
    reports: int = 0
    verify_s: float = 0.0
    open_s: float = 0.0
    handler_s: float = 0.0


class IngestService:
    def __init__(self, ctx: NodeContext, closing: dict[tuple[str, int], float],
                 forwarder: Forwarder | None = None) -> None:
        self.ctx = ctx
        self._closing = closing  # rounds this member has started closing (shared with rounds)
        self.forwarder = forwarder  # None: this process passes no household's shares on
        self.accepted = 0
        self.rejected = 0
        self.stats = IngestStats()

    async def handle_shares(self, envelope: Any, remote: str | None,
                            preauth: Preauth | None = None) -> dict[str, Any]:
        try:
            return await self._handle(envelope, remote, preauth)
        except Exception:
            self.rejected += 1
            raise

    async def _handle(self, envelope: Any, remote: str | None,
                      preauth: Preauth | None) -> dict[str, Any]:
        stats = self.stats
        started = time.perf_counter()
        body = self.ctx.verify(envelope, "shares", remote=remote,
                               authenticated_by=preauth.sender if preauth else None)
        stats.verify_s += time.perf_counter() - started + (preauth.verify_s if preauth else 0.0)
        items = body.get("items")
        if not isinstance(items, list) or not 1 <= len(items) <= MAX_ITEMS:
            raise BadRequest(f"items must be a list of 1-{MAX_ITEMS} shares", field="body.items")
        forwards = None
        if "forward" in body:
            if preauth is None or preauth.forwarded_by is not None:
                raise BadRequest("only a household's own request to a member may carry "
                                 "forwards", field="body.forward")
            forwards = parse_forwards(body["forward"], envelope["sender"], self.ctx.node_id)
        now = self.ctx.clock()
        channel = preauth.channel if preauth else None
        records: list[ShareRecord] = []
        for index, item in enumerate(items):
            record = self._open_item(envelope["sender"], item, f"body.items[{index}]", now,
                                     channel)
            if any((r.task, r.round) == (record.task, record.round) for r in records):
                raise BadRequest("an envelope may carry one share per task and round",
                                 field=f"body.items[{index}]")
            records.append(record)
        if forwards is not None:  # to members that share a seat with this one on every item
            roster = self.ctx.roster
            seats = set.intersection(*({m.node_id for m in roster.committee(r.task, r.round)}
                                       for r in records))
            forward_targets(forwards, seats.__contains__)
        outcome = await self.ctx.storage.put_shares(records)
        if outcome is PutOutcome.CONFLICT:
            log.warning("refused a second, different contribution from %s", envelope["sender"])
            raise Conflict(
                "a different share from this sender is already stored for that task and round; "
                "one contribution per member per task per round",
                code="duplicate_contribution",
            )
        if outcome is PutOutcome.CLOSED:  # marked in storage, by this or another process
            raise Unprocessable("a round of these shares is not accepting shares: this member "
                                "has started closing it", field="body.items",
                                code="outside_round_window")
        if outcome is PutOutcome.STORED:
            self.accepted += len(records)
            stats.reports += len(records)
        # Bound to this delivery: the household checks its own id and each item's
        # ciphertext hash, so an ack cannot be passed off for another delivery.
        acked = {"household": envelope["sender"],
                 "items": [[r.task, r.round, r.digest.hex()] for r in records],
                 "duplicate": outcome is PutOutcome.DUPLICATE}
        if channel is not None:
            answer = {"ack": acked, "mac": b64url_encode(channels.ack_mac(channel, acked))}
        else:
            answer = {"ack": sign_envelope(self.ctx.keys, "shares-ack", self.ctx.federation_id,
                                           acked, now=now)}
        stats.envelopes += 1
        stats.handler_s += time.perf_counter() - (preauth.arrived if preauth else started)
        if forwards:  # after this member's own share is on disk and acked
            answer["forwarded"] = await self._forward(forwards)
        return answer

    async def _forward(self, forwards: list[Forward]) -> list[dict[str, Any]]:
        if self.forwarder is None:
            return [{"to": f.to, "status": 503, "answer": {"error": {
                "code": "not_forwarding",
                "message": "this member passes no shares on; send them to each member"}}}
                for f in forwards]
        return await self.forwarder.forward(forwards)

    def counters(self) -> dict[str, float]:
        stats = self.stats
        return {"envelopes": stats.envelopes, "reports": stats.reports,
                "verify_s": round(stats.verify_s, 6), "open_s": round(stats.open_s, 6),
                "commit_s": round(self.ctx.storage.share_commit_s, 6),
                "handler_s": round(stats.handler_s, 6)}

    def _open_item(self, sender: str, item: Any, where: str, now: float,
                   channel: Channel | None) -> ShareRecord:
        """Check one item and open its share; the errors name the item's field."""
        if not isinstance(item, dict):
            raise BadRequest("each item must be an object", field=where)
        task_id, round_id, ct_text = item.get("task"), item.get("round"), item.get("ct")
        if not isinstance(task_id, str):
            raise BadRequest("task must be a string", field=f"{where}.task")
        if isinstance(round_id, bool) or not isinstance(round_id, int) or round_id < 0:
            raise BadRequest("round must be a non-negative integer", field=f"{where}.round")
        if not isinstance(ct_text, str):
            raise BadRequest("ct must be a base64url string", field=f"{where}.ct")
        roster = self.ctx.roster
        rtask = roster.task(task_id)
        if rtask is None:
            raise NotFound(f"unknown task {task_id!r}", field=f"{where}.task",
                           code="unknown_task")
        spec = rtask.spec
        start, end = round_id * spec.period_s, (round_id + 1) * spec.period_s
        grace = self.ctx.config.timing.grace_s
        if (
            round_id < rtask.first_round()
            or not start - grace <= now < end + grace
            or (task_id, round_id) in self._closing
        ):
            raise Unprocessable(
                f"round {round_id} of {task_id!r} is not accepting shares (the current "
                f"round is {int(now // spec.period_s)})",
                field=f"{where}.round", code="outside_round_window",
            )
        me = self.ctx.node_id
        if me not in (m.node_id for m in roster.committee(task_id, round_id)):
            raise Unprocessable(
                f"this node is not on the committee of {task_id!r} round {round_id}",
                field=f"{where}.round", code="not_on_committee",
            )
        try:
            ciphertext = b64url_decode(ct_text)
        except ValueError:
            raise BadRequest("ct is not base64url", field=f"{where}.ct") from None
        aad = share_aad(roster.federation_id, task_id, round_id, sender, me)
        opening = time.perf_counter()
        try:
            plaintext = (channels.open_sealed(channel, ciphertext, aad) if channel is not None
                         else self.ctx.keys.open_share(ciphertext, aad))
        except DecryptionError as err:
            log.warning("rejected a share from %s for %s round %d: %s", sender, task_id,
                        round_id, err)
            raise Forbidden(str(err), field=f"{where}.ct", code="decryption_failed") from None
        finally:
            self.stats.open_s += time.perf_counter() - opening
        try:
            unpack_elements(plaintext, shared_length(spec))
        except ValueError as err:
            log.warning("rejected a malformed share from %s for %s round %d: %s", sender,
                        task_id, round_id, err)
            raise Unprocessable(
                f"malformed share: {err}; a share carries the report and its validity proof "
                f"({shared_length(spec)} field elements for {task_id!r})",
                field=f"{where}.ct", code="malformed_share") from None
        return ShareRecord(task_id, round_id, sender, hashlib.sha256(ciphertext).digest(),
                           plaintext, now)
