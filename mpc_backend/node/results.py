"""Round outcomes: co-signed by the committee, pushed to every member, checked on arrival.

Wire form ``{"result": doc, "sigs": {node_id: b64url}}``; each signature is
Ed25519 over ``hearth/result/v1\0`` + canonical JSON of ``doc``. A node stores a
result only once the round has ended, and only:

* ``released`` / ``insufficient``: with signatures of at least t + 1 distinct
  members of the round's committee over the same document. A member signs a
  released result only after checking that its own partial sum went into it and
  that the signed partials reconstruct exactly the published statistics
  (``RoundService.handle_sign``), so with at most t colluding members no forged
  statistic collects t + 1 signatures.
* ``failed``: once the round's decision deadline has passed, signed by one
  committee member (any member that holds shares decides "failed" by itself at
  the deadline; claiming it earlier would let one member kill a live round).

A stored failure gives way to a co-signed outcome that arrives later. Anything
else that fails these checks is refused and recorded as misbehaviour of whoever
pushed it.

Catching up: a node that was away when results were pushed asks another member
for what it holds after its own latest round of each task (``catch_up``, at
start and whenever its relay connection comes back) and checks each as if pushed.

Public JSON (stable; the Home Assistant integration reads it)::

    {"task", "metric", "unit", "round", "round_start", "round_end",
     "status": "released" | "insufficient" | "failed", "reason": str | null,
     "contributors": int | null, "statistics": {...} | null, "dp_epsilon",
     "committee": [node ids], "released_at": ISO 8601, "signed_by": [node ids],
     "seq"}

``statistics`` is ``decode_aggregate``'s output and is present only when
``status`` is ``released`` (never with fewer than ``min_contributors``).
"""

from __future__ import annotations

import asyncio
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
from mpc_backend.protocol.validity import INVALID
from mpc_backend.storage import PutOutcome, ResultRecord

from .context import DELIVERY_MAX_AGE_S, NodeContext
from .errors import BadRequest, Conflict, Forbidden
from .misbehaviour import MisbehaviourLog
from .peers import PeerError
from .roster import MemberInfo
from .timeline import CLOCK_SKEW_S, decision_deadline, iso, round_end

log = logging.getLogger("mpc_backend.results")

RESULT_CONTEXT = b"hearth/result/v1\x00"
CATCH_UP_LIMIT = 20  # newest results per task offered to a member catching up
CATCH_UP_ASKS = 3  # members asked in turn until one answers
STATUSES = ("released", "insufficient", "failed")
INVALID_REPORT_DETAIL = ("its report failed its validity proof and was left out of the result "
                         "(a verdict co-signed by the round's committee)")


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
        "excluded": doc.get("excluded") or [],
        "released_at": iso(doc["released_at"]),
        "signed_by": sorted(record.doc.get("sigs") or {}),
        "seq": record.seq,
    }


def sign_result(ctx: NodeContext, doc: dict[str, Any]) -> str:
    return b64url_encode(ctx.keys.sign(RESULT_CONTEXT + canonical_json(doc)))


def _valid_signers(
    committee: list[MemberInfo], doc: dict[str, Any], sigs: dict[str, Any]
) -> list[str]:
    """Committee members whose signature over ``doc`` is present; Forbidden on a bad one."""
    message = RESULT_CONTEXT + canonical_json(doc)
    signers = []
    for member in committee:
        sig = sigs.get(member.node_id)
        if not isinstance(sig, str):
            continue
        try:
            verify_signature(member.signing_public, message, b64url_decode(sig))
        except (ValueError, BadSignatureError):
            raise Forbidden(f"result signature of {member.name} is invalid",
                            code="auth_failed") from None
        signers.append(member.node_id)
    return signers


