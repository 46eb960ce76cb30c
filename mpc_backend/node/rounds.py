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
   statements at hand, or of those t + 1 members already revealed their seeds for
   (members committed to another set sit this round out; a commitment to S itself
   fixes the DP dealers). ``|S| < min_contributors``:
   the answering members co-sign an "insufficient" outcome.
3. ``reveal`` and ``verify``: every member whose statement is used reveals the seed
   its statement committed to (once, for that set of statements only); the seeds
   give the verifier's randomness (``protocol.validity``), and every member holding
   all of S returns its signed shares of each report's verifier message. Any t + 1
   reconstruct each report's verdict, the rest cross-check it: reports that fail
   their proof leave S (and are listed in the result); so may one report whose
   failure cannot be pinned on its household, and with more the round fails.
4. With DP: t + 1 or more members deal Shamir shares of discrete-Laplace noise.
5. ``partial``: each member that holds all of S checks the forwarded statements and
   verifier shares itself (``check_contributor_set``: S is what they determine, and
   any sender it holds that S leaves out is provably unsummable or judged invalid by
   the verifier shares, its own among them), commits to S for ever, then
   asks the other committee members for their statements and commitments: a
   member that signed two different statements, a commitment to another set, or
   a statement that changes S stops it from releasing its partial sum. Because
   it commits before it looks, of two honest members asked for different sets at
   least one sees the other's commitment, so at most one set's sum is ever
   released by honest members.
6. ``sign``: any t + 1 partial sums reconstruct the total (the others
   cross-check it); the coordinator sends the decoded result and the signed
   partial sums to the members that computed them, and each signs only if its
   own partial is among them and they reconstruct exactly the published
   statistics. t + 1 signatures make the result; it is pushed to every member.

