"""One upload per household: a committee member forwards the others' shares in bulk.

A household's shares for a round go to every member of the round's committee. Rather
than one request per member, its node sends one, to the forwarder (``choose_forwarder``):
its own ``shares`` envelope for that member as always, and under ``forward`` the exact
requests it would have sent each other member (``Forward``: the body and its
``Hearth-*`` headers, MAC'd under the household's channel with that member, or signed).
The forwarder passes each body on as the household's base64url text, unread (the member
decodes and checks it, and a bad one fails that entry alone). It ingests its own share,
then queues each entry for its member and posts a queue as one
``/peer/v1/shares/batch`` request, signed by itself, once it holds ``BATCH_MAX`` entries
or ``LINGER_S`` after its first. The member checks every entry as
the household's own request (``mpc_backend.api.peer.serve_batch``), answers each as it
would have (the household's ack, MAC'd under their channel or signed), and the forwarder
hands those answers back unread, in its own answer's ``forwarded``. So each member takes
one request per ``BATCH_MAX`` households instead of one per household, and the
household's hub makes one upload instead of one per member.

Threat model, the forwarder modified: it holds no key of the household's channel with
another member, so it can read no share it forwards (sealed under that channel, or with
HPKE to the member) and forge or alter none (the member checks the household's MAC or
signature over the exact bytes, and refuses one it has seen: 409 ``replay``). It can
drop, delay or replay entries and lie about answers. The household counts a delivery
only by the member's own ack of exactly it (``household.ack_problem``) and sends every
other at once to its member directly, the same ciphertext, which the member stores once
(a late or replayed forward of it is a duplicate, acked alike). A forwarder can cost a
household a second round trip, never a share, and learns nothing it does not already
(it is on the same committee for that round). A household that forwards junk makes the
forwarder pass on what it could have sent the member itself: each entry fails alone,
and a batch is refused whole only if the forwarder's own signature or format is bad.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from mpc_backend.crypto import b64url_decode
from mpc_backend.crypto.channel import CHANNEL_HEADER
from mpc_backend.crypto.envelope import request_envelope

from .context import NodeContext
from .errors import BadRequest
from .peers import (
    DIGEST_HEADER,
    SENDER_HEADER,
    SIGNATURE_HEADER,
    TIME_HEADER,
    PeerError,
    PeerUnreachable,
)

log = logging.getLogger("mpc_backend.forwarding")

BATCH_PATH = "/peer/v1/shares/batch"
BATCH_MAX = 64  # entries in one batch request
# Request text (base64url) in one batch, so that it stays within the member's body limit
# for /shares/batch (4 MiB, with JSON around it); every entry fits.
BATCH_BYTES = 2 * 1024 * 1024
FORWARD_BYTES = 512 * 1024  # one forwarded request: a share envelope is a few KiB
FORWARD_TEXT = -(-FORWARD_BYTES * 4 // 3)  # its base64url text, unpadded
_BASE64URL = re.compile(r"[A-Za-z0-9_-]*")
LINGER_S = 0.02  # how long a queue waits for more entries before it is sent
MAX_FORWARDS = 16  # entries in one household's request: one per other committee seat
FORWARD_HEADERS = (SENDER_HEADER, TIME_HEADER, DIGEST_HEADER, SIGNATURE_HEADER, CHANNEL_HEADER)
# The forwarder's wait for a batch's answer leaves the household time to go direct.
BATCH_TIMEOUT_SHARE = 0.5
_NOT_A_TARGET = "to must name another member of the committee of the shares' task and round"


@dataclass(frozen=True)
class Forward:
    """One request a household would have sent a member itself: ``body`` (base64url text
    of the bytes its headers sign) to /shares."""

    to: str
    headers: dict[str, str]
    body: str

    def wire(self) -> dict[str, Any]:
        return {"to": self.to, "headers": self.headers, "body": self.body}


def choose_forwarder(household: str, task: str, round_id: int, members: Sequence[str]) -> str:
    """The member a household uploads to for one round: spread over the committee by a
    hash, so no member forwards every household's shares, and the same one on a resend."""
    digest = hashlib.sha256(f"{household}\x00{task}\x00{round_id}".encode()).digest()
    return sorted(members)[int.from_bytes(digest[:8], "big") % len(members)]


