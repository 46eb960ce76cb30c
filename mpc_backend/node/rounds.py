"""Closing a round: held statements, one derived contributor set, partial sums, co-signing.

Who closes: every committee member holding shares for a round schedules the
close at ``round end + grace + seat * takeover`` (seat = position in the
committee). Seat 0 normally closes it; if it is down, seat 1 takes over, and so
on. A member asked by another coordinator holds its own attempt back for one
``takeover_s`` per coordinator (a claim is honoured once: re-asking does not
extend it). Whatever happens, at the decision deadline
(``timeline.decision_deadline``: two periods after the round's end, the same for
every member) every member still holding the round's shares decides "failed" by
itself, deletes the shares and refuses every further step of that round.

The close, driven by the coordinator (all calls signed, with timeouts and
bounded retries; the decisions are the pure functions of
``protocol.contributors``):

1. ``held``: every committee member signs the set of senders it holds (its held
   statement, once per round, kept as a tombstone) and stops accepting shares.
   Fewer than t + 1 statements: the round cannot complete.
2. The contributor set S is the set of senders named by at least t + 1 of the
   statements at hand (members committed to another set sit this round out; a
   commitment to S itself fixes the DP dealers). ``|S| < min_contributors``:
   the answering members co-sign an "insufficient" outcome.
3. With DP: t + 1 or more members deal Shamir shares of discrete-Laplace noise.
4. ``partial``: each member that holds all of S checks the forwarded statements
   itself (``check_contributor_set``: S is what they determine, and any sender it
   holds that S leaves out is provably unsummable), commits to S for ever, then
   asks the other committee members for their statements and commitments: a
   member that signed two different statements, a commitment to another set, or
   a statement that changes S stops it from releasing its partial sum. Because
   it commits before it looks, of two honest members asked for different sets at
   least one sees the other's commitment, so at most one set's sum is ever
   released by honest members.
5. ``sign``: any t + 1 partial sums reconstruct the total (the others
   cross-check it); the coordinator sends the decoded result and the signed
   partial sums to the members that computed them, and each signs only if its
   own partial is among them and they reconstruct exactly the published
   statistics. t + 1 signatures make the result; it is pushed to every member.

What a released DP result publishes: the noisy statistics, and also the exact
number of contributors (``contributors``, the size of S), which is not noised;
the noisy ``count`` statistic is what DP protects.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from mpc_backend.arith import FieldRNG, field_add, field_sum_rows, shamir_share
from mpc_backend.crypto import (
    AuthError,
    DecryptionError,
    b64url_decode,
    b64url_encode,
    seal_share,
    share_aad,
    sign_envelope,
    verify_envelope,
)
from mpc_backend.protocol import TaskSpec, decode_aggregate, noise_vector, to_field, vector_length
from mpc_backend.protocol.contributors import (
    SetRefused,
    answering_members,
    check_contributor_set,
    contributor_set,
    senders_digest,
)
from mpc_backend.storage import RoundCommit

from .context import MAX_MESSAGE_AGE_S, NodeContext
from .cosign import check_frame, check_released, reconstruct_checked
from .errors import BadRequest, Conflict, Forbidden, NodeError, NotFound, Unprocessable
from .misbehaviour import MisbehaviourLog
from .peers import PeerError, PeerRejected
from .results import STATUSES, ResultService, sign_result
from .roster import MemberInfo
from .statements import StatementError, sign_held, verify_held
from .timeline import decision_deadline, round_end
from .wire import pack_elements, unpack_elements

log = logging.getLogger("mpc_backend.rounds")

Handler = Callable[[Any, str | None], Awaitable[dict[str, Any]]]
Held = dict[str, frozenset[str]]


def noise_context(task_id: str) -> str:
    """Share context for noise shares: never equal to a real task id (those have no '/')."""
    return f"{task_id}/noise"


MAX_CLOSE_ATTEMPTS = 5


class _Abort(Exception):
    """A member committed to another coordinator's set meanwhile; retry later."""


class _Fail(Exception):
    """The round cannot complete; the message is the reason recorded at the deadline."""


@dataclass(frozen=True)
class _Answer:
    body: dict[str, Any]
    envelope: dict[str, Any]  # the signed reply, forwarded as evidence where needed


@dataclass(frozen=True)
class _Plan:
    senders: list[str]
    statements: list[str]  # members whose held statements determine ``senders``
    dealers: list[str] | None  # committed DP dealers; None for a fresh plan


