"""Closing a round: agree on one contributor set, sum shares, reconstruct, release.

Who closes: every committee member holding shares for a round schedules the
close at ``round end + grace + seat * takeover`` (seat = position in the
committee). Seat 0 normally closes it and pushes the result, which removes the
round from everyone's schedule; if seat 0 is down, seat 1 takes over, and so on.
A member asked by a coordinator holds its own attempt back for ``takeover_s``
after each request (the configuration guarantees one step of a close, even one
waiting out a dead member, is shorter). A close that keeps failing is retried
with growing delays and, after a few attempts, the round is published as failed.

The close, driven by the coordinator (all calls signed, with timeouts and
bounded retries):

1. ``held``: every committee member reports the senders it holds shares from
   (and stops accepting shares for the round). Fewer than t + 1 answers: the
   round fails ("only N of K committee members reachable"), recorded and pushed.
2. The contributor set S is the largest intersection of held sets over any
   t + 1 or more answering members (a household whose share missed one member
   still counts). If members already committed (an earlier coordinator got that
   far), the committed plan (S and its noise dealers) backed by the most
   reachable members is continued; if no committed plan has t + 1 members able
   to finish it, the round fails rather than wait for ever.
   ``|S| < min_contributors``: the round is "insufficient", nothing is released.
3. With DP: each member of the chosen group deals Shamir shares of its own
   discrete-Laplace noise vector, sealed to each committee member; each vector
   alone gives full-scale privacy. Only members that dealt take part, and fewer
   than t + 1 dealers fail the round: with one dealer, that member (perhaps the
   coordinator) would know the total noise and could remove it.
4. ``partial``: each member of the group commits to S and the dealer set (once:
   it refuses any other set, so no two partial sums can be differenced to
   expose a household) and returns the sum of its shares over S plus its noise
   shares. A member refuses sets smaller than ``min_contributors`` (else one
   member could ask the others for the partial sums of a single household), and
   with DP refuses unless the noise includes its own deal and t + 1 dealers.
5. Any t + 1 partial sums reconstruct the total (Lagrange at 0); a further one
   cross-checks it. The total is decoded, signed and pushed to every member.

What a released DP result publishes: the noisy statistics, and also the exact
number of contributors (``contributors``, the size of S), which is not noised;
the noisy ``count`` statistic is what DP protects. Whether a given household
took part is therefore visible to members from the exact count across rounds.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import math
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import numpy as np

from mpc_backend.arith import FieldRNG, field_add, field_sum_rows, shamir_reconstruct, shamir_share
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
from mpc_backend.storage import RoundCommit

from .context import MAX_MESSAGE_AGE_S, NodeContext
from .errors import BadRequest, Conflict, Forbidden, NodeError, NotFound, Unprocessable
from .peers import PeerError, PeerRejected
from .results import ResultService
from .roster import MemberInfo
from .wire import pack_elements, unpack_elements

log = logging.getLogger("mpc_backend.rounds")

Handler = Callable[[Any, str | None], Awaitable[dict[str, Any]]]


def noise_context(task_id: str) -> str:
    """Share context for noise shares: never equal to a real task id (those have no '/')."""
    return f"{task_id}/noise"


MAX_CLOSE_ATTEMPTS = 5


class _Abort(Exception):
    """A member committed to another coordinator's set meanwhile; retry later."""


class _Fail(Exception):
    """The round cannot complete; the message is the published reason."""


