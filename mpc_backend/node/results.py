"""Round outcomes: signed by the closing committee member, pushed to every member.

A result document is signed (Ed25519, ``hearth/result/v1\\0`` + canonical JSON)
by the coordinator that closed the round; a member stores it only if that
coordinator sits on the round's committee. First result per (task, round)
wins. The same document again is idempotent, a different one is refused (409).

Public JSON (stable; the Home Assistant integration reads it)::

    {"task", "metric", "unit", "round", "round_start", "round_end",
     "status": "released" | "insufficient" | "failed", "reason": str | null,
     "contributors": int | null, "statistics": {...} | null, "dp_epsilon",
     "committee": [node ids], "released_at": ISO 8601, "signed_by", "signature", "seq"}

``statistics`` is ``decode_aggregate``'s output and is present only when
``status`` is ``released`` (never with fewer than ``min_contributors``).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Callable
from typing import Any

from mpc_backend.crypto import (
    BadSignatureError,
    b64url_decode,
    b64url_encode,
    canonical_json,
    sign_envelope,
    verify_signature,
)
from mpc_backend.storage import PutOutcome, ResultRecord

from .context import NodeContext
from .errors import BadRequest, Conflict, Forbidden
from .peers import PeerError

log = logging.getLogger("mpc_backend.results")

RESULT_CONTEXT = b"hearth/result/v1\x00"
STATUSES = ("released", "insufficient", "failed")


def iso(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).isoformat(timespec="seconds").replace(
        "+00:00", "Z"
    )


def public_view(record: ResultRecord) -> dict[str, Any]:
    doc = record.doc["result"]
    return {
        "task": doc["task"],
        "metric": doc["metric"],
        "unit": doc["unit"],
        "round": doc["round"],
        "round_start": iso(doc["round_start"]),
        "round_end": iso(doc["round_end"]),
        "status": doc["status"],
        "reason": doc.get("reason"),
        "contributors": doc.get("contributors"),
        "statistics": doc.get("statistics"),
        "dp_epsilon": doc.get("dp_epsilon"),
        "committee": doc["committee"],
        "released_at": iso(doc["released_at"]),
        "signed_by": doc["coordinator"],
        "signature": record.doc["sig"],
        "seq": record.seq,
    }


class ResultService:
    def __init__(self, ctx: NodeContext) -> None:
        self.ctx = ctx
        self._subscribers: set[asyncio.Queue[ResultRecord]] = set()
        self._pushes: set[asyncio.Task[None]] = set()

    def subscribe(self) -> asyncio.Queue[ResultRecord]:
        queue: asyncio.Queue[ResultRecord] = asyncio.Queue(maxsize=1000)
        self._subscribers.add(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[ResultRecord]) -> None:
        self._subscribers.discard(queue)

    async def publish(self, doc: dict[str, Any]) -> ResultRecord:
        """Sign a result this node closed, store it, and push it to every member."""
        wire = {"result": doc,
                "sig": b64url_encode(self.ctx.keys.sign(RESULT_CONTEXT + canonical_json(doc)))}
        _, record = await self._store(wire)

        def push() -> dict[str, Any]:
            return sign_envelope(self.ctx.keys, "result", self.ctx.federation_id,
                                 {"result": wire}, now=self.ctx.clock())

        for member in self.ctx.roster.members:
            if member.url and member.node_id != self.ctx.node_id:
                task = asyncio.create_task(self._push(member.url, member.name, push))
                self._pushes.add(task)
                task.add_done_callback(self._pushes.discard)
        return record

    async def _push(self, url: str, name: str, push: Callable[[], dict[str, Any]]) -> None:
        try:
            await self.ctx.peers.post(url, "/peer/v1/results", push)
        except PeerError as err:
            log.info("result not delivered to %s: %s", name, err)

    async def handle_push(self, envelope: Any, remote: str | None) -> dict[str, Any]:
        body = self.ctx.verify(envelope, "result", remote=remote)
        outcome, _ = await self.accept(body.get("result"))
        if outcome is PutOutcome.CONFLICT:
            raise Conflict("a different result for that round is already stored",
                           code="result_conflict")
        return {"stored": outcome is PutOutcome.STORED}

    async def accept(self, wire: Any) -> tuple[PutOutcome, ResultRecord]:
        """Verify a result signed by a committee member of its round and store it."""
        if not isinstance(wire, dict) or not isinstance(wire.get("result"), dict):
            raise BadRequest("expected {'result': {...}, 'sig': ...}", field="body.result")
        doc = wire["result"]
        try:
            task, round_id, coordinator = doc["task"], int(doc["round"]), doc["coordinator"]
            if doc["federation"] != self.ctx.federation_id or doc["status"] not in STATUSES:
                raise ValueError("wrong federation or status")
        except (KeyError, TypeError, ValueError) as err:
            raise BadRequest(f"malformed result: {err}", field="body.result") from None
        roster = self.ctx.roster
        if roster.task(task) is None:
            raise BadRequest(f"result for unknown task {task!r}", field="body.result.task")
        committee = [m.node_id for m in roster.committee(task, round_id)]
        member = roster.member(coordinator)
        if member is None or coordinator not in committee:
            log.warning("rejected a result for %s round %d signed by non-committee %s", task,
                        round_id, coordinator)
            raise Forbidden("result is not signed by a committee member of that round",
                            code="auth_failed")
        try:
            verify_signature(member.signing_public, RESULT_CONTEXT + canonical_json(doc),
                             b64url_decode(wire.get("sig", "")))
        except (ValueError, BadSignatureError) as err:
            log.warning("rejected a result for %s round %d: %s", task, round_id, err)
            raise Forbidden(f"result signature invalid: {err}", code="auth_failed") from None
        return await self._store(wire)

    async def _store(self, wire: dict[str, Any]) -> tuple[PutOutcome, ResultRecord]:
        doc = wire["result"]
        outcome, record = await self.ctx.storage.put_result(
            doc["task"], int(doc["round"]), doc["status"], wire, self.ctx.clock()
        )
        if outcome is PutOutcome.STORED:
            log.info("round %d of %s: %s%s", record.round, record.task, record.status,
                     f" ({doc.get('reason')})" if doc.get("reason") else "")
            for queue in list(self._subscribers):
                if queue.full():
                    self._subscribers.discard(queue)  # a stalled reader; it reconnects with since
                else:
                    queue.put_nowait(record)
        return outcome, record

    async def drain(self) -> None:
        if self._pushes:
            await asyncio.gather(*self._pushes, return_exceptions=True)

    async def latest(self, task: str | None, since: int, limit: int) -> list[dict[str, Any]]:
        if limit < 1 or limit > 1000:
            raise BadRequest("limit must be 1-1000", field="limit")
        return [public_view(r) for r in await self.ctx.storage.list_results(task, since, limit)]

