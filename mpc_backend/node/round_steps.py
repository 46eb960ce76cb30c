"""What a committee member answers when a round closes, and how members ask each other.

The steps (``held``, ``noise``, ``partial``, ``sign``, and ``reveal`` and ``verify``
from ``verification.py``) are handlers of signed peer requests; the decisions they
rest on are the pure functions of ``protocol.contributors``, ``protocol.validity`` and
``node.cosign``. ``RoundService`` (``rounds.py``) adds the scheduling and the
coordinator on top of this class. A member:

* signs one held statement per round and hands out that same one for ever; it
  commits to a secret seed for the round's validity checks;
* reveals that seed for one set of statements only (the first it is asked for), so
  the verifier's randomness is fixed before anyone can see it and choose their own;
* computes its shares of every report's verifier message for that randomness, and
  releases them only if no other member it can reach revealed for another set (two
  verifier messages of one report would tell its reading);
* deals its own DP noise once per round;
* sums a contributor set only if the forwarded statements determine it, less exactly
  the reports the signed verifier shares (its own among them) judge invalid, or
  inconsistent or unchecked (at most one such), and it leaves out no other household
  this member holds that could be summed; commits to it for ever, then asks the other
  members for their statements, commitments and results before releasing the partial
  sum;
* co-signs a result only if it is what the signed partial sums reconstruct, its own
  and those of every reachable member holding the whole set among them.

Anything caught on the way is recorded as the asking member's misbehaviour.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from contextvars import ContextVar
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
from mpc_backend.protocol import TaskSpec, noise_vector, to_field, vector_length
from mpc_backend.protocol.contributors import (
    SetRefused,
    check_contributor_set,
    contributor_set,
    senders_digest,
)
from mpc_backend.storage import RoundCommit

from .context import MAX_MESSAGE_AGE_S, NodeContext
from .cosign import check_frame, check_released, excluded_doc
from .errors import BadRequest, Conflict, Forbidden, NodeError, NotFound, Unprocessable
from .misbehaviour import MisbehaviourLog
from .peers import PeerError, PeerRejected
from .results import STATUSES, sign_result
from .roster import MemberInfo
from .statements import StatementError, seed_commitment, sign_held, verify_held
from .timeline import decision_deadline, round_end
from .verification import Excluded, Held, VerifyingMember, unused_verifiers
from .wire import pack_elements, unpack_elements

log = logging.getLogger("mpc_backend.rounds")

Handler = Callable[[Any, str | None], Awaitable[dict[str, Any]]]

# The request envelope this member is handing its own handler (in that call's context):
# signed by it a moment ago, so checking its signature would only canonicalise a large
# body once more. Compared by identity, so no envelope from elsewhere can pass as it.
_OWN_REQUEST: ContextVar[object] = ContextVar("own_round_request", default=None)


def noise_context(task_id: str) -> str:
    """Share context for noise shares: never equal to a real task id (those have no '/')."""
    return f"{task_id}/noise"


class _Abort(Exception):
    """A member committed to another coordinator's set meanwhile; retry later."""


@dataclass(frozen=True)
class _Answer:
    body: dict[str, Any]
    envelope: dict[str, Any]  # the signed reply, forwarded as evidence where needed