class RoundService:
    def __init__(
        self, ctx: NodeContext, results: ResultService, misbehaviour: MisbehaviourLog
    ) -> None:
        self.ctx = ctx
        self.results = results
        self.misbehaviour = misbehaviour
        self.closing: dict[tuple[str, int], float] = {}  # round -> when closing began
        self._claims: dict[tuple[str, int], dict[str, float]] = {}  # coordinator -> first ask
        self._running: dict[tuple[str, int], asyncio.Task[None]] = {}
        self._failures: dict[tuple[str, int], tuple[int, float]] = {}  # count, retry not before
        self._reasons: dict[tuple[str, int], str] = {}  # why closing failed, for the deadline
        self._rng = FieldRNG()
        self.closed = 0

    # -- scheduling -------------------------------------------------------------
    async def scheduler_loop(self) -> None:
        tick = min(0.5, self.ctx.config.timing.grace_s / 4)
        while True:
            await asyncio.sleep(tick)
            try:
                await self.tick()
            except Exception:  # the scheduler must outlive any one bad round
                log.exception("round scheduler tick failed")

    async def tick(self) -> None:
        if self.ctx.signed_roster is None:
            return
        roster = self.ctx.roster
        timing = self.ctx.config.timing
        now = self.ctx.clock()
        for task_id, round_id in await self.ctx.storage.rounds_holding_shares():
            key = (task_id, round_id)
            rtask = roster.task(task_id)
            if rtask is None or key in self._running:
                continue
            try:
                seats = [m.node_id for m in roster.committee(task_id, round_id)]
            except ValueError:  # too few members could serve that round; nothing to close
                continue
            if self.ctx.node_id not in seats:
                continue
            if now >= decision_deadline(rtask.spec, round_id):
                await self._expire(rtask.spec, round_id)
                continue
            start = round_end(rtask.spec, round_id) + timing.grace_s
            if now < start + seats.index(self.ctx.node_id) * timing.takeover_s:
                continue
            claims = self._claims.get(key, {})
            if any(c != self.ctx.node_id and now - at < timing.takeover_s
                   for c, at in claims.items()):
                continue
            if now < self._failures.get(key, (0, 0.0))[1]:
                continue
            task = asyncio.create_task(self._close_guarded(task_id, round_id))
            self._running[key] = task
            task.add_done_callback(lambda _t, k=key: self._running.pop(k, None))

    async def _expire(self, spec: TaskSpec, round_id: int) -> None:
        """The deadline passed undecided: record "failed" (which deletes the shares) and push."""
        key = (spec.task_id, round_id)
        allowed = decision_deadline(spec, round_id) - round_end(spec, round_id)
        reason = self._reasons.pop(key, None) or (
            f"not released within {allowed:.0f} s of the round's end")
        doc = self._doc(spec, round_id, "failed", reason=reason)
        await self.results.publish(doc, {self.ctx.node_id: sign_result(self.ctx, doc)})

    def forget_before(self, before: float) -> None:
        """Drop in-memory round bookkeeping older than ``before`` (rounds long decided)."""
        for key in [k for k, began in self.closing.items() if began < before]:
            del self.closing[key]  # in place: the ingest service holds this same dict
        self._claims = {k: c for k, c in self._claims.items() if max(c.values()) >= before}
        self._failures = {k: f for k, f in self._failures.items() if f[1] >= before}
        self._reasons = {k: r for k, r in self._reasons.items() if k in self._failures}

    async def drain(self) -> None:
        if self._running:
            await asyncio.gather(*self._running.values(), return_exceptions=True)

    async def _close_guarded(self, task_id: str, round_id: int) -> None:
        key = (task_id, round_id)
        try:
            await self.close_round(task_id, round_id)
        except Exception as err:
            failures = self._failures.get(key, (0, 0.0))[0] + 1
            delay = self.ctx.config.timing.takeover_s * 2 ** (failures - 1)
            self._failures[key] = (failures, self.ctx.clock() + delay)
            if isinstance(err, _Fail):
                self._reasons[key] = str(err)
            if failures > 1:
                log.debug("closing %s round %d failed again (%d): %s", task_id, round_id,
                          failures, err)
            elif isinstance(err, _Fail):
                log.warning("closing %s round %d failed: %s", task_id, round_id, err)
            elif isinstance(err, _Abort):
                log.info("closing %s round %d: %s; retrying later", task_id, round_id, err)
            else:
                log.exception("closing %s round %d failed; retrying later", task_id, round_id)
            if failures >= MAX_CLOSE_ATTEMPTS:
                self._failures[key] = (failures, math.inf)  # the deadline decides now
        else:
            self._failures.pop(key, None)
            self._reasons.pop(key, None)

    # -- coordinator --------------------------------------------------------------
    async def close_round(self, task_id: str, round_id: int) -> None:
        roster = self.ctx.roster
        spec = roster.tasks_by_id[task_id].spec
        await self._close(spec, round_id, roster.committee(task_id, round_id))

    async def _close(self, spec: TaskSpec, round_id: int, committee: list[MemberInfo]) -> None:
        key = (spec.task_id, round_id)
        self._claims.setdefault(key, {}).setdefault(self.ctx.node_id, self.ctx.clock())
        base = {"task": spec.task_id, "round": round_id}
        quorum = spec.t + 1
        ids = [m.node_id for m in committee]

        answers = await self._ask_all(committee, "held", base)
        for answer in answers.values():
            if isinstance(answer.body.get("result"), dict):
                await self.results.accept(answer.body["result"])
                return
        wires, held = await self._collect_statements(spec, round_id, committee, answers)
        if len(held) < quorum:
            raise _Fail(f"only {len(held)} of {len(committee)} committee members reachable")
        plan = _choose_plan(answers, ids, held, spec.t)
        chosen = {m: held[m] for m in plan.statements}
        statements = [wires[m] for m in plan.statements]
        if len(plan.senders) < spec.min_contributors:
            signers = [committee[ids.index(m)] for m in sorted(chosen)]
            doc = self._doc(spec, round_id, "insufficient", contributors=len(plan.senders),
                            reason=f"{len(plan.senders)} contributors, at least "
                                   f"{spec.min_contributors} needed")
            await self._co_sign(spec, committee, signers, doc, {**base, "statements": statements})
            return
        group = [ids.index(m) for m in answering_members(chosen, plan.senders)
                 if not _committed_elsewhere(answers[ids.index(m)].body, plan)]
        noise: dict[str, dict[str, str]] = {}
        dealers: list[str] = []
        if spec.dp_epsilon is not None:
            group, dealers, noise = await self._gather_noise(spec, committee, base, answers,
                                                             group, plan.dealers)

        def partial_body(member: MemberInfo) -> dict[str, Any]:
            return {**base, "senders": plan.senders, "statements": statements,
                    "dealers": dealers,
                    "noise": {dealer: deal[member.node_id] for dealer, deal in noise.items()}}

        replies = await self._ask_all([committee[s] for s in group], "partial", partial_body,
                                      seats=group)
        digest = senders_digest(plan.senders)
        partials: dict[int, np.ndarray] = {}
        for seat, reply in replies.items():
            try:
                if reply.body["senders_digest"] != digest:
                    raise ValueError("partial sum over another contributor set")
                partials[seat] = unpack_elements(b64url_decode(reply.body["partial"]),
                                                 vector_length(spec))
            except (KeyError, ValueError, TypeError) as err:
                log.warning("bad partial sum from seat %d: %s", seat, err)
        if len(partials) < quorum:
            raise _Fail(f"only {len(partials)} of {len(committee)} committee members returned "
                        "partial sums")
        total = reconstruct_checked(partials, spec.t)
        if total is None:
            raise _Fail("committee partial sums are inconsistent (corrupted share or faulty "
                        "member)")
        if spec.dp_epsilon is None and int(total[0]) != len(plan.senders):
            raise _Fail("aggregate is inconsistent: a contribution was malformed or a "
                        "committee member is faulty")
        try:
            stats = decode_aggregate(spec, total, noisy=spec.dp_epsilon is not None)
        except ValueError as err:
            # The details quote aggregate values: they stay out of the result and the logs.
            checks = ", ".join(getattr(err, "kinds", ())) or type(err).__name__
            log.warning("%s round %d: aggregate does not decode (failed checks: %s)",
                        spec.task_id, round_id, checks)
            raise _Fail("aggregate is inconsistent: a contribution was malformed or a "
                        "committee member is faulty") from None
        doc = self._doc(spec, round_id, "released", contributors=len(plan.senders),
                        statistics=stats, senders=plan.senders, dealers=dealers)
        evidence = {str(seat): replies[seat].envelope for seat in partials}
        await self._co_sign(spec, committee, [committee[s] for s in partials], doc,
                            {**base, "partials": evidence})

    async def _collect_statements(
        self, spec: TaskSpec, round_id: int, committee: list[MemberInfo],
        answers: dict[int, _Answer],
    ) -> tuple[dict[str, Any], Held]:
        """The authentic held statements among ``answers``; a bad one is misbehaviour."""
        wires: dict[str, Any] = {}
        held: Held = {}
        for seat, answer in answers.items():
            member = committee[seat].node_id
            try:
                signer, senders = self._verify_statement(answer.body.get("statement"), spec,
                                                         round_id, committee)
                if signer != member:
                    raise StatementError("answered held with another member's statement")
            except StatementError as err:
                await self.misbehaviour.report(member, "bad_signature", str(err))
                continue
            wires[member], held[member] = answer.body["statement"], senders
        return wires, held

    async def _co_sign(
        self,
        spec: TaskSpec,
        committee: list[MemberInfo],
        signers: list[MemberInfo],
        doc: dict[str, Any],
        body: dict[str, Any],
    ) -> None:
        """Collect t + 1 signatures over ``doc`` from ``signers`` and publish it."""
        ids = [m.node_id for m in committee]
        seats = [ids.index(m.node_id) for m in signers]
        answers = await self._ask_all(signers, "sign", {**body, "doc": doc}, seats=seats)
        sigs = {ids[seat]: a.body["signature"] for seat, a in answers.items()
                if isinstance(a.body.get("signature"), str)}
        if len(sigs) < spec.t + 1:
            raise _Fail(f"only {len(sigs)} committee member(s) co-signed the {doc['status']} "
                        f"outcome, {spec.t + 1} needed")
        await self.results.accept({"result": doc, "sigs": sigs})
        record = await self.ctx.storage.get_result(spec.task_id, doc["round"])
        if record is not None:
            await self.results.publish(record.doc["result"], record.doc["sigs"])
        self.closed += 1

    def _doc(
        self,
        spec: TaskSpec,
        round_id: int,
        status: str,
        *,
        reason: str | None = None,
        contributors: int | None = None,
        statistics: dict[str, Any] | None = None,
        senders: Sequence[str] | None = None,
        dealers: Sequence[str] = (),
    ) -> dict[str, Any]:
        assert status in STATUSES
        return {
            "federation": self.ctx.federation_id,
            "task": spec.task_id,
            "metric": spec.metric,
            "unit": spec.unit,
            "round": round_id,
            "round_start": float(round_id * spec.period_s),
            "round_end": round_end(spec, round_id),
            "status": status,
            "reason": reason,
            "contributors": contributors,
            "statistics": statistics,
            "dp_epsilon": spec.dp_epsilon,
            "committee": [m.node_id for m in self.ctx.roster.committee(spec.task_id, round_id)],
            "senders_digest": None if senders is None else senders_digest(senders),
            "dealers": list(dealers),
            "coordinator": self.ctx.node_id,
            "released_at": self.ctx.clock(),
        }

    async def _gather_noise(
        self,
        spec: TaskSpec,
        committee: list[MemberInfo],
        base: dict[str, Any],
        answers: dict[int, _Answer],
        group: list[int],
        committed_dealers: list[str] | None,
    ) -> tuple[list[int], list[str], dict[str, dict[str, str]]]:
        """(group, dealer ids, {dealer: deal}) for a DP round; _Fail if it cannot be private.

        A fresh round: the group's members deal and only those that did take
        part. A committed plan: its dealers deal again (a deal is stored, so it is
        the same deal); a member not yet committed can join only if every one of
        those deals is at hand, else only committed members' stored sums count.
        """
        ids = [m.node_id for m in committee]
        dealer_seats = group if committed_dealers is None else [
            seat for seat, node_id in enumerate(ids) if node_id in committed_dealers]
        deals = await self._ask_all([committee[s] for s in dealer_seats], "noise", base,
                                    seats=dealer_seats)
        noise = {ids[seat]: a.body["deal"] for seat, a in deals.items()
                 if _complete_deal(a.body, ids)}
        quorum = spec.t + 1
        if committed_dealers is None:
            group = [seat for seat in group if ids[seat] in noise]
            if len(group) < quorum:
                raise _Fail(f"only {len(group)} of {len(committee)} committee members dealt DP "
                            f"noise, at least {quorum} needed")
            return group, sorted(noise), noise
        complete = set(noise) == set(committed_dealers)
        group = [seat for seat in group if isinstance(answers[seat].body.get("committed"), dict)
                 or (complete and ids[seat] in committed_dealers)]
        if len(group) < quorum:
            raise _Fail("the DP noise dealers this round was committed to are not all "
                        f"reachable, and fewer than {quorum} members committed")
        return group, list(committed_dealers), noise if complete else {}

    async def _ask_all(
        self,
        members: Sequence[MemberInfo],
        step: str,
        body: dict[str, Any] | Callable[[MemberInfo], dict[str, Any]],
        *,
        seats: Sequence[int] | None = None,
        attempts: int | None = None,
        timeout_s: float | None = None,
    ) -> dict[int, _Answer]:
        """Ask members for one step; {seat: verified answer} of those that answered."""
        seat_of = list(seats) if seats is not None else list(range(len(members)))

        async def ask(member: MemberInfo) -> _Answer | None:
            payload = body(member) if callable(body) else body

            def envelope() -> dict[str, Any]:
                return sign_envelope(self.ctx.keys, f"round-{step}", self.ctx.federation_id,
                                     payload, now=self.ctx.clock())

            try:
                if member.node_id == self.ctx.node_id:
                    reply = await self.handlers()[step](envelope(), "local")
                elif member.url is None:
                    return None
                else:
                    reply = await self.ctx.peers.post(member.url, f"/peer/v1/round/{step}",
                                                      envelope, attempts=attempts,
                                                      timeout_s=timeout_s)
                signed = reply.get("reply")
                verified = verify_envelope(
                    signed,
                    lambda s: member.signing_public if s == member.node_id else None,
                    f"round-{step}-reply", self.ctx.federation_id, MAX_MESSAGE_AGE_S,
                    now=self.ctx.clock(),
                )
                return _Answer(verified, signed)
            except PeerRejected as err:
                if err.code == "committed_elsewhere":
                    raise _Abort(str(err)) from None
                log.warning("%s refused %s for %s: %s", member.name, step,
                            payload.get("task"), err.peer_message)
            except (PeerError, AuthError) as err:
                log.warning("%s did not answer %s: %s", member.name, step, err)
            except Conflict as err:
                if err.code == "committed_elsewhere":
                    raise _Abort(str(err)) from None
                log.warning("local %s failed: %s", step, err)
            except NodeError as err:
                log.warning("local %s failed: %s", step, err.message)
            return None

        answers = await asyncio.gather(*(ask(m) for m in members))
        return {seat: a for seat, a in zip(seat_of, answers, strict=True) if a is not None}

    def _verify_statement(
        self, wire: Any, spec: TaskSpec, round_id: int, committee: Sequence[MemberInfo]
    ) -> tuple[str, frozenset[str]]:
        keys = {m.node_id: m.signing_public for m in committee}
        return verify_held(wire, keys.get, self.ctx.federation_id, spec.task_id, round_id)

    # -- committee member handlers -----------------------------------------------------
    def handlers(self) -> dict[str, Handler]:
        return {"held": self.handle_held, "noise": self.handle_noise,
                "partial": self.handle_partial, "sign": self.handle_sign}

    async def _request(
        self, envelope: Any, step: str, remote: str | None
    ) -> tuple[dict[str, Any], TaskSpec, int, list[MemberInfo]]:
        body = self.ctx.verify(envelope, f"round-{step}", remote=remote)
        task_id, round_id = body.get("task"), body.get("round")
        if not isinstance(task_id, str):
            raise BadRequest("task must be a string", field="body.task")
        if isinstance(round_id, bool) or not isinstance(round_id, int) or round_id < 0:
            raise BadRequest("round must be a non-negative integer", field="body.round")
        rtask = self.ctx.roster.task(task_id)
        if rtask is None:
            raise NotFound(f"unknown task {task_id!r}", field="body.task", code="unknown_task")
        committee = self.ctx.roster.committee(task_id, round_id)
        ids = [m.node_id for m in committee]
        sender = envelope["sender"]
        if sender not in ids or self.ctx.node_id not in ids:
            log.warning("refused %s for %s round %d from non-committee %s", step, task_id,
                        round_id, sender)
            raise Forbidden("sender and receiver must both sit on the round's committee",
                            code="not_on_committee")
        spec, now = rtask.spec, self.ctx.clock()
        if now < round_end(spec, round_id):
            raise Unprocessable(f"round {round_id} of {task_id!r} has not ended yet",
                                field="body.round", code="round_open")
        if now >= decision_deadline(spec, round_id):
            raise Unprocessable(f"round {round_id} of {task_id!r} is past its decision deadline",
                                field="body.round", code="round_expired")
        if sender != self.ctx.node_id and not body.get("peek"):
            # A live coordinator: hold our own close back, once per coordinator.
            self._claims.setdefault((task_id, round_id), {}).setdefault(sender, now)
        return body, spec, round_id, committee

    def _reply(self, step: str, body: dict[str, Any]) -> dict[str, Any]:
        return {"reply": sign_envelope(self.ctx.keys, f"round-{step}-reply",
                                       self.ctx.federation_id, body, now=self.ctx.clock())}

    async def _own_statement(self, spec: TaskSpec, round_id: int) -> dict[str, Any]:
        """This member's held statement for the round: signed once, then always the same."""
        storage = self.ctx.storage
        self.closing.setdefault((spec.task_id, round_id), self.ctx.clock())
        stored = await storage.get_held_statement(spec.task_id, round_id)
        if stored is None:
            senders = await storage.held_senders(spec.task_id, round_id)
            wire = sign_held(self.ctx.keys, self.ctx.federation_id, spec.task_id, round_id,
                             senders)
            stored = await storage.put_held_statement(spec.task_id, round_id, wire,
                                                      self.ctx.clock())
        return stored

    async def handle_held(self, envelope: Any, remote: str | None) -> dict[str, Any]:
        _, spec, round_id, _ = await self._request(envelope, "held", remote)
        answer: dict[str, Any] = {"task": spec.task_id, "round": round_id}
        result = await self.ctx.storage.get_result(spec.task_id, round_id)
        if result is not None:
            answer["result"] = result.doc
        # Statement and commitment even once decided: a stored result must never hide
        # what this member summed from another member's cross-check.
        answer["statement"] = await self._own_statement(spec, round_id)
        commit = await self.ctx.storage.get_commit(spec.task_id, round_id)
        if commit is not None:
            answer["committed"] = {"senders": list(commit.senders),
                                   "statements": list(commit.statements),
                                   "dealers": list(commit.dealers)}
        return self._reply("held", answer)

    async def handle_noise(self, envelope: Any, remote: str | None) -> dict[str, Any]:
        body, spec, round_id, committee = await self._request(envelope, "noise", remote)
        if spec.dp_epsilon is None:
            raise Unprocessable(f"task {spec.task_id!r} has no DP noise", field="body.task")
        deal = await self.ctx.storage.get_noise_deal(spec.task_id, round_id)
        if deal is None:
            noise = to_field(noise_vector(spec))
            shares = shamir_share(noise, spec.t, len(committee), self._rng)
            deal = {
                m.node_id: b64url_encode(seal_share(
                    m.hpke_public, m.hpke_suite, pack_elements(shares[seat]),
                    share_aad(self.ctx.federation_id, noise_context(spec.task_id), round_id,
                              self.ctx.node_id, m.node_id),
                ))
                for seat, m in enumerate(committee)
            }
            deal = await self.ctx.storage.put_noise_deal(spec.task_id, round_id, deal,
                                                         self.ctx.clock())
        return self._reply("noise", {**body, "deal": deal})

    async def _check_noise(
        self, spec: TaskSpec, round_id: int, dealers: list[str], noise: dict[str, Any]
    ) -> None:
        """DP: t + 1 dealers, this member's own deal among them (so no one knows the total)."""
        if set(noise) != set(dealers):
            raise BadRequest("noise must carry one share from each listed dealer",
                             field="body.noise")
        if len(dealers) < spec.t + 1:
            raise Unprocessable(
                f"DP noise from {len(dealers)} dealer(s); at least {spec.t + 1} are needed so "
                "that no single member knows the total noise",
                field="body.dealers", code="insufficient_noise",
            )
        own = await self.ctx.storage.get_noise_deal(spec.task_id, round_id)
        me = self.ctx.node_id
        if own is None or noise.get(me) != own.get(me):
            raise Unprocessable("the DP noise must include this member's own deal",
                                field="body.noise", code="own_noise_missing")

    async def _partial_sum(
        self,
        spec: TaskSpec,
        round_id: int,
        committee: Sequence[MemberInfo],
        senders: list[str],
        noise: Any,
    ) -> np.ndarray:
        try:
            rows = await self.ctx.storage.load_shares(spec.task_id, round_id, senders)
        except KeyError as err:
            raise Conflict(f"cannot sum this set: {err.args[0]}", code="missing_share") from None
        length = vector_length(spec)
        matrix = np.frombuffer(b"".join(rows), dtype="<u8").astype(np.uint64).reshape(
            len(rows), length)
        total = field_sum_rows(matrix)
        dealers = {m.node_id for m in committee}
        for dealer, sealed in noise.items():
            if dealer not in dealers or not isinstance(sealed, str):
                raise BadRequest("noise dealers must be committee members", field="body.noise")
            aad = share_aad(self.ctx.federation_id, noise_context(spec.task_id), round_id,
                            dealer, self.ctx.node_id)
            try:
                share = self.ctx.keys.open_share(b64url_decode(sealed), aad)
                total = field_add(total, unpack_elements(share, length))
            except (DecryptionError, ValueError) as err:
                log.warning("rejected a noise share from %s: %s", dealer, err)
                raise Forbidden(f"noise share from {dealer} is invalid",
                                code="decryption_failed") from None
        return total


    async def _statements_of(
        self, wires: Any, spec: TaskSpec, round_id: int, committee: Sequence[MemberInfo],
        sender: str,
    ) -> Held:
        """Verified statements forwarded by ``sender``; a bad one is its misbehaviour."""
        if not isinstance(wires, list) or not 1 <= len(wires) <= len(committee):
            raise BadRequest(f"statements must list 1-{len(committee)} held statements",
                             field="body.statements")
        held: Held = {}
        for wire in wires:
            try:
                member, senders = self._verify_statement(wire, spec, round_id, committee)
            except StatementError as err:
                await self.misbehaviour.report(sender, "bad_signature",
                                               f"forwarded a bad held statement: {err}")
                raise Forbidden(str(err), field="body.statements", code="auth_failed") from None
            if member in held:
                if held[member] != senders:
                    await self.misbehaviour.report(
                        member, "equivocation",
                        f"signed two different held statements for {spec.task_id} round {round_id}")
                raise BadRequest("statements name a member twice", field="body.statements")
            held[member] = senders
        return held

    async def _refuse_set(self, requester: str, spec: TaskSpec, round_id: int,
                          why: str) -> NodeError:
        if requester != self.ctx.node_id:
            await self.misbehaviour.report(
                requester, "contributor_set_refused",
                f"{spec.task_id} round {round_id}: {why}")
        return Unprocessable(f"refused to sum this contributor set: {why}",
                             field="body.senders", code="contributor_set_refused")

    async def handle_partial(self, envelope: Any, remote: str | None) -> dict[str, Any]:
        body, spec, round_id, committee = await self._request(envelope, "partial", remote)
        requester, me = envelope["sender"], self.ctx.node_id
        senders = _sorted_ids(body.get("senders"), "senders")
        if len(senders) < spec.min_contributors:
            # Else one member could ask the others for the sums of a single household.
            raise await self._refuse_set(
                requester, spec, round_id,
                f"a partial sum needs at least {spec.min_contributors} contributors, "
                f"asked for {len(senders)}")
        dealers = _sorted_ids(body.get("dealers", []), "dealers")
        noise = body.get("noise") or {}
        if not isinstance(noise, dict):
            raise BadRequest("noise must map dealer ids to sealed shares", field="body.noise")
        if spec.dp_epsilon is None and (dealers or noise):
            raise BadRequest(f"task {spec.task_id!r} has no DP noise", field="body.noise")
        held = await self._statements_of(body.get("statements"), spec, round_id, committee,
                                         requester)
        own = await self._own_statement(spec, round_id)
        if held.get(me) != frozenset(own["statement"]["senders"]):
            raise await self._refuse_set(requester, spec, round_id,
                                         "the request does not carry this member's statement")
        try:
            check_contributor_set(me, held, senders, spec.k, spec.t)
        except SetRefused as err:
            raise await self._refuse_set(requester, spec, round_id, str(err)) from None
        key = (spec.task_id, round_id)
        commit = await self.ctx.storage.get_commit(*key)
        if commit is None:
            if spec.dp_epsilon is not None:
                await self._check_noise(spec, round_id, dealers, noise)
            partial = await self._partial_sum(spec, round_id, committee, senders, noise)
            commit = await self.ctx.storage.put_commit(RoundCommit(
                spec.task_id, round_id, tuple(senders), pack_elements(partial), requester,
                self.ctx.clock(), tuple(dealers), tuple(sorted(held)),
            ))
        if list(commit.senders) != senders or list(commit.dealers) != dealers:
            raise Conflict(
                f"this member already committed round {round_id} of {spec.task_id!r} to "
                "another contributor set or other noise dealers",
                code="committed_elsewhere",
            )
        await self._cross_check(spec, round_id, committee, held, commit, requester)
        return self._reply("partial", {"task": spec.task_id, "round": round_id,
                                       "senders_digest": senders_digest(senders),
                                       "dealers": dealers,
                                       "partial": b64url_encode(commit.partial)})

    async def _cross_check(
        self,
        spec: TaskSpec,
        round_id: int,
        committee: list[MemberInfo],
        held: Held,
        commit: RoundCommit,
        requester: str,
    ) -> None:
        """After committing, look at the other members before releasing the partial sum.

        Asks every other committee member (one short attempt each) for its held
        statement and commitment. Refuses if one signed a statement different
        from the forwarded one, committed to another set, or holds a statement
        the coordinator left out that changes the set. Committing first is what
        makes two honest members asked for different sets unable to both release.
        """
        me = self.ctx.node_id
        merged = dict(held)
        for member, (senders, answer) in (await self._peek(spec, round_id, committee)).items():
            name = self.ctx.roster.by_id[member].name
            if member in held and held[member] != senders:
                await self.misbehaviour.report(
                    member, "equivocation",
                    f"signed two different held statements for {spec.task_id} round {round_id}")
                raise Conflict(f"{name} signed two different held statements for this "
                               "round; not releasing a partial sum", code="equivocation")
            merged[member] = senders
            if not _same_sum(answer, commit):
                log.warning("%s round %d: %s committed to or holds a result over another "
                            "contributor set; not releasing a partial sum", spec.task_id,
                            round_id, name)
                raise Conflict(f"{name} committed to another contributor set for this round",
                               code="conflicting_commitment")
        try:
            check_contributor_set(me, merged, list(commit.senders), spec.k, spec.t)
        except SetRefused as err:
            raise await self._refuse_set(
                requester, spec, round_id,
                f"with the statements it left out: {err}") from None

    async def _peek(
        self, spec: TaskSpec, round_id: int, committee: list[MemberInfo]
    ) -> dict[str, tuple[frozenset[str], dict[str, Any]]]:
        """{member: (its held statement, its whole answer)} of the other committee members
        that answer one short attempt; a bad statement is recorded and left out."""
        me = self.ctx.node_id
        seats = [seat for seat, m in enumerate(committee) if m.node_id != me]
        answers = await self._ask_all(
            [committee[s] for s in seats], "held",
            {"task": spec.task_id, "round": round_id, "peek": True},
            seats=seats, attempts=1, timeout_s=self.ctx.config.timing.peer_timeout_s / 3)
        seen: dict[str, tuple[frozenset[str], dict[str, Any]]] = {}
        for seat, answer in answers.items():
            member = committee[seat].node_id
            try:
                signer, senders = self._verify_statement(answer.body.get("statement"), spec,
                                                         round_id, committee)
                if signer != member:
                    raise StatementError("answered with another member's statement")
            except StatementError as err:
                await self.misbehaviour.report(member, "bad_signature", str(err))
                continue
            seen[member] = (senders, answer.body)
        return seen

    async def handle_sign(self, envelope: Any, remote: str | None) -> dict[str, Any]:
        body, spec, round_id, committee = await self._request(envelope, "sign", remote)
        requester = envelope["sender"]
        doc = body.get("doc")
        try:
            if not isinstance(doc, dict):
                raise ValueError("doc must be a result document")
            await self._check_result(spec, round_id, committee, requester, doc, body)
        except ValueError as err:
            await self.misbehaviour.report(requester, "forged_result",
                                           f"{spec.task_id} round {round_id}: {err}")
            raise Unprocessable(f"will not sign this result: {err}", field="body.doc",
                                code="result_refused") from None
        return self._reply("sign", {"task": spec.task_id, "round": round_id,
                                    "signature": sign_result(self.ctx, doc)})

    async def _check_result(
        self,
        spec: TaskSpec,
        round_id: int,
        committee: list[MemberInfo],
        requester: str,
        doc: dict[str, Any],
        body: dict[str, Any],
    ) -> None:
        """ValueError unless ``doc`` is exactly what this member's view of the round gives."""
        check_frame(doc, self._doc(spec, round_id, "released"), requester)
        me = self.ctx.node_id
        if doc.get("status") == "insufficient":
            if await self.ctx.storage.get_commit(spec.task_id, round_id) is not None:
                raise ValueError("this member already summed a contributor set for the round")
            held = await self._statements_of(body.get("statements"), spec, round_id, committee,
                                             requester)
            own = await self._own_statement(spec, round_id)
            if held.get(me) != frozenset(own["statement"]["senders"]):
                raise ValueError("the statements leave out this member's own")
            senders = contributor_set(held, spec.t)
            try:
                check_contributor_set(me, held, senders, spec.k, spec.t, must_hold=False)
            except SetRefused as err:
                raise ValueError(str(err)) from None
            if doc.get("contributors") != len(senders) or len(senders) >= spec.min_contributors:
                raise ValueError("the contributor count does not make the round insufficient")
            if doc.get("statistics") is not None or doc.get("senders_digest") is not None:
                raise ValueError("an insufficient outcome carries no statistics")
            return
        if doc.get("status") != "released" or doc.get("reason") is not None:
            raise ValueError("only released or insufficient outcomes are co-signed")
        commit = await self.ctx.storage.get_commit(spec.task_id, round_id)
        if commit is None:
            raise ValueError("this member computed no partial sum for the round")
        # Every member that can be reached and holds the whole set must have its partial
        # among those used: with exactly t + 1, a colluder's partial could be solved for
        # any total; an honest extra one pins the polynomial.
        required = [committee.index(self.ctx.roster.by_id[m])
                    for m, (senders, _) in (await self._peek(spec, round_id, committee)).items()
                    if senders >= set(commit.senders)]
        check_released(spec, committee, self.ctx.node_id, commit, doc, body.get("partials"),
                       self.ctx.federation_id, self.ctx.clock(), required)