What a released result publishes besides its statistics: the exact number of
contributors (``contributors``, the size of S less the excluded reports), which DP
does not noise (the noisy ``count`` statistic is what DP protects), and the excluded
households with their verdicts.
"""

from __future__ import annotations

import asyncio
import logging
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from mpc_backend.arith import FieldRNG
from mpc_backend.crypto import b64url_decode
from mpc_backend.protocol import TaskSpec, decode_aggregate, vector_length
from mpc_backend.protocol.contributors import answering_members, contributor_set, senders_digest
from mpc_backend.protocol.validity import VERIFIER_WIDTH, excluded_reports, joint_seed, judge

from .context import NodeContext
from .cosign import reconstruct_checked
from .misbehaviour import MisbehaviourLog
from .results import ResultService, sign_result
from .roster import MemberInfo
from .round_steps import CommitteeMember, _Abort, _Answer
from .statements import StatementError
from .timeline import decision_deadline, round_end
from .verification import Excluded, Held, statements_digest
from .wire import unpack_elements

log = logging.getLogger("mpc_backend.rounds")

MAX_CLOSE_ATTEMPTS = 5


class _Fail(Exception):
    """The round cannot complete; the message is the reason recorded at the deadline."""


@dataclass(frozen=True)
class _Plan:
    senders: list[str]
    statements: list[str]  # members whose held statements determine ``senders``
    dealers: list[str] | None  # committed DP dealers; None for a fresh plan


class RoundService(CommitteeMember):
    """Schedules and coordinates closes; answers as a committee member (``CommitteeMember``)."""

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
        self._seen_seeds: dict[tuple[str, int], dict[str, str]] = {}
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

    async def restore(self) -> None:
        """After a restart: rounds this member already signed a held statement for take no
        more shares (the statement is final; a share acked after it would never be summed)."""
        now = self.ctx.clock()
        for key in await self.ctx.storage.rounds_holding_shares():
            if await self.ctx.storage.get_held_statement(*key) is not None:
                self.closing.setdefault(key, now)

    def forget_before(self, before: float) -> None:
        """Drop in-memory round bookkeeping older than ``before`` (rounds long decided)."""
        for key in [k for k, began in self.closing.items() if began < before]:
            del self.closing[key]  # in place: the ingest service holds this same dict
        self._claims = {k: c for k, c in self._claims.items() if max(c.values()) >= before}
        self._failures = {k: f for k, f in self._failures.items() if f[1] >= before}
        self._reasons = {k: r for k, r in self._reasons.items() if k in self._failures}
        self._seen_seeds = {k: s for k, s in self._seen_seeds.items() if k in self.closing}

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
        wires, held = self._bound_statements(spec, round_id, committee, answers) or (wires, held)
        if len(held) < quorum:
            raise _Fail(f"the statements this round is bound to are only {len(held)}")
        plan = _choose_plan(answers, ids, held, spec.t)
        chosen = {m: held[m] for m in plan.statements}
        statements = [wires[m] for m in plan.statements]
        signers = [committee[ids.index(m)] for m in sorted(chosen)]
        if len(plan.senders) < spec.min_contributors:
            await self._insufficient(spec, round_id, committee, signers, plan.senders, {},
                                     {**base, "statements": statements})
            return
        verifiers = [ids.index(m) for m in answering_members(chosen, plan.senders)]
        seeds, verifications, excluded = await self._verify(spec, committee, base, plan,
                                                             statements, verifiers, answers)
        senders = [s for s in plan.senders if s not in excluded]
        evidence = {**base, "statements": statements, "seeds": seeds,
                    "verifications": verifications}
        if len(senders) < spec.min_contributors:
            await self._insufficient(spec, round_id, committee, signers, senders, excluded,
                                     evidence)
            return
        group = [seat for seat in verifiers if seat in answers
                 and not _committed_elsewhere(answers[seat].body, plan, excluded)]
        noise: dict[str, dict[str, str]] = {}
        dealers: list[str] = []
        if spec.dp_epsilon is not None:
            group, dealers, noise = await self._gather_noise(spec, committee, base, answers,
                                                             group, plan.dealers)

        def partial_body(member: MemberInfo) -> dict[str, Any]:
            return {**evidence, "senders": senders, "dealers": dealers,
                    "noise": {dealer: deal[member.node_id] for dealer, deal in noise.items()}}

        replies = await self._ask_all([committee[s] for s in group], "partial", partial_body,
                                      seats=group)
        partials, stats = self._reconstruct(spec, round_id, committee, senders, replies)
        doc = self._doc(spec, round_id, "released", contributors=len(senders),
                        statistics=stats, senders=senders, dealers=dealers, excluded=excluded)
        evidence = {str(seat): replies[seat].envelope for seat in partials}
        await self._co_sign(spec, committee, [committee[s] for s in partials], doc,
                            {**base, "partials": evidence})

    def _reconstruct(
        self, spec: TaskSpec, round_id: int, committee: list[MemberInfo], senders: list[str],
        replies: dict[int, _Answer],
    ) -> tuple[dict[int, np.ndarray], dict[str, Any]]:
        """(partial sums used, decoded statistics) from the members' partial-sum replies."""
        quorum = spec.t + 1
        digest = senders_digest(senders)
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
        if spec.dp_epsilon is None and int(total[0]) != len(senders):
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
        return partials, stats

    async def _insufficient(
        self, spec: TaskSpec, round_id: int, committee: list[MemberInfo],
        signers: list[MemberInfo], senders: list[str], excluded: Excluded,
        body: dict[str, Any],
    ) -> None:
        valid = "valid " if excluded else ""
        doc = self._doc(spec, round_id, "insufficient", contributors=len(senders),
                        reason=f"{len(senders)} {valid}contributors, at least "
                               f"{spec.min_contributors} needed", excluded=excluded)
        await self._co_sign(spec, committee, signers, doc, body)

    async def _verify(
        self,
        spec: TaskSpec,
        committee: list[MemberInfo],
        base: dict[str, Any],
        plan: _Plan,
        statements: list[Any],
        verifiers: list[int],
        answers: dict[int, _Answer],
    ) -> tuple[dict[str, str], dict[str, Any], Excluded]:
        """(revealed seeds, {seat: signed verifier shares}, excluded reports) of the plan.

        Seeds a member already saw (a close taken over) need not be revealed again, so a
        member that went down after revealing does not stop the round; every verifier is
        asked to reveal all the same, which binds it to these statements."""
        ids, me = [m.node_id for m in committee], self.ctx.node_id
        digest, seeds = statements_digest(statements), {}
        for answer in answers.values():  # each on its own: a junk seed must not hide a good one
            seen = answer.body.get("seeds")
            if answer.body.get("revealed_for") == digest and isinstance(seen, dict):
                seeds.update({m: s.hex() for m, s in
                              self._remember_seeds(spec, base["round"], statements,
                                                   seen).items()})
        ask = sorted({*verifiers, *(ids.index(m) for m in plan.statements if m not in seeds)})
        for group in ([s for s in ask if ids[s] == me], [s for s in ask if ids[s] != me]):
            reveals = await self._ask_all([committee[s] for s in group], "reveal",
                                          {**base, "statements": statements, "seeds": seeds},
                                          seats=group)
            seeds.update({m: s.hex() for m, s in self._remember_seeds(
                spec, base["round"], statements,
                {ids[seat]: a.body.get("seed") for seat, a in reveals.items()}).items()})
        missing = [committee[ids.index(m)].name for m in plan.statements if m not in seeds]
        if missing:
            raise _Fail(f"{', '.join(missing)} did not reveal the verification seed its held "
                        "statement committed to")
        joint = joint_seed(self.ctx.federation_id, spec.task_id, base["round"],
                           {m: bytes.fromhex(text) for m, text in seeds.items()})
        replies = await self._ask_all([committee[s] for s in verifiers], "verify",
                                      {**base, "statements": statements, "seeds": seeds},
                                      seats=verifiers)
        digest, count = senders_digest(plan.senders), len(plan.senders)
        shares: dict[int, np.ndarray] = {}
        for seat, reply in replies.items():
            try:
                if (reply.body["senders_digest"], reply.body["joint"]) != (digest, joint.hex()):
                    raise ValueError("verifier shares for another set or randomness")
                shares[seat] = unpack_elements(b64url_decode(reply.body["verifier"]),
                                               count * VERIFIER_WIDTH).reshape(count, -1)
            except (KeyError, ValueError, TypeError) as err:
                log.warning("bad verifier shares from seat %d: %s", seat, err)
        if len(shares) < spec.t + 1:
            raise _Fail(f"only {len(shares)} of {len(committee)} committee members returned "
                        "verifier shares")
        try:
            excluded = excluded_reports(plan.senders, judge(shares, spec.t))
        except ValueError as err:
            raise _Fail(str(err)) from None
        if excluded:
            names = [f"{self._name(h)} ({v})" for h, v in sorted(excluded.items())]
            log.warning("%s round %d: left out %d report(s) that failed verification: %s",
                        spec.task_id, base["round"], len(excluded), ", ".join(names))
        return seeds, {str(seat): replies[seat].envelope for seat in shares}, excluded

    def _name(self, node_id: str) -> str:
        info = self.ctx.member(node_id)
        return info.name if info else node_id

    def _bound_statements(
        self, spec: TaskSpec, round_id: int, committee: list[MemberInfo],
        answers: dict[int, _Answer],
    ) -> tuple[dict[str, Any], Held] | None:
        """The statements members already revealed their seeds for, if authentic and
        reported by t + 1 members or by this one (one member's claim alone must not steer
        the close): a close taken over after the reveal must use exactly them."""
        me = [m.node_id for m in committee].index(self.ctx.node_id)
        claims: dict[str, list[int]] = {}
        for seat, answer in answers.items():
            digest = answer.body.get("revealed_for")
            if isinstance(digest, str):
                claims.setdefault(digest, []).append(seat)
        for digest, seats in sorted(claims.items(), key=lambda c: (-len(c[1]), c[0])):
            if len(seats) < spec.t + 1 and me not in seats:
                continue
            for seat in seats:
                wires = answers[seat].body.get("bound_statements")
                try:
                    if not isinstance(wires, list):
                        raise StatementError("bound statements must be a list")
                    verified = [self._verify_statement(w, spec, round_id, committee)
                                for w in wires]
                    if statements_digest(wires) != digest:
                        raise StatementError("bound statements do not match their digest")
                except StatementError as err:
                    log.warning("%s round %d: ignoring the bound statements of seat %d: %s",
                                spec.task_id, round_id, seat, err)
                    continue
                return ({m: w for (m, _), w in zip(verified, wires, strict=True)},
                        dict(verified))
        return None

    async def _collect_statements(
        self, spec: TaskSpec, round_id: int, committee: list[MemberInfo],
        answers: dict[int, _Answer],
    ) -> tuple[dict[str, Any], Held]:
        """The authentic held statements among ``answers``: (wire forms, sender sets)."""
        seen = await self._statements_in(answers, spec, round_id, committee)
        return ({m: body["statement"] for m, (_, body) in seen.items()},
                {m: senders for m, (senders, _) in seen.items()})

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