class CommitteeMember(VerifyingMember):
    """The committee-member side of a round close (a base of ``RoundService``)."""

    ctx: NodeContext
    misbehaviour: MisbehaviourLog
    closing: dict[tuple[str, int], float]  # round -> when this member froze it
    _claims: dict[tuple[str, int], dict[str, float]]  # coordinator -> first request
    _seen_seeds: dict[tuple[str, int], dict[str, str]]  # revealed seeds this member has seen
    _rng: FieldRNG

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
        excluded: Excluded | None = None,
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
            "excluded": excluded_doc(excluded or {}),
            "coordinator": self.ctx.node_id,
            "released_at": self.ctx.clock(),
        }

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
                    # Signed by this node just now, request and reply: checking either
                    # signature would only canonicalise a large body once more.
                    request = envelope()
                    _OWN_REQUEST.set(request)  # this ask's own context only
                    signed = (await self.handlers()[step](request, "local"))["reply"]
                    return _Answer(signed["body"], signed)
                if not self.ctx.peers.reachable(member):
                    return None
                reply = await self.ctx.peers.post(member, f"/peer/v1/round/{step}",
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

    def handlers(self) -> dict[str, Handler]:
        return {"held": self.handle_held, "reveal": self.handle_reveal,
                "verify": self.handle_verify, "noise": self.handle_noise,
                "partial": self.handle_partial, "sign": self.handle_sign}

    async def _request(
        self, envelope: Any, step: str, remote: str | None
    ) -> tuple[dict[str, Any], TaskSpec, int, list[MemberInfo]]:
        own = envelope is not None and envelope is _OWN_REQUEST.get()  # a JSON null is None
        body = self.ctx.verify(envelope, f"round-{step}", remote=remote,
                               authenticated_by=self.ctx.node_id if own else None)
        task_id, round_id = body.get("task"), body.get("round")
        if not isinstance(task_id, str):
            raise BadRequest("task must be a string", field="body.task")
        if isinstance(round_id, bool) or not isinstance(round_id, int) or round_id < 0:
            raise BadRequest("round must be a non-negative integer", field="body.round")
        rtask = self.ctx.roster.task(task_id)
        if rtask is None:
            raise NotFound(f"unknown task {task_id!r}", field="body.task", code="unknown_task")
        try:
            committee = self.ctx.roster.committee(task_id, round_id)
        except ValueError as err:  # too few members could serve that round
            raise Unprocessable(str(err), field="body.round", code="no_committee") from None
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
            # In storage too, before reading the senders: no process sharing it (an ingest
            # worker) acknowledges a share of this round that the statement would not name.
            await storage.mark_closing(spec.task_id, round_id, self.ctx.clock())
            senders = await storage.held_senders(spec.task_id, round_id)
            seed = await self._verify_seed(spec, round_id)
            wire = sign_held(self.ctx.keys, self.ctx.federation_id, spec.task_id, round_id,
                             senders, seed_commitment(seed))
            stored = await storage.put_held_statement(spec.task_id, round_id, wire,
                                                      self.ctx.clock())
        return stored

    async def handle_held(self, envelope: Any, remote: str | None) -> dict[str, Any]:
        body, spec, round_id, _ = await self._request(envelope, "held", remote)
        answer: dict[str, Any] = {"task": spec.task_id, "round": round_id}
        result = await self.ctx.storage.get_result(spec.task_id, round_id)
        if result is not None:
            answer["result"] = result.doc
        # Statement and commitment even once decided: a stored result must never hide
        # what this member summed from another member's cross-check.
        answer["statement"] = await self._own_statement(spec, round_id)
        binding = await self.ctx.storage.get_verify_binding(spec.task_id, round_id)
        if binding is not None:
            answer["revealed_for"] = binding["statements"]
            if not body.get("peek"):  # a coordinator continues with these statements
                answer["bound_statements"] = binding["wires"]
                answer["seeds"] = dict(self._seen_seeds.get((spec.task_id, round_id), {}))
        commit = await self.ctx.storage.get_commit(spec.task_id, round_id)
        if commit is not None:
            answer["committed"] = {"senders": list(commit.senders),
                                   "statements": list(commit.statements),
                                   "dealers": list(commit.dealers),
                                   "excluded": [list(e) for e in commit.excluded]}
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
        length = vector_length(spec)
        matrix = await self._stored_shares(spec, round_id, senders)
        total = field_sum_rows(np.ascontiguousarray(matrix[:, :length]))
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
        if not await self._own_in(held, spec, round_id):
            raise await self._refuse_set(requester, spec, round_id,
                                         "the request does not carry this member's statement")
        try:
            full, excluded, verified_by = await self._judged(
                spec, round_id, committee, body.get("statements"), held, body)
            check_contributor_set(me, held, full, spec.k, spec.t)
            if senders != [s for s in full if s not in excluded]:
                raise SetRefused("the set is not the verified reports of the one the held "
                                 f"statements determine ({len(excluded)} failed verification)")
        except ValueError as err:  # SetRefused included
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
                tuple(sorted(excluded.items())),
            ))
        if (list(commit.senders) != senders or list(commit.dealers) != dealers
                or commit.excluded != tuple(sorted(excluded.items()))):
            raise Conflict(
                f"this member already committed round {round_id} of {spec.task_id!r} to "
                "another contributor set, other verdicts or other noise dealers",
                code="committed_elsewhere",
            )
        await self._cross_check(spec, round_id, committee, held, commit, requester, verified_by)
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
        verified_by: set[int],
    ) -> None:
        """After committing, look at the other members before releasing the partial sum.

        Asks every other committee member (one short attempt each) for its held
        statement and commitment. Refuses if one signed a statement different
        from the forwarded one, committed to another set, or holds a statement
        the coordinator left out that changes the set, or if a member that holds
        the whole set and answers has no verifier shares among those used (with
        exactly t + 1, a colluder's could be solved for any verdict). Committing
        first is what makes two honest members asked for different sets unable to
        both release.
        """
        me = self.ctx.node_id
        full = sorted([*commit.senders, *(h for h, _ in commit.excluded)])
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
            if unused_verifiers({member: (senders, answer)}, committee, full, verified_by):
                raise Conflict(f"{name} holds every report of the set but its verifier shares "
                               "were not used; not releasing a partial sum",
                               code="verification_incomplete")
            if not _same_sum(answer, commit):
                log.warning("%s round %d: %s committed to or holds a result over another "
                            "contributor set; not releasing a partial sum", spec.task_id,
                            round_id, name)
                raise Conflict(f"{name} committed to another contributor set for this round",
                               code="conflicting_commitment")
        try:
            check_contributor_set(me, merged, full, spec.k, spec.t)
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
        return await self._statements_in(answers, spec, round_id, committee)

    async def _statements_in(
        self, answers: dict[int, _Answer], spec: TaskSpec, round_id: int,
        committee: Sequence[MemberInfo],
    ) -> dict[str, tuple[frozenset[str], dict[str, Any]]]:
        """{member: (senders, answer body)} for the held answers whose statement is the
        answering member's own and authentic; anything else is that member's misbehaviour."""
        seen: dict[str, tuple[frozenset[str], dict[str, Any]]] = {}
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
            if not await self._own_in(held, spec, round_id):
                raise ValueError("the statements leave out this member's own")
            senders = contributor_set(held, spec.t)
            excluded: Excluded = {}
            if "verifications" in body:  # too few reports left once the invalid ones are out
                senders, excluded, verified_by = await self._judged(
                    spec, round_id, committee, body.get("statements"), held, body)
                missing = unused_verifiers(await self._peek(spec, round_id, committee),
                                           committee, senders, verified_by)
                if missing:  # not the coordinator's doing: that member may just be slow
                    raise Conflict(f"{missing[0]} holds every report of the set but its "
                                   "verifier shares were not used", code="verification_incomplete")
            try:
                check_contributor_set(me, held, senders, spec.k, spec.t, must_hold=False)
            except SetRefused as err:
                raise ValueError(str(err)) from None
            counted = len(senders) - len(excluded)
            if doc.get("contributors") != counted or counted >= spec.min_contributors:
                raise ValueError("the contributor count does not make the round insufficient")
            if doc.get("excluded") != excluded_doc(excluded):
                raise ValueError("the excluded reports are not what the verifier shares judge")
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


def _sorted_ids(value: Any, name: str) -> list[str]:
    if (
        not isinstance(value, list)
        or not all(isinstance(v, str) for v in value)
        or value != sorted(set(value))
    ):
        raise BadRequest(f"{name} must be a sorted list of distinct node ids",
                         field=f"body.{name}")
    return value
