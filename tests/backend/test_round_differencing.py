"""Two attacks by one colluding committee member (c = t = 1) that a review found, now refused.

Both drive real in-process nodes over loopback HTTP: the colluder ``M`` speaks the
protocol's own messages with its own keys, the honest members run unmodified.

* Differencing: M signs two held statements (with and without victim V, whose share
  missed honest H2), gets H1 to sum the set with V, gets that result co-signed and
  stored at H1 alone, then asks H2 for the set without V. Subtracting the two sums
  would give V's reading; H2 must see H1 (decided, and still showing its seed binding
  and its commitment) and refuse.
* A forged result: with exactly t + 1 partial sums, M can solve for its own partial so
  that the total is any value; H1 must refuse to sign while H2, which holds the whole
  set, is left out.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mpc_backend.arith import P, shamir_reconstruct
from mpc_backend.crypto import b64url_decode, b64url_encode, sign_envelope
from mpc_backend.node.errors import Forbidden
from mpc_backend.node.results import sign_result
from mpc_backend.node.statements import seed_commitment, sign_held
from mpc_backend.node.verification import statements_digest
from mpc_backend.node.wire import pack_elements, unpack_elements
from mpc_backend.protocol import decode_aggregate, encode_report, vector_length
from mpc_backend.protocol.contributors import senders_digest
from tests.backend.conftest import (
    PERIOD,
    TIMING,
    FakeClock,
    LiveNode,
    federation_of,
    own_verifier_reply,
    verification_evidence,
)


@pytest.fixture
async def quad(tmp_path: Path, clock: FakeClock) -> AsyncIterator[list[LiveNode]]:
    """Four households, three of them on each committee (one victim outside it)."""
    async for nodes in federation_of(4, tmp_path, clock, k=3, t=1):
        yield nodes


def by_id(nodes: list[LiveNode], node_id: str) -> LiveNode:
    return next(n for n in nodes if n.node_id == node_id)


def partial_reply(m: LiveNode, spec: Any, round_id: int, senders: list[str],
                  partial: np.ndarray) -> dict[str, Any]:
    ctx = m.node.ctx
    return sign_envelope(ctx.keys, "round-partial-reply", ctx.federation_id,
                         {"task": spec.task_id, "round": round_id,
                          "senders_digest": senders_digest(senders), "dealers": [],
                          "partial": b64url_encode(pack_elements(partial))}, now=ctx.clock())


async def push(m: LiveNode, target: LiveNode, wire: dict[str, Any]) -> None:
    ctx = m.node.ctx
    await ctx.peers.post(ctx.roster.by_id[target.node.ctx.node_id], "/peer/v1/results",
                         lambda: sign_envelope(ctx.keys, "result", ctx.federation_id,
                                               {"result": wire}, now=ctx.clock()))


async def test_a_decided_member_still_shows_its_commitment_so_no_second_sum(
    quad: list[LiveNode], clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    round_id = int(clock() // PERIOD)
    readings = dict(zip((n.node_id for n in quad), [21.37, 18.93, 24.61, 33.33], strict=True))
    for live in quad:
        await live.node.household.contribute("temp", readings[live.node_id])
    spec = quad[0].node.ctx.roster.task("temp").spec  # type: ignore[union-attr]
    committee = quad[0].node.ctx.roster.committee("temp", round_id)
    m, h1, h2 = (by_id(quad, c.node_id) for c in committee)
    victim = next(n for n in quad if n.node_id not in {c.node_id for c in committee})
    # The victim's share missed H2 (a delivery the design tolerates losing).
    await h2.node.ctx.storage._run(lambda: h2.node.ctx.storage._db.execute(
        "DELETE FROM shares WHERE sender = ?", (victim.node_id,)))
    clock.now = (round_id + 1) * PERIOD + TIMING.grace_s / 2
    rounds, ctx = m.node.rounds, m.node.ctx
    base = {"task": "temp", "round": round_id}
    held = await rounds._ask_all(committee[1:], "held", {**base, "peek": True}, seats=[1, 2])
    w1, w2 = held[1].body["statement"], held[2].body["statement"]
    with_v = sorted(readings)
    without_v = sorted(s for s in with_v if s != victim.node_id)
    seed = secrets.token_bytes(32)  # M's verification seed, committed to in both statements
    sig1 = sign_held(ctx.keys, ctx.federation_id, "temp", round_id, with_v,  # M equivocates
                     seed_commitment(seed))
    sig2 = sign_held(ctx.keys, ctx.federation_id, "temp", round_id, without_v,
                     seed_commitment(seed))

    async def two_faced_held(envelope: Any, remote: str | None) -> dict[str, Any]:
        await rounds._request(envelope, "held", remote)
        statement = sig1 if envelope["sender"] == h1.node_id else sig2
        return rounds._reply("held", {**base, "statement": statement})

    rounds.handle_held = two_faced_held  # type: ignore[method-assign]

    async def body(senders: list[str], statements: list[Any], seat: int) -> dict[str, Any]:
        """A partial request to the honest member at ``seat``, with the verification evidence
        M can muster: that member's seed and verifier shares (if it gives them), and M's own.
        (Only t + 1 statements each time: a third signer would bind itself to the first set.)"""
        step = {**base, "statements": statements}
        revealed = await rounds._ask_all([committee[seat]], "reveal", step, seats=[seat])
        seeds = {committee[seat].node_id: revealed[seat].body["seed"], m.node_id: seed.hex()}
        verified = await rounds._ask_all([committee[seat]], "verify", {**step, "seeds": seeds},
                                         seats=[seat])
        verifications = {"0": await own_verifier_reply(rounds, "temp", round_id, senders, seeds),
                         **{str(s): a.envelope for s, a in verified.items()}}
        return {**step, "senders": senders, "seeds": seeds, "verifications": verifications,
                "dealers": [], "noise": {}}

    first = await rounds._ask_all([committee[1]], "partial", await body(with_v, [w1, sig1], 1),
                                  seats=[1])
    assert 1 in first, "H1 sums the set every statement it sees determines"
    p_h1 = unpack_elements(b64url_decode(first[1].body["partial"]), vector_length(spec))
    p_m = await rounds._partial_sum(spec, round_id, committee, with_v, {})
    total = shamir_reconstruct(np.stack([p_m, p_h1]), [1, 2], spec.t)
    doc = rounds._doc(spec, round_id, "released", contributors=len(with_v),
                      statistics=decode_aggregate(spec, total, noisy=False), senders=with_v)
    evidence = {"0": partial_reply(m, spec, round_id, with_v, p_m), "1": first[1].envelope}
    signed = await rounds._ask_all([committee[1]], "sign",
                                   {**base, "doc": doc, "partials": evidence}, seats=[1])
    wire = {"result": doc, "sigs": {m.node_id: sign_result(ctx, doc),
                                    h1.node_id: signed[1].body["signature"]}}
    await push(m, h1, wire)  # the decided result goes to H1 only
    assert await h1.node.ctx.storage.get_result("temp", round_id) is not None
    # Decided, H1 still shows what it revealed its seed for and what it summed.
    shown = (await rounds._ask_all([committee[1]], "held", {**base, "peek": True},
                                   seats=[1]))[1].body
    assert shown["revealed_for"] == statements_digest([w1, sig1])
    assert shown["result"]["result"]["senders_digest"] == senders_digest(with_v)
    assert shown["committed"]["senders"] == with_v
    second = await rounds._ask_all([committee[2]], "partial", await body(without_v, [w2, sig2], 2),
                                   seats=[2])
    assert second == {}, "H2 released a second sum: the victim's reading is the difference"
    # H2 looked at H1 before giving verifier shares for the second set, and refused them; so
    # it refuses to sum that set at all (its own verifier shares must be among those used).
    refusals = [r.getMessage() for r in caplog.records if " refused " in r.getMessage()]
    name = h1.node.ctx.config.name
    assert any("refused verify" in r and f"{name} revealed its verification seed for another "
               "set" in r for r in refusals), refusals
    assert any("refused partial" in r and "own verifier shares are not among" in r
               for r in refusals), refusals
    assert await h2.node.ctx.storage.get_commit("temp", round_id) is None


async def test_a_colluder_cannot_solve_for_a_partial_that_forges_the_total(
    trio: list[LiveNode], clock: FakeClock
) -> None:
    round_id = int(clock() // PERIOD)
    for live, value in zip(trio, [21.37, 18.93, 24.61], strict=True):
        await live.node.household.contribute("temp", value)
    spec = trio[0].node.ctx.roster.task("temp").spec  # type: ignore[union-attr]
    committee = trio[0].node.ctx.roster.committee("temp", round_id)
    m = by_id(trio, committee[0].node_id)
    clock.now = (round_id + 1) * PERIOD + TIMING.grace_s / 2
    rounds = m.node.rounds
    base = {"task": "temp", "round": round_id}
    held = await rounds._ask_all(committee, "held", base)
    statements = [a.body["statement"] for a in held.values()]
    checked = await verification_evidence(rounds, "temp", round_id, statements)
    senders = sorted(c.node_id for c in committee)
    answer = await rounds._ask_all(
        [committee[1]], "partial",
        {**base, "senders": senders, "statements": statements, **checked, "dealers": [],
         "noise": {}},
        seats=[1])
    p_h = [int(x) for x in unpack_elements(b64url_decode(answer[1].body["partial"]),
                                           vector_length(spec))]
    target = [int(x) for x in sum(encode_report(spec, 35.0).astype(object) for _ in range(3))]
    inv2 = pow(2, P - 2, P)  # the line through (0, target) and (2, p_h), at x = 1
    p_m = np.array([((t + h) * inv2) % P for t, h in zip(target, p_h, strict=True)],
                   dtype=np.uint64)
    total = shamir_reconstruct(np.stack([p_m, np.array(p_h, dtype=np.uint64)]), [1, 2], spec.t)
    doc = rounds._doc(spec, round_id, "released", contributors=3,
                      statistics=decode_aggregate(spec, total, noisy=False), senders=senders)
    assert doc["statistics"]["mean"] == pytest.approx(35.0)  # the forgery is well formed
    evidence = {"0": partial_reply(m, spec, round_id, senders, p_m), "1": answer[1].envelope}
    signed = await rounds._ask_all([committee[1]], "sign",
                                   {**base, "doc": doc, "partials": evidence}, seats=[1])
    assert signed == {}, "the honest member co-signed a total pinned by the colluder alone"
    status = await by_id(trio, committee[1].node_id).node.status()
    named = {r["node_id"]: r for r in status["misbehaviour"]["members"]}
    assert named[m.node_id]["kinds"].get("forged_result") == 1
    # Refused because H2, which holds the whole set, was left out (not for missing evidence).
    assert "seat(s) [2]" in named[m.node_id]["last_detail"]


async def test_a_member_off_the_committee_cannot_make_a_member_reveal(
    quad: list[LiveNode], clock: FakeClock
) -> None:
    """A roster member outside the round's committee asks a committee member to reveal its
    seed for the committee's own statements: 403, and the member stays unbound (else an
    outsider could pin honest members to a set of its choosing and fail the round)."""
    round_id = int(clock() // PERIOD)
    for live in quad:
        await live.node.household.contribute("temp", 20.0)
    committee = quad[0].node.ctx.roster.committee("temp", round_id)
    seated = [by_id(quad, m.node_id) for m in committee]
    outsider = next(n for n in quad if n not in seated)
    clock.now = (round_id + 1) * PERIOD + 0.5  # the round has ended, inside the grace
    answers = await seated[0].node.rounds._ask_all(committee, "held",
                                                   {"task": "temp", "round": round_id})
    statements = [a.body["statement"] for a in answers.values()]
    ctx = outsider.node.ctx
    request = sign_envelope(ctx.keys, "round-reveal", ctx.federation_id,
                            {"task": "temp", "round": round_id, "statements": statements},
                            now=ctx.clock())
    target = seated[1]
    with pytest.raises(Forbidden) as err:
        await target.node.rounds.handle_reveal(request, "test")
    assert err.value.code == "not_on_committee"
    assert await target.node.ctx.storage.get_verify_binding("temp", round_id) is None
