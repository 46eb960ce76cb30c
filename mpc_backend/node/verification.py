"""A committee member's side of checking reports' validity proofs at a round's close.

Two steps, between the held statements and the partial sums (``round_steps.py``):

* ``reveal``: the member reveals the seed its held statement committed to, for one set
  of statements only (the first it is asked for, persisted), and binds itself to it:
  the verifier's randomness is then fixed before any member can see a seed and pick
  its own.
* ``verify``: the member computes its shares of every report's verifier message for
  that randomness (``protocol.validity``) and releases them only if no member it can
  reach revealed for another set: two verifier messages of one report would tell its
  reading. Bind first, look second, as for the contributor set.

At ``partial`` (and when co-signing an insufficient outcome) the member re-judges
the forwarded signed verifier shares itself (``_judged``), its own among them.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from mpc_backend.crypto import (
    AuthError,
    b64url_decode,
    b64url_encode,
    verify_envelope,
)
from mpc_backend.protocol import TaskSpec
from mpc_backend.protocol.contributors import contributor_set, senders_digest
from mpc_backend.protocol.validity import (
    VERIFIER_WIDTH,
    excluded_reports,
    joint_seed,
    judge,
    query,
    shared_length,
    verifier_shares,
)

from .context import MAX_MESSAGE_AGE_S, NodeContext
from .cosign import seat_number
from .errors import BadRequest, Conflict, Unprocessable
from .roster import MemberInfo
from .statements import seed_commitment, statement_bytes
from .wire import pack_elements, unpack_elements

log = logging.getLogger("mpc_backend.rounds")

Held = dict[str, frozenset[str]]
Excluded = dict[str, str]  # household -> verdict: invalid, inconsistent or unchecked
Wires = list[dict[str, Any]]  # held statements as forwarded, each already verified


def statements_digest(wires: Sequence[Any]) -> str:
    """Names one set of held statements, whatever order or encoding they were forwarded in:
    each is its signed statement plus its signature's bytes."""
    parts = sorted(statement_bytes(w) + b"\x00" + b64url_decode(w["sig"]) for w in wires)
    return hashlib.sha256(b"\n".join(parts)).hexdigest()


def unused_verifiers(
    peeked: Mapping[str, tuple[frozenset[str], dict[str, Any]]],
    committee: Sequence[MemberInfo],
    senders: Sequence[str],
    verified_by: set[int],
) -> list[str]:
    """Names of answering members that hold every report of ``senders`` but whose verifier
    shares were not used: with exactly t + 1, a colluder's could be solved for any verdict."""
    ids = [m.node_id for m in committee]
    return [committee[ids.index(member)].name for member, (held, _) in peeked.items()
            if held >= set(senders) and ids.index(member) not in verified_by]