def parse_headers(value: Any, where: str) -> dict[str, str]:
    if not isinstance(value, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise BadRequest("headers must be an object of strings", field=where)
    unknown = set(value) - set(FORWARD_HEADERS)
    if unknown:
        raise BadRequest(f"only the {', '.join(FORWARD_HEADERS)} headers are forwarded, not "
                         f"{', '.join(sorted(unknown))}", field=where)
    return value


def body_text(value: Any, where: str) -> str:
    """A forwarded body as the forwarder passes it on: base64url characters within the size
    bound (so it is as many bytes in the batch as it counts: JSON escapes no character)."""
    if not isinstance(value, str) or not _BASE64URL.fullmatch(value):
        raise BadRequest("body must be a base64url string", field=where)
    if len(value) > FORWARD_TEXT:
        raise BadRequest(f"a forwarded request is {FORWARD_BYTES} bytes at most", field=where)
    return value


def decode_body(text: str, where: str) -> bytes:
    """A forwarded body (already ``body_text``) as its member reads it: the bytes its
    headers sign."""
    try:
        return b64url_decode(text)
    except ValueError:
        raise BadRequest("body is not base64url", field=where) from None


def parse_forwards(value: Any, sender: str, me: str) -> list[Forward]:
    """A household's ``forward`` list: at most one entry per other member, each the
    sender's own request (its ``Hearth-Sender``); BadRequest naming the field otherwise.
    Checked before the shares are opened (``forward_targets`` once they are), so a list of
    the wrong form costs the member no share opening."""
    if not isinstance(value, list) or not 1 <= len(value) <= MAX_FORWARDS:
        raise BadRequest(f"forward must be a list of 1-{MAX_FORWARDS} requests",
                         field="body.forward")
    forwards: list[Forward] = []
    for index, item in enumerate(value):
        where = f"body.forward[{index}]"
        if not isinstance(item, dict):
            raise BadRequest("each forward must be an object", field=where)
        to = item.get("to")
        if not isinstance(to, str) or to == me:
            raise BadRequest(_NOT_A_TARGET, field=f"{where}.to")
        if any(f.to == to for f in forwards):
            raise BadRequest("one forward per member", field=f"{where}.to")
        headers = parse_headers(item.get("headers"), f"{where}.headers")
        if headers.get(SENDER_HEADER) != sender:
            raise BadRequest("a household forwards its own requests only: "
                             f"{SENDER_HEADER} must be {sender}", field=f"{where}.headers")
        forwards.append(Forward(to, headers, body_text(item.get("body"), f"{where}.body")))
    return forwards


def forward_targets(forwards: Sequence[Forward], on_committee: Callable[[str], bool]) -> None:
    """BadRequest naming the first forward to a member not on the committee of every share
    the upload carries (a forwarder posts to no member a household names at will)."""
    for index, forward in enumerate(forwards):
        if not on_committee(forward.to):
            raise BadRequest(_NOT_A_TARGET, field=f"body.forward[{index}].to")


def batch_answers(answer: Mapping[str, Any], count: int) -> list[tuple[int, dict[str, Any]]]:
    """The (status, answer) per entry of a batch's answer; ValueError if it has another shape."""
    answers = answer.get("answers")
    if not isinstance(answers, list) or len(answers) != count:
        raise ValueError(f"the batch answer must list {count} answers")
    out = []
    for item in answers:
        status = item.get("status") if isinstance(item, dict) else None
        body = item.get("answer") if isinstance(item, dict) else None
        if isinstance(status, bool) or not isinstance(status, int) or not isinstance(body, dict):
            raise ValueError("each answer must be a status and an object")
        out.append((status, body))
    return out


def failed(code: str, message: str) -> tuple[int, dict[str, Any]]:
    return 502, {"error": {"code": code, "message": message}}


@dataclass
class _Queue:
    entries: list[tuple[Forward, asyncio.Future[tuple[int, dict[str, Any]]]]] = field(
        default_factory=list)
    size: int = 0  # base64url characters of its entries' bodies
    timer: asyncio.TimerHandle | None = None


@dataclass
class ForwardStats:
    forwarded: int = 0  # entries sent on
    batches: int = 0  # batch requests sent
    failed: int = 0  # entries whose batch got no valid answer


class Forwarder:
    """This member's queues of households' requests for the other members."""

    def __init__(self, ctx: NodeContext) -> None:
        self.ctx = ctx
        self._queues: dict[str, _Queue] = {}
        self._sending: set[asyncio.Task[None]] = set()
        self.stats = ForwardStats()

    async def forward(self, entries: Sequence[Forward]) -> list[dict[str, Any]]:
        """Each entry's member's answer (or why there is none), in order."""
        loop = asyncio.get_running_loop()
        futures = []
        for entry in entries:
            future: asyncio.Future[tuple[int, dict[str, Any]]] = loop.create_future()
            queue = self._queues.get(entry.to)
            if queue is not None and queue.size + len(entry.body) > BATCH_BYTES:
                self._flush(entry.to)
            queue = self._queues.setdefault(entry.to, _Queue())
            queue.entries.append((entry, future))
            queue.size += len(entry.body)
            if len(queue.entries) >= BATCH_MAX:
                self._flush(entry.to)
            elif queue.timer is None:
                queue.timer = loop.call_later(LINGER_S, self._flush, entry.to)
            futures.append(future)
        answers = await asyncio.gather(*futures)
        return [{"to": e.to, "status": status, "answer": answer}
                for e, (status, answer) in zip(entries, answers, strict=True)]

    def _flush(self, member_id: str) -> None:
        queue = self._queues.pop(member_id, None)
        if queue is None:
            return
        if queue.timer is not None:
            queue.timer.cancel()
        task = asyncio.create_task(self._send(member_id, queue.entries))
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def _send(self, member_id: str,
                    batch: list[tuple[Forward, asyncio.Future[tuple[int, dict[str, Any]]]]]
                    ) -> None:
        ctx = self.ctx
        member = ctx.roster.member(member_id)
        requests = [{"headers": e.headers, "body": e.body} for e, _ in batch]
        self.stats.batches += 1
        self.stats.forwarded += len(batch)
        results: list[tuple[int, dict[str, Any]]] = []
        try:
            if member is None or not ctx.peers.reachable(member):
                raise PeerUnreachable(f"{member_id} has no address this node can reach")
            answer = await ctx.peers.post(
                member, BATCH_PATH,
                lambda: request_envelope(ctx.node_id, "shares-batch", ctx.federation_id,
                                         {"requests": requests}, now=ctx.clock()),
                attempts=1, timeout_s=ctx.config.timing.peer_timeout_s * BATCH_TIMEOUT_SHARE)
            results = batch_answers(answer, len(batch))
        except (PeerError, ValueError) as err:
            log.info("forwarding %d share deliveries to %s failed: %s", len(batch), member_id,
                     err)
        except Exception:  # a bug must not leave households' requests waiting
            log.exception("forwarding %d share deliveries to %s failed", len(batch), member_id)
        finally:
            # Every entry gets an answer, also when this task is cancelled.
            if not results:
                self.stats.failed += len(batch)
                results = [failed("forward_failed", f"the forwarder got no answer from "
                                  f"{member_id}; send the shares to it directly")] * len(batch)
            for (_, future), result in zip(batch, results, strict=True):
                if not future.done():
                    future.set_result(result)

    async def close(self) -> None:
        """Stop: every queued or sending entry is answered ``forward_failed``."""
        for queue in self._queues.values():
            if queue.timer is not None:
                queue.timer.cancel()
            for _, future in queue.entries:
                if not future.done():
                    future.set_result(failed("forward_failed", "the forwarder is stopping; "
                                             "send the shares to each member directly"))
        self._queues.clear()
        for task in list(self._sending):
            task.cancel()
        await asyncio.gather(*self._sending, return_exceptions=True)

    def counters(self) -> dict[str, int]:
        stats = self.stats
        return {"forwarded": stats.forwarded, "batches": stats.batches, "failed": stats.failed}