class ResultService:
    def __init__(self, ctx: NodeContext, misbehaviour: MisbehaviourLog) -> None:
        self.ctx = ctx
        self.misbehaviour = misbehaviour
        self._subscribers: set[asyncio.Queue[ResultRecord]] = set()
        self._pushes: set[asyncio.Task[None]] = set()

    def subscribe(self) -> asyncio.Queue[ResultRecord]:
        queue: asyncio.Queue[ResultRecord] = asyncio.Queue(maxsize=1000)
        self._subscribers.add(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[ResultRecord]) -> None:
        self._subscribers.discard(queue)

    async def publish(self, doc: dict[str, Any], sigs: dict[str, str]) -> ResultRecord:
        """Store an outcome this node assembled (or decided at the deadline) and push it."""
        wire = {"result": doc, "sigs": sigs}
        _, record = await self._store(wire)

        def push() -> dict[str, Any]:
            return sign_envelope(self.ctx.keys, "result", self.ctx.federation_id,
                                 {"result": wire}, now=self.ctx.clock())

        # Admitted households too: those with an address (or a relay mailbox) get it pushed.
        for member in (*self.ctx.roster.members, *self.ctx.directory.members()):
            if self.ctx.peers.reachable(member) and member.node_id != self.ctx.node_id:
                task = asyncio.create_task(self._push(member, push))
                self._pushes.add(task)
                task.add_done_callback(self._pushes.discard)
        return record

    async def _push(self, member: MemberInfo, push: Callable[[], dict[str, Any]]) -> None:
        try:
            # Through the relay a member that is away gets it when it reconnects.
            await self.ctx.peers.push(member, "/peer/v1/results", push)
        except PeerError as err:
            log.info("result not delivered to %s: %s", member.name, err)

    async def handle_push(self, envelope: Any, remote: str | None) -> dict[str, Any]:
        # The document is co-signed and first-wins, so a push that waited in an offline
        # member's relay queue is as good as a fresh one.
        body = self.ctx.verify(envelope, "result", remote=remote, max_age_s=DELIVERY_MAX_AGE_S)
        try:
            outcome, _ = await self.accept(body.get("result"))
        except Forbidden as err:
            await self.misbehaviour.report(envelope["sender"], "forged_result", err.message)
            raise
        if outcome is PutOutcome.CONFLICT:
            raise Conflict("a different result for that round is already stored",
                           code="result_conflict")
        return {"stored": outcome is PutOutcome.STORED}

    async def accept(self, wire: Any) -> tuple[PutOutcome, ResultRecord]:
        """Verify a co-signed (or, past the deadline, failed) result and store it."""
        if not isinstance(wire, dict) or not isinstance(wire.get("result"), dict):
            raise BadRequest("expected {'result': {...}, 'sigs': {...}}", field="body.result")
        doc, sigs = wire["result"], wire.get("sigs")
        try:
            task, round_id, status = doc["task"], doc["round"], doc["status"]
            if doc["federation"] != self.ctx.federation_id or status not in STATUSES:
                raise ValueError("wrong federation or status")
            if isinstance(round_id, bool) or not isinstance(round_id, int) or round_id < 0:
                raise ValueError("round must be a non-negative integer")
            if not isinstance(sigs, dict):
                raise ValueError("sigs must map node ids to signatures")
        except (KeyError, TypeError, ValueError) as err:
            raise BadRequest(f"malformed result: {err}", field="body.result") from None
        roster = self.ctx.roster
        rtask = roster.task(task)
        if rtask is None:
            raise BadRequest(f"result for unknown task {task!r}", field="body.result.task")
        spec = rtask.spec
        now = self.ctx.clock()
        if now < round_end(spec, round_id):
            raise Forbidden(f"result for round {round_id} of {task!r}, which has not ended",
                            code="round_open")
        committee = roster.committee(task, round_id)
        if doc.get("committee") != [m.node_id for m in committee]:
            raise Forbidden("result names another committee than the round's", code="auth_failed")
        signers = _valid_signers(committee, doc, sigs)
        if status == "failed":
            deadline = decision_deadline(spec, round_id)
            if not signers or now < deadline - CLOCK_SKEW_S:
                raise Forbidden("a failed outcome is accepted only from a committee member, "
                                "after the round's decision deadline", code="auth_failed")
        elif len(signers) < spec.t + 1:
            raise Forbidden(f"result carries {len(signers)} valid committee signature(s); "
                            f"t + 1 = {spec.t + 1} are needed", code="auth_failed")
        return await self._store({"result": doc, "sigs": {s: sigs[s] for s in signers}})

    async def _store(self, wire: dict[str, Any]) -> tuple[PutOutcome, ResultRecord]:
        doc = wire["result"]
        outcome, record = await self.ctx.storage.put_result(
            doc["task"], int(doc["round"]), doc["status"], wire, self.ctx.clock()
        )
        if outcome is PutOutcome.STORED:
            log.info("round %d of %s: %s%s", record.round, record.task, record.status,
                     f" ({doc.get('reason')})" if doc.get("reason") else "")
            await self._record_verdicts(doc)
            for queue in list(self._subscribers):
                if queue.full():
                    self._subscribers.discard(queue)  # a stalled reader; it reconnects with since
                else:
                    queue.put_nowait(record)
        return outcome, record

    async def _record_verdicts(self, doc: dict[str, Any]) -> None:
        """A co-signed result's "invalid" verdicts go to the misbehaviour log. Only those:
        a proof that failed on the agreeing verifier shares of 2t + 1 members is certainly
        the household's doing, an "inconsistent" or "unchecked" one may be a member's lie."""
        if doc["status"] == "failed":
            return
        for entry in doc.get("excluded") or ():
            if not isinstance(entry, dict) or entry.get("verdict") != INVALID:
                continue
            household = entry.get("household")
            if isinstance(household, str) and self.ctx.member(household) is not None:
                await self.misbehaviour.report(
                    household, "invalid_report",
                    f"{doc['task']} round {doc['round']}: {INVALID_REPORT_DETAIL}")

    async def handle_fetch(self, envelope: Any, remote: str | None) -> dict[str, Any]:
        """The results this node holds after the asker's latest round of each task."""
        body = self.ctx.verify(envelope, "results-fetch", remote=remote)
        after = body.get("after")
        if not isinstance(after, dict):
            raise BadRequest("after must map task ids to round numbers", field="body.after")
        wires = []
        for rtask in self.ctx.roster.tasks:
            since = after.get(rtask.spec.task_id, -1)
            if isinstance(since, bool) or not isinstance(since, int):
                raise BadRequest("after must map task ids to round numbers",
                                 field="body.after")
            records = await self.ctx.storage.list_results(rtask.spec.task_id, 0, CATCH_UP_LIMIT)
            wires += [r.doc for r in records if r.round > since]
        return {"results": wires}

    async def catch_up(self) -> None:
        """Fetch what was pushed while this node was away, from the first member that
        answers (the founder first), and accept each result as if it had been pushed."""
        if self.ctx.signed_roster is None:
            return
        roster = self.ctx.roster
        after = {}
        for rtask in roster.tasks:
            held = await self.ctx.storage.list_results(rtask.spec.task_id, 0, CATCH_UP_LIMIT)
            after[rtask.spec.task_id] = max((r.round for r in held), default=-1)
        if not after:
            return
        others = [m for m in roster.members if m.node_id != self.ctx.node_id
                  and not m.input_only and self.ctx.peers.reachable(m)]
        others.sort(key=lambda m: m.node_id != roster.founder)

        def fetch() -> dict[str, Any]:
            return sign_envelope(self.ctx.keys, "results-fetch", self.ctx.federation_id,
                                 {"after": after}, now=self.ctx.clock())

        for member in others[:CATCH_UP_ASKS]:
            try:
                answer = await self.ctx.peers.post(member, "/peer/v1/results/fetch", fetch,
                                                   attempts=1)
            except PeerError as err:
                log.info("could not catch up on results from %s: %s", member.name, err)
                continue
            offered = answer.get("results")
            if not isinstance(offered, list):
                log.warning("%s answered a results fetch without a list", member.name)
                continue
            stored = 0
            for wire in offered:
                try:
                    outcome, _ = await self.accept(wire)
                except Forbidden as err:  # as from a push: it served a forgery
                    await self.misbehaviour.report(member.node_id, "forged_result", err.message)
                    continue
                except BadRequest as err:
                    log.warning("%s offered a result this node refuses: %s", member.name,
                                err.message)
                    continue
                stored += outcome is PutOutcome.STORED
            if stored:
                log.info("caught up on %d result(s) from %s", stored, member.name)
            return

    async def drain(self) -> None:
        if self._pushes:
            await asyncio.gather(*self._pushes, return_exceptions=True)

    async def latest(self, task: str | None, since: int, limit: int) -> list[dict[str, Any]]:
        if limit < 1 or limit > 1000:
            raise BadRequest("limit must be 1-1000", field="limit")
        return [public_view(r) for r in await self.ctx.storage.list_results(task, since, limit)]