def full_set(committed: dict[str, Any]) -> list[str] | None:
    """The contributor set a member's commitment was made from (the summed and the
    excluded senders); None if its answer does not describe one."""
    senders, excluded = committed.get("senders"), committed.get("excluded") or []
    if not (isinstance(senders, list) and all(isinstance(s, str) for s in senders)
            and isinstance(excluded, list)
            and all(isinstance(e, list) and len(e) == 2 and isinstance(e[0], str)
                    for e in excluded)):
        return None
    return sorted([*senders, *(e[0] for e in excluded)])


def _committed_elsewhere(body: dict[str, Any], plan: _Plan, excluded: Excluded) -> bool:
    """Whether a member committed to another set, other verdicts or other DP dealers."""
    committed = body.get("committed")
    return isinstance(committed, dict) and (
        full_set(committed) != plan.senders
        or committed.get("excluded") != [[h, v] for h, v in sorted(excluded.items())]
        or (plan.dealers is not None and committed.get("dealers") != plan.dealers)
    )


def _choose_plan(answers: dict[int, _Answer], ids: list[str], held: Held, t: int) -> _Plan:
    """The statements, contributor set and DP dealers to close with.

    Every statement at hand (or, after a reveal, every bound statement) and the set
    they determine: that is what each member's own check (after its cross-check)
    insists on, so no other set can be finished by honest members. A commitment to
    another set, say one a lying member made to its own chosen set, only takes that
    member out of the group. Members already committed to this very set fix its DP
    dealers.
    """
    senders = contributor_set(held, t)
    dealer_sets: dict[tuple[str, ...], int] = {}
    for answer in answers.values():
        committed = answer.body.get("committed")
        if isinstance(committed, dict) and full_set(committed) == senders:
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