class RoundService:
    def __init__(self, ctx: NodeContext, results: ResultService) -> None:
        self.ctx = ctx
        self.results = results
        self.closing: dict[tuple[str, int], float] = {}  # round -> when closing began
        self._claims: dict[tuple[str, int], tuple[str, float]] = {}
        self._running: dict[tuple[str, int], asyncio.Task[None]] = {}
        self._failures: dict[tuple[str, int], tuple[int, float]] = {}  # count, retry not before
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
            end = (round_id + 1) * rtask.spec.period_s
            if now < end + timing.grace_s + seats.index(self.ctx.node_id) * timing.takeover_s:
                continue
            claim = self._claims.get(key)
            if claim and claim[0] != self.ctx.node_id and now - claim[1] < timing.takeover_s:
                continue
            if now < self._failures.get(key, (0, 0.0))[1]:
                continue
            task = asyncio.create_task(self._close_guarded(task_id, round_id))
            self._running[key] = task
            task.add_done_callback(lambda _t, k=key: self._running.pop(k, None))

    def forget_before(self, before: float) -> None:
        """Drop in-memory round bookkeeping older than ``before`` (rounds long decided)."""
        for key in [k for k, began in self.closing.items() if began < before]:
            del self.closing[key]  # in place: the ingest service holds this same dict
        self._claims = {k: c for k, c in self._claims.items() if c[1] >= before}
        self._failures = {k: f for k, f in self._failures.items() if f[1] >= before}

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
            if failures > 1:
                log.debug("closing %s round %d failed again (%d): %s", task_id, round_id,
                          failures, err)
            elif isinstance(err, _Abort):
                log.info("closing %s round %d: %s; retrying later", task_id, round_id, err)
            else:
                log.exception("closing %s round %d failed; retrying later", task_id, round_id)
            if failures >= MAX_CLOSE_ATTEMPTS:
                await self._give_up(task_id, round_id, failures)
        else:
            self._failures.pop(key, None)

    async def _give_up(self, task_id: str, round_id: int, failures: int) -> None:
        key = (task_id, round_id)
        try:
            roster = self.ctx.roster
            await self._finish(roster.tasks_by_id[task_id].spec, round_id,
                               roster.committee(task_id, round_id), "failed",
                               reason=f"could not be closed after {failures} attempts")
        except Exception:
            log.exception("giving up on %s round %d: it stays undecided here", task_id, round_id)
            self._failures[key] = (failures, math.inf)

    # -- coordinator --------------------------------------------------------------
    async def close_round(self, task_id: str, round_id: int) -> None:
        roster = self.ctx.roster
        spec = roster.tasks_by_id[task_id].spec
        committee = roster.committee(task_id, round_id)
        try:
            await self._close(spec, round_id, committee)
        except _Fail as err:
            await self._finish(spec, round_id, committee, "failed", reason=str(err))

    async def _close(self, spec: TaskSpec, round_id: int, committee: list[MemberInfo]) -> None:
        self._claims[(spec.task_id, round_id)] = (self.ctx.node_id, self.ctx.clock())
        base = {"task": spec.task_id, "round": round_id}
        quorum = spec.t + 1

        held = await self._ask_all(committee, "held", base)
        for answer in held.values():
            if isinstance(answer.get("result"), dict):
                await self.results.accept(answer["result"])
                return
        if len(held) < quorum:
            raise _Fail(f"only {len(held)} of {len(committee)} committee members reachable")
        try:
            senders, group, committed_dealers = _choose_contributors(held, spec.t)
        except ValueError as err:
            raise _Fail(str(err)) from None
        if len(senders) < spec.min_contributors:
            await self._finish(spec, round_id, committee, "insufficient", contributors=len(senders),
                               reason=f"{len(senders)} contributors, at least "
                                      f"{spec.min_contributors} needed")
            return
        noise: dict[str, dict[str, str]] = {}
        dealers: list[str] = []
        if spec.dp_epsilon is not None:
            group, dealers, noise = await self._gather_noise(
                spec, committee, base, held, group, committed_dealers)

        def partial_body(member: MemberInfo) -> dict[str, Any]:
            return {**base, "senders": senders, "dealers": dealers,
                    "noise": {dealer: deal[member.node_id] for dealer, deal in noise.items()}}

        members = [committee[seat] for seat in group]
        answers = await self._ask_all(members, "partial", partial_body, seats=group)
        length = vector_length(spec)
        partials: dict[int, np.ndarray] = {}
        for seat, answer in answers.items():
            try:
                partials[seat] = unpack_elements(b64url_decode(answer["partial"]), length)
            except (KeyError, ValueError) as err:
                log.warning("bad partial sum from seat %d: %s", seat, err)
        if len(partials) < quorum:
            raise _Fail(f"only {len(partials)} of {len(committee)} committee members returned "
                        "partial sums")
        total = _reconstruct(partials, spec.t)
        if total is None:
            raise _Fail("committee partial sums are inconsistent (corrupted share or faulty "
                        "member)")
        try:
            stats = decode_aggregate(spec, total, noisy=spec.dp_epsilon is not None)
        except ValueError as err:
            # The details quote aggregate values: they stay out of the signed result.
            checks = ", ".join(getattr(err, "kinds", ())) or type(err).__name__
            log.warning("%s round %d: aggregate does not decode (failed checks: %s)",
                        spec.task_id, round_id, checks)
            raise _Fail("aggregate is inconsistent: a contribution was malformed or a "
                        "committee member is faulty") from None
        await self._finish(spec, round_id, committee, "released", contributors=len(senders),
                           statistics=stats)

    async def _gather_noise(
        self,
        spec: TaskSpec,
        committee: list[MemberInfo],
        base: dict[str, Any],
        held: dict[int, dict[str, Any]],
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
        noise = {ids[seat]: a["deal"] for seat, a in deals.items() if _complete_deal(a, ids)}
        quorum = spec.t + 1
        if committed_dealers is None:
            group = [seat for seat in group if ids[seat] in noise]
            if len(group) < quorum:
                raise _Fail(f"only {len(group)} of {len(committee)} committee members dealt DP "
                            f"noise, at least {quorum} needed")
            return group, sorted(noise), noise
        complete = set(noise) == set(committed_dealers)
        group = [seat for seat in group if isinstance(held[seat].get("committed"), list)
                 or (complete and ids[seat] in committed_dealers)]
        if len(group) < quorum:
            raise _Fail("the DP noise dealers this round was committed to are not all "
                        f"reachable, and fewer than {quorum} members committed")
        return group, list(committed_dealers), noise if complete else {}

    async def _finish(
        self,
        spec: TaskSpec,
        round_id: int,
        committee: Sequence[MemberInfo],
        status: str,
        *,
        reason: str | None = None,
        contributors: int | None = None,
        statistics: dict[str, Any] | None = None,
    ) -> None:
        doc = {
            "federation": self.ctx.federation_id,
            "task": spec.task_id,
            "metric": spec.metric,
            "unit": spec.unit,
            "round": round_id,
            "round_start": float(round_id * spec.period_s),
            "round_end": float((round_id + 1) * spec.period_s),
            "status": status,
            "reason": reason,
            "contributors": contributors,
            "statistics": statistics,
            "dp_epsilon": spec.dp_epsilon,
            "committee": [m.node_id for m in committee],
            "coordinator": self.ctx.node_id,
            "released_at": self.ctx.clock(),
        }
        await self.results.publish(doc)
        self.closed += 1

    async def _ask_all(
        self,
        members: Sequence[MemberInfo],
        step: str,
        body: dict[str, Any] | Callable[[MemberInfo], dict[str, Any]],
        *,
        seats: Sequence[int] | None = None,
    ) -> dict[int, dict[str, Any]]:
        """Ask members for one step; {seat: verified answer body} of those that answered."""
        seat_of = list(seats) if seats is not None else list(range(len(members)))

        async def ask(member: MemberInfo) -> dict[str, Any] | None:
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
                                                      envelope)
                return verify_envelope(
                    reply.get("reply"),
                    lambda s: member.signing_public if s == member.node_id else None,
                    f"round-{step}-reply", self.ctx.federation_id, MAX_MESSAGE_AGE_S,
                    now=self.ctx.clock(),
                )
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
                log.warning("local %s failed: %s", step, err)
            return None

        answers = await asyncio.gather(*(ask(m) for m in members))
        return {seat: a for seat, a in zip(seat_of, answers, strict=True) if a is not None}

    # -- committee member handlers -----------------------------------------------------
    def handlers(self) -> dict[str, Handler]:
        return {"held": self.handle_held, "noise": self.handle_noise,
                "partial": self.handle_partial}

    def _request(
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
        if envelope["sender"] not in ids or self.ctx.node_id not in ids:
            log.warning("refused %s for %s round %d from non-committee %s", step, task_id,
                        round_id, envelope["sender"])
            raise Forbidden("sender and receiver must both sit on the round's committee",
                            code="not_on_committee")
        if self.ctx.clock() < (round_id + 1) * rtask.spec.period_s:
            raise Unprocessable(f"round {round_id} of {task_id!r} has not ended yet",
                                field="body.round", code="round_open")
        if envelope["sender"] != self.ctx.node_id:  # a live coordinator: hold our own close back
            self._claims[(task_id, round_id)] = (envelope["sender"], self.ctx.clock())
        return body, rtask.spec, round_id, committee

    def _reply(self, step: str, body: dict[str, Any]) -> dict[str, Any]:
        return {"reply": sign_envelope(self.ctx.keys, f"round-{step}-reply",
                                       self.ctx.federation_id, body, now=self.ctx.clock())}

    async def handle_held(self, envelope: Any, remote: str | None) -> dict[str, Any]:
        body, spec, round_id, _ = self._request(envelope, "held", remote)
        key = (spec.task_id, round_id)
        self.closing.setdefault(key, self.ctx.clock())
        result = await self.ctx.storage.get_result(*key)
        if result is not None:
            return self._reply("held", {**body, "result": result.doc})
        commit = await self.ctx.storage.get_commit(*key)
        if commit is not None:
            return self._reply("held", {**body, "committed": list(commit.senders),
                                        "dealers": list(commit.dealers),
                                        "held": list(commit.senders)})
        return self._reply("held", {**body, "held": await self.ctx.storage.held_senders(*key)})

    async def handle_noise(self, envelope: Any, remote: str | None) -> dict[str, Any]:
        body, spec, round_id, committee = self._request(envelope, "noise", remote)
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
            deal = await self.ctx.storage.put_noise_deal(spec.task_id, round_id, deal)
        return self._reply("noise", {**body, "deal": deal})

    async def handle_partial(self, envelope: Any, remote: str | None) -> dict[str, Any]:
        body, spec, round_id, committee = self._request(envelope, "partial", remote)
        senders = _sorted_ids(body.get("senders"), "senders")
        if not senders:
            raise BadRequest("senders must not be empty", field="body.senders")
        if len(senders) < spec.min_contributors:
            # Else one member could ask the others for the sums of a single household.
            log.warning("refused a partial sum over %d contributors from %s", len(senders),
                        envelope["sender"])
            raise Unprocessable(
                f"a partial sum needs at least {spec.min_contributors} contributors, "
                f"asked for {len(senders)}",
                field="body.senders", code="too_few_contributors",
            )
        dealers = _sorted_ids(body.get("dealers", []), "dealers")
        noise = body.get("noise") or {}
        if not isinstance(noise, dict):
            raise BadRequest("noise must map dealer ids to sealed shares", field="body.noise")
        if spec.dp_epsilon is None and (dealers or noise):
            raise BadRequest(f"task {spec.task_id!r} has no DP noise", field="body.noise")
        key = (spec.task_id, round_id)
        self.closing.setdefault(key, self.ctx.clock())
        commit = await self.ctx.storage.get_commit(*key)
        if commit is None:
            if spec.dp_epsilon is not None:
                await self._check_noise(spec, round_id, dealers, noise)
            partial = await self._partial_sum(spec, round_id, committee, senders, noise)
            commit = await self.ctx.storage.put_commit(RoundCommit(
                spec.task_id, round_id, tuple(senders), pack_elements(partial),
                envelope["sender"], self.ctx.clock(), tuple(dealers),
            ))
        if list(commit.senders) != senders or list(commit.dealers) != dealers:
            raise Conflict(
                f"this member already committed round {round_id} of {spec.task_id!r} to "
                "another contributor set or other noise dealers",
                code="committed_elsewhere",
            )
        return self._reply("partial", {"task": spec.task_id, "round": round_id,
                                       "partial": b64url_encode(commit.partial)})

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


def _sorted_ids(value: Any, name: str) -> list[str]:
    if (
        not isinstance(value, list)
        or not all(isinstance(v, str) for v in value)
        or value != sorted(set(value))
    ):
        raise BadRequest(f"{name} must be a sorted list of distinct node ids",
                         field=f"body.{name}")
    return value


def _complete_deal(answer: dict[str, Any], ids: list[str]) -> bool:
    """Whether a noise answer carries a sealed share for every committee member."""
    deal = answer.get("deal")
    return isinstance(deal, dict) and all(isinstance(deal.get(i), str) for i in ids)


def _choose_contributors(
    held: dict[int, dict[str, Any]], t: int
) -> tuple[list[str], list[int], list[str] | None]:
    """(senders, seats, committed noise dealers or None for a fresh plan).

    Members that committed fix the plan: of the committed (senders, dealers)
    plans, the one the most members can finish (committed to it, or not
    committed and holding every share of it; then the one with more
    contributors) is continued; ValueError if none has t + 1. Without
    commitments: the largest intersection of held sets over >= t + 1 seats.
    """
    sets = {seat: set(a.get("held") or []) for seat, a in held.items()}
    plans: dict[tuple[tuple[str, ...], tuple[str, ...]], list[int]] = {}
    for seat, answer in held.items():
        if isinstance(answer.get("committed"), list):
            plan = (tuple(answer["committed"]), tuple(answer.get("dealers") or ()))
            plans.setdefault(plan, []).append(seat)
    if plans:
        committed = {seat for seats in plans.values() for seat in seats}
        ranked = []
        for (senders, dealers), seats in plans.items():
            joinable = [s for s in sets if s not in committed and set(senders) <= sets[s]]
            ranked.append((len(seats) + len(joinable), len(seats), len(senders), senders,
                           dealers, sorted(seats + joinable)))
        size, _, _, senders, dealers, group = max(ranked)
        if size < t + 1:
            raise ValueError(
                f"committee members committed to {len(plans)} different contributor set(s) and "
                f"none can be completed by {t + 1} reachable members"
            )
        return list(senders), group, list(dealers)
    best: tuple[set[str], tuple[int, ...]] = (set(), ())
    seats = sorted(sets)
    for size in range(len(seats), t, -1):
        for group in itertools.combinations(seats, size):
            common = set.intersection(*(sets[s] for s in group))
            if len(common) > len(best[0]) or not best[1]:
                best = (common, group)
    return sorted(best[0]), list(best[1]), None


def _reconstruct(partials: dict[int, np.ndarray], t: int) -> np.ndarray | None:
    """Total from t+1 partial sums (x = seat + 1); None if the others disagree with it."""
    seats = sorted(partials)
    first = seats[: t + 1]
    total = shamir_reconstruct(np.stack([partials[s] for s in first]), [s + 1 for s in first], t)
    for extra in seats[t + 1 :]:
        check_seats = [*seats[1 : t + 1], extra]
        check = shamir_reconstruct(
            np.stack([partials[s] for s in check_seats]), [s + 1 for s in check_seats], t
        )
        if not np.array_equal(check, total):
            return None
    return total