class VerifyingMember:
    """The reveal and verify steps; a mixin of ``CommitteeMember``, whose request plumbing
    (``_request``, ``_reply``, ``_statements_of``, ``_own_statement``, ``_peek``) it uses."""

    ctx: NodeContext
    _seen_seeds: dict[tuple[str, int], dict[str, str]]  # revealed seeds this member has seen

    async def _verify_seed(self, spec: TaskSpec, round_id: int) -> bytes:
        """This member's secret contribution to the round's verifier randomness (stored
        before the statement that commits to it, so a restart keeps the same one)."""
        stored = await self.ctx.storage.put_verify_seed(
            spec.task_id, round_id, secrets.token_bytes(32).hex(), self.ctx.clock())
        return bytes.fromhex(stored)

    async def _own_in(self, held: Held, spec: TaskSpec, round_id: int) -> bool:
        own = await self._own_statement(spec, round_id)
        return held.get(self.ctx.node_id) == frozenset(own["statement"]["senders"])

    async def _with_statements(
        self, envelope: Any, step: str, remote: str | None
    ) -> tuple[dict[str, Any], TaskSpec, int, list[MemberInfo], Wires, Held]:
        """A request forwarding held statements, this member's own among them."""
        body, spec, round_id, committee = await self._request(
            envelope, step, remote)
        wires = body.get("statements")
        held = await self._statements_of(
            wires, spec, round_id, committee, envelope["sender"])
        if not await self._own_in(held, spec, round_id):
            raise Unprocessable("the statements must include this member's own",
                                field="body.statements", code="own_statement_missing")
        return body, spec, round_id, committee, wires, held

    async def handle_reveal(self, envelope: Any, remote: str | None) -> dict[str, Any]:
        """Reveal this member's verification seed, for the first set of statements asked for
        only: the randomness is then fixed before any member can see a seed and pick its own."""
        body, spec, round_id, _, wires, held = await self._with_statements(
            envelope, "reveal", remote)
        if len(held) < spec.t + 1:  # could never be summed: neither reveal nor bind for it
            raise Unprocessable(f"{len(held)} held statement(s); at least t + 1 = "
                                f"{spec.t + 1} are needed", field="body.statements",
                                code="too_few_statements")
        digest = statements_digest(wires)
        binding = await self.ctx.storage.put_verify_binding(
            spec.task_id, round_id, {"statements": digest, "wires": wires}, self.ctx.clock())
        if binding["statements"] != digest:
            raise Conflict("this member revealed its verification seed for another set of "
                           "held statements this round", code="revealed_elsewhere")
        seed = await self._verify_seed(spec, round_id)
        given = body.get("seeds")
        self._remember_seeds(spec, round_id, wires,
                             {**(given if isinstance(given, dict) else {}),
                              self.ctx.node_id: seed.hex()})
        return self._reply("reveal", {
            "task": spec.task_id, "round": round_id, "statements": digest, "seed": seed.hex()})

    def _remember_seeds(
        self, spec: TaskSpec, round_id: int, wires: Wires, seeds: Mapping[Any, Any]
    ) -> dict[str, bytes]:
        """Keep the seeds that open their members' commitments in ``wires`` (so that a
        coordinator taking over can finish without a member that went down); return them."""
        commits = {w["statement"]["member"]: w["statement"]["verify_commit"] for w in wires}
        good: dict[str, bytes] = {}
        for member, text in seeds.items():
            try:
                seed = bytes.fromhex(text) if isinstance(text, str) else b""
            except ValueError:
                continue
            if member in commits and seed_commitment(seed) == commits[member]:
                good[member] = seed
        known = self._seen_seeds.setdefault((spec.task_id, round_id), {})
        known.update({m: seed.hex() for m, seed in good.items()})
        return good

    async def _joint(
        self, spec: TaskSpec, round_id: int, wires: Wires, held: Held, seeds: Any
    ) -> bytes:
        """The verifier randomness of the statements ``wires``: every signer's revealed seed,
        checked against its commitment; this member must have revealed for these statements."""
        binding = await self.ctx.storage.get_verify_binding(spec.task_id, round_id)
        if binding is None:
            raise Conflict("this member has not revealed its verification seed for this round",
                           code="not_revealed")
        if binding["statements"] != statements_digest(wires):
            raise Conflict("this member revealed its verification seed for another set of "
                           "held statements", code="revealed_elsewhere")
        if not isinstance(seeds, dict) or set(seeds) != set(held):
            raise BadRequest("seeds must map every statement's member to its revealed seed",
                             field="body.seeds")
        revealed = self._remember_seeds(spec, round_id, wires, seeds)
        wrong = sorted(set(seeds) - set(revealed))
        if wrong:
            raise BadRequest(f"the seed given for {wrong[0]} does not open its commitment",
                             field="body.seeds")
        return joint_seed(self.ctx.federation_id, spec.task_id, round_id, revealed)

    async def _stored_shares(
        self, spec: TaskSpec, round_id: int, senders: list[str]
    ) -> np.ndarray:
        """(len(senders), shared_length) shares this member holds; Conflict if one is missing
        or is not a share with a proof (stored by a node from before validity proofs)."""
        try:
            rows = await self.ctx.storage.load_shares(spec.task_id, round_id, senders)
        except KeyError as err:
            raise Conflict(f"cannot use this set: {err.args[0]}", code="missing_share") from None
        width = shared_length(spec)
        if any(len(row) != 8 * width for row in rows):
            raise Conflict(f"a stored share of round {round_id} of {spec.task_id!r} carries no "
                           "validity proof (stored before this node checked proofs); the "
                           "round cannot be verified", code="share_without_proof")
        return np.frombuffer(b"".join(rows), dtype="<u8").astype(np.uint64).reshape(
            len(rows), width)

    async def _my_verifier(
        self, spec: TaskSpec, round_id: int, senders: list[str], joint: bytes
    ) -> np.ndarray:
        return verifier_shares(query(spec, joint),
                               await self._stored_shares(spec, round_id, senders))

    async def handle_verify(self, envelope: Any, remote: str | None) -> dict[str, Any]:
        """This member's shares of every report's verifier message, for the contributor set
        the statements determine and the randomness their revealed seeds give."""
        body, spec, round_id, committee, wires, held = await self._with_statements(
            envelope, "verify", remote)
        joint = await self._joint(spec, round_id, wires, held, body.get("seeds"))
        senders = contributor_set(held, spec.t)
        if not set(senders) <= held[self.ctx.node_id]:
            raise Unprocessable("this member does not hold every report of the set",
                                field="body.statements", code="missing_share")
        await self._one_randomness(spec, round_id, committee, statements_digest(wires))
        shares = await self._my_verifier(spec, round_id, senders, joint)
        return self._reply("verify", {
            "task": spec.task_id, "round": round_id, "senders_digest": senders_digest(senders),
            "joint": joint.hex(), "verifier": b64url_encode(pack_elements(shares))})

    async def _one_randomness(
        self, spec: TaskSpec, round_id: int, committee: list[MemberInfo], digest: str
    ) -> None:
        """Refuse to release verifier shares if another member revealed its seed for another
        set of statements. Two verifier messages of one report under two randomnesses would
        tell its reading (the proof's random seed cancels out); each member binds before it
        looks, so of two honest members bound to different sets the later one sees the
        other's binding and only one randomness ever gets honest verifier shares."""
        peeked = await self._peek(spec, round_id, committee)
        for member, (_, answer) in peeked.items():
            other = answer.get("revealed_for")
            if isinstance(other, str) and other != digest:
                name = self.ctx.roster.by_id[member].name
                log.warning("%s round %d: %s revealed its verification seed for another set "
                            "of held statements; not releasing verifier shares", spec.task_id,
                            round_id, name)
                raise Conflict(f"{name} revealed its verification seed for another set of held "
                               "statements this round; not releasing verifier shares",
                               code="bound_elsewhere")

    async def _judged(
        self,
        spec: TaskSpec,
        round_id: int,
        committee: list[MemberInfo],
        wires: Wires,
        held: Held,
        body: dict[str, Any],
    ) -> tuple[list[str], Excluded, set[int]]:
        """(S, excluded, seats) from the forwarded verifier shares: S is the set the statements
        determine, ``excluded`` the reports of S the signed verifier shares judge invalid,
        inconsistent or unchecked (at most one of the latter two, else ValueError), ``seats``
        whose shares were used. ValueError names a broken rule."""
        joint = await self._joint(spec, round_id, wires, held, body.get("seeds"))
        senders = contributor_set(held, spec.t)
        evidence = body.get("verifications")
        if not isinstance(evidence, dict):
            raise ValueError("verifications must map seats to signed verifier shares")
        shares = {seat: self._evidence(spec, round_id, committee, seat, signed, senders, joint)
                  for seat, signed in ((seat_number(text), signed)
                                       for text, signed in evidence.items())}
        me = self.ctx.node_id
        # A reply that verifies under this member's own key, for this set and randomness,
        # is its own (deterministic) verifier shares: no need to compute them again.
        if set(senders) <= held[me] and [m.node_id for m in committee].index(me) not in shares:
            raise ValueError("this member's own verifier shares are not among those used")
        if len(shares) < spec.t + 1:
            raise ValueError(f"{len(shares)} members' verifier shares; t + 1 = {spec.t + 1} "
                             "are needed")
        return senders, excluded_reports(senders, judge(shares, spec.t)), set(shares)

    def _evidence(
        self, spec: TaskSpec, round_id: int, committee: list[MemberInfo], seat: int,
        signed: Any, senders: list[str], joint: bytes,
    ) -> np.ndarray:
        """One member's signed verifier shares for this set and randomness, (N, 4)."""
        if not 0 <= seat < len(committee):
            raise ValueError(f"no committee seat {seat}")
        member = committee[seat]
        try:
            reply = verify_envelope(
                signed, lambda s: member.signing_public if s == member.node_id else None,
                "round-verify-reply", self.ctx.federation_id, MAX_MESSAGE_AGE_S,
                now=self.ctx.clock())
        except AuthError as err:
            raise ValueError(f"the verifier shares of {member.name} are not authentic: "
                             f"{err}") from None
        if (reply.get("task"), reply.get("round"), reply.get("senders_digest"),
                reply.get("joint")) != (spec.task_id, round_id, senders_digest(senders),
                                        joint.hex()):
            raise ValueError(f"the verifier shares of {member.name} are for another set or "
                             "randomness")
        try:
            return unpack_elements(
                b64url_decode(reply.get("verifier", "")), len(senders) * VERIFIER_WIDTH,
            ).reshape(len(senders), VERIFIER_WIDTH)
        except (ValueError, TypeError):
            raise ValueError(f"the verifier shares of {member.name} are malformed") from None