def _same_sum(answer: dict[str, Any], commit: RoundCommit) -> bool:
    """Whether a member's held answer is consistent with our commitment: no commitment to
    another set or dealers, and no stored result over another set."""
    committed = answer.get("committed")
    if isinstance(committed, dict) and (committed.get("senders") != list(commit.senders)
                                        or committed.get("dealers") != list(commit.dealers)):
        return False
    result = answer.get("result")
    if isinstance(result, dict) and isinstance(result.get("result"), dict):
        doc = result["result"]
        if doc.get("status") == "released" and (
            doc.get("senders_digest") != senders_digest(commit.senders)
            or doc.get("dealers") != list(commit.dealers)
        ):
            return False
    return True


def _committed_elsewhere(body: dict[str, Any], plan: _Plan) -> bool:
    committed = body.get("committed")
    return isinstance(committed, dict) and (
        committed.get("senders") != plan.senders
        or (plan.dealers is not None and committed.get("dealers") != plan.dealers)
    )


def _choose_plan(answers: dict[int, _Answer], ids: list[str], held: Held, t: int) -> _Plan:
    """The statements, contributor set and DP dealers to close with.

    Always every statement at hand and the set they determine: that is what each
    member's own check (after its cross-check) insists on, so no other set can be
    finished by honest members. A commitment to another set, say one a lying
    member made to its own chosen set, only takes that member out of the group.
    Members already committed to this very set fix its DP dealers.
    """
    senders = contributor_set(held, t)
    dealer_sets: dict[tuple[str, ...], int] = {}
    for answer in answers.values():
        committed = answer.body.get("committed")
        if isinstance(committed, dict) and committed.get("senders") == senders:
            dealers = tuple(committed.get("dealers") or ())
            dealer_sets[dealers] = dealer_sets.get(dealers, 0) + 1
    if not dealer_sets:
        return _Plan(senders, sorted(held), None)
    # Two dealer sets for one contributor set: continue the one more members hold.
    dealers = max(dealer_sets, key=lambda d: (dealer_sets[d], d))
    return _Plan(senders, sorted(held), list(dealers))


def _complete_deal(answer: dict[str, Any], ids: list[str]) -> bool:
    """Whether a noise answer carries a sealed share for every committee member."""
    deal = answer.get("deal")
    return isinstance(deal, dict) and all(isinstance(deal.get(i), str) for i in ids)


def _sorted_ids(value: Any, name: str) -> list[str]:
    if (
        not isinstance(value, list)
        or not all(isinstance(v, str) for v in value)
        or value != sorted(set(value))
    ):
        raise BadRequest(f"{name} must be a sorted list of distinct node ids",
                         field=f"body.{name}")
    return value
