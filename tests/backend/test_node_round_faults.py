"""A round under faulty or curious committee members: what members refuse, when a round fails.

Three in-process nodes on loopback HTTP. Steps of a close are driven by hand
inside the grace window (round ended, nobody closes yet), so each test decides
who coordinates, who is down and what was committed.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
import pytest

from mpc_backend.arith import FieldRNG
from mpc_backend.crypto import b64url_encode, seal_share, share_aad, sign_envelope
from mpc_backend.node import round_steps, rounds
from mpc_backend.node.errors import Conflict, Unavailable, Unprocessable
from mpc_backend.node.household import seal_vector, shares_envelope
from mpc_backend.node.round_steps import noise_context
from mpc_backend.node.statements import seed_commitment, sign_held
from mpc_backend.node.timeline import decision_deadline
from mpc_backend.node.wire import pack_elements
from mpc_backend.protocol import encode_report
from mpc_backend.protocol.contributors import senders_digest
from mpc_backend.storage import RoundCommit
from tests.backend.conftest import (
    PERIOD,
    TIMING,
    FakeClock,
    LiveNode,
    federation_of,
    verification_evidence,
)
from tests.backend.test_api_peer import by_id, post
from tests.backend.test_node_rounds import contribute_all, wait_result

NOISE_COUNTS = (5, 6, 7)  # count noise of the first, second and third deal


async def add_dp_task(trio: list[LiveNode], clock: FakeClock) -> None:
    """Task ``temp_dp`` (``temp`` with DP); the clock moves into its first round."""
    spec = trio[0].node.ctx.roster.task("temp").spec  # type: ignore[union-attr]
    answer = await trio[0].node.federation.propose_task(
        {**spec.to_dict(), "task_id": "temp_dp", "dp_epsilon": 1.0})
    for _ in range(100):
        if all(live.node.ctx.roster.task("temp_dp") for live in trio):
            break
        await asyncio.sleep(0.02)
    clock.now = answer["task"]["first_round_starts_at"] + 1


def counted_noise(monkeypatch: pytest.MonkeyPatch) -> None:
    """Deterministic noise (count block only) so a released total can be checked exactly."""
    dealt: list[int] = []

    def fake_noise(spec: Any) -> np.ndarray:
        noise = np.zeros(7, dtype=np.int64)
        noise[0] = NOISE_COUNTS[len(dealt)]
        dealt.append(int(noise[0]))
        return noise

    monkeypatch.setattr(round_steps, "noise_vector", fake_noise)


async def contribute_dp(trio: list[LiveNode], values: list[float]) -> int:
    rounds_seen = set()
    for live, value in zip(trio, values, strict=True):
        rounds_seen.add((await live.node.household.contribute("temp_dp", value))["round"])
    assert len(rounds_seen) == 1
    return rounds_seen.pop()


def into_grace(clock: FakeClock, round_id: int) -> None:
    """Half a second past the round's end: it takes no shares, and nobody closes it yet."""
    clock.now = (round_id + 1) * PERIOD + TIMING.grace_s / 2


def seated(trio: list[LiveNode], task: str, round_id: int) -> list[LiveNode]:
    """The committee's nodes in seat order."""
    committee = trio[0].node.ctx.roster.committee(task, round_id)
    return [by_id(trio, m.node_id) for m in committee]


async def statements_of(coordinator: LiveNode, task: str, round_id: int) -> list[dict[str, Any]]:
    """Every committee member's held statement, as a coordinator collects them."""
    committee = coordinator.node.ctx.roster.committee(task, round_id)
    answers = await coordinator.node.rounds._ask_all(committee, "held",
                                                    {"task": task, "round": round_id})
    return [a.body["statement"] for a in answers.values()]


def partial_request(
    coordinator: LiveNode, task: str, round_id: int, senders: list[str],
    statements: list[dict[str, Any]], evidence: dict[str, Any],
    deals: dict[str, dict[str, str]] | None = None, recipient: str | None = None,
) -> dict[str, Any]:
    """``evidence``: the revealed seeds and signed verifier shares for ``statements``."""
    noise = {d: deal[recipient] for d, deal in (deals or {}).items()} if recipient else {}
    ctx = coordinator.node.ctx
    return sign_envelope(ctx.keys, "round-partial", ctx.federation_id,
                         {"task": task, "round": round_id, "senders": senders,
                          "statements": statements, **evidence, "dealers": sorted(noise),
                          "noise": noise},
                         now=ctx.clock())


async def run_to_deadline(
    trio: list[LiveNode], clock: FakeClock, task: str, round_id: int, reader: LiveNode
) -> dict[str, Any]:
    """Move the clock through every seat's turn up to the deadline; the outcome ``reader`` sees."""
    spec = trio[0].node.ctx.roster.task(task).spec  # type: ignore[union-attr]
    deadline = decision_deadline(spec, round_id)
    clock.now = max(clock.now, (round_id + 1) * PERIOD + TIMING.grace_s)
    while True:
        found = await reader.node.results.latest(task, 0, 1)
        if found and found[0]["round"] == round_id:
            return found[0]
        if clock.now > deadline + 5:
            raise AssertionError(f"no outcome for {task} round {round_id} by its deadline")
        await asyncio.sleep(0.15)
        clock.advance(TIMING.takeover_s / 4)


async def deal_noise(coordinator: LiveNode, task: str, round_id: int) -> dict[str, dict[str, str]]:
    committee = coordinator.node.ctx.roster.committee(task, round_id)
    answers = await coordinator.node.rounds._ask_all(
        committee, "noise", {"task": task, "round": round_id})
    assert len(answers) == 3
    return {committee[seat].node_id: a.body["deal"] for seat, a in answers.items()}


ROUND_STEPS = ("held", "reveal", "verify", "noise", "partial", "sign")


def take_down(live: LiveNode, monkeypatch: pytest.MonkeyPatch,
              steps: tuple[str, ...] = ROUND_STEPS) -> None:
    """The node answers none of ``steps`` (503): by default as if it were down for the close."""
    async def down(envelope: Any, remote: str | None) -> dict[str, Any]:
        raise Unavailable("down for this test")

    for step in steps:
        monkeypatch.setattr(live.node.rounds, f"handle_{step}", down)


async def test_dp_round_fails_when_fewer_than_t_plus_1_members_deal_noise(
    trio: list[LiveNode], clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With only the coordinator's noise in the total, it could subtract it: fail, not release."""
    dealt: list[str] = []
    original = rounds.RoundService.handle_noise

    async def local_only(self: Any, envelope: Any, remote: str | None) -> dict[str, Any]:
        if remote != "local":
            raise Unavailable("no noise from this member")
        dealt.append(self.ctx.node_id)
        return await original(self, envelope, remote)

    monkeypatch.setattr(rounds.RoundService, "handle_noise", local_only)
    await add_dp_task(trio, clock)
    round_id = await contribute_dp(trio, [20.0, 21.0, 22.0])
    result = await run_to_deadline(trio, clock, "temp_dp", round_id, trio[1])
    assert dealt and all(d == dealt[0] for d in dealt[:1]), "only coordinators dealt"
    assert result["status"] == "failed"
    assert result["statistics"] is None
    assert result["reason"] == "only 1 of 3 committee members dealt DP noise, at least 2 needed"


async def test_member_refuses_dp_partial_without_its_own_noise_or_too_few_dealers(
    trio: list[LiveNode], clock: FakeClock
) -> None:
    await add_dp_task(trio, clock)
    round_id = await contribute_dp(trio, [20.0, 21.0, 22.0])
    into_grace(clock, round_id)
    coordinator, member, third = seated(trio, "temp_dp", round_id)
    deals = await deal_noise(coordinator, "temp_dp", round_id)
    statements = await statements_of(coordinator, "temp_dp", round_id)
    evidence = await verification_evidence(coordinator.node.rounds, "temp_dp", round_id,
                                           statements)
    senders = sorted(live.node_id for live in trio)
    me = member.node_id

    def ask(dealers: dict[str, dict[str, str]]) -> Any:
        return member.node.rounds.handle_partial(
            partial_request(coordinator, "temp_dp", round_id, senders, statements, evidence,
                            dealers, me),
            "test")

    # Its own noise alone: one dealer, t + 1 = 2 needed.
    with pytest.raises(Unprocessable) as err:
        await ask({me: deals[me]})
    assert err.value.code == "insufficient_noise" and err.value.field == "body.dealers"
    # Two dealers, but not this member: the two could know the total noise.
    with pytest.raises(Unprocessable) as err:
        await ask({d: deals[d] for d in (coordinator.node_id, third.node_id)})
    assert err.value.code == "own_noise_missing"
    # A share the coordinator sealed itself under this member's name is not its own deal.
    ctx = coordinator.node.ctx
    forged_share = b64url_encode(seal_share(
        member.node.ctx.keys.hpke_public, member.node.ctx.keys.hpke_suite,
        pack_elements(np.zeros(7, dtype=np.uint64)),
        share_aad(ctx.federation_id, noise_context("temp_dp"), round_id, me, me)))
    forged = {d: deals[d] for d in (coordinator.node_id, me)}
    forged[me] = {**forged[me], me: forged_share}
    with pytest.raises(Unprocessable) as err:
        await ask(forged)
    assert err.value.code == "own_noise_missing"
    assert await member.node.ctx.storage.get_commit("temp_dp", round_id) is None
    # Its own deal and another: accepted and committed with that dealer set.
    answer = await ask({d: deals[d] for d in (coordinator.node_id, me)})
    assert answer["reply"]["body"]["round"] == round_id
    commit = await member.node.ctx.storage.get_commit("temp_dp", round_id)
    assert commit is not None and list(commit.dealers) == sorted([coordinator.node_id, me])


async def test_partial_sum_over_fewer_than_min_contributors_is_refused(
    trio: list[LiveNode], clock: FakeClock, http: aiohttp.ClientSession
) -> None:
    """One member must not get another's partial sum over a single household."""
    values = [21.37, 18.93, 24.61]
    round_id = await contribute_all(trio, values)
    into_grace(clock, round_id)
    curious, member, _ = seated(trio, "temp", round_id)
    victim = next(live for live in trio if live not in (curious, member))
    statements = await statements_of(curious, "temp", round_id)
    evidence = await verification_evidence(curious.node.rounds, "temp", round_id, statements)
    status, body = await post(http, member, "/round/partial",
                              partial_request(curious, "temp", round_id, [victim.node_id],
                                              statements, evidence),
                              signer=(curious.node.ctx.keys, clock))
    assert status == 422, body
    assert body["error"]["field"] == "body.senders"
    assert body["error"]["code"] == "contributor_set_refused"
    assert await member.node.ctx.storage.get_commit("temp", round_id) is None
    # The refusal committed nothing: the round still releases over every household.
    clock.advance(2)
    result = await wait_result(member)
    assert result["status"] == "released" and result["contributors"] == 3
    assert result["statistics"]["mean"] == pytest.approx(np.mean(values), abs=0.005)


@pytest.mark.parametrize("first", ["down", "not_dealing", "up"])
async def test_takeover_continues_the_committed_noise_dealers(
    trio: list[LiveNode], clock: FakeClock, monkeypatch: pytest.MonkeyPatch,
    first: str, caplog: pytest.LogCaptureFixture,
) -> None:
    """Seat 0 committed seat 1 with all three dealers' noise, then stopped; seat 1 takes over.

    The takeover must use exactly those dealers: if one of them is gone, the
    other members cannot add matching noise and the round fails rather than
    release a total with mismatched noise. "down": seat 0 answers nothing (its held
    statement and seed are gone too); "not_dealing": it still answers held, reveal and
    verify, but deals, sums and signs no more, so the dealer check itself decides.
    """
    counted_noise(monkeypatch)
    await add_dp_task(trio, clock)
    round_id = await contribute_dp(trio, [20.0, 21.0, 22.0])
    into_grace(clock, round_id)
    seat0, second, third = seated(trio, "temp_dp", round_id)
    deals = await deal_noise(seat0, "temp_dp", round_id)
    statements = await statements_of(seat0, "temp_dp", round_id)
    evidence = await verification_evidence(seat0.node.rounds, "temp_dp", round_id, statements)
    senders = sorted(live.node_id for live in trio)
    await second.node.rounds.handle_partial(
        partial_request(seat0, "temp_dp", round_id, senders, statements, evidence, deals,
                        second.node_id),
        "test")

    # A committed member refuses the same set with other dealers (its stored sum has all three).
    two = {d: deals[d] for d in (second.node_id, third.node_id)}
    with pytest.raises(Conflict, match="other verdicts or other noise dealers") as err:
        await second.node.rounds.handle_partial(
            partial_request(seat0, "temp_dp", round_id, senders, statements, evidence, two,
                            second.node_id), "test")
    assert err.value.code == "committed_elsewhere"

    if first != "up":
        take_down(seat0, monkeypatch, ROUND_STEPS if first == "down" else
                  ("noise", "partial", "sign"))
        await second.node.rounds._close_guarded("temp_dp", round_id)
        for live in trio:  # no further attempts: the deadline decides
            live.node.rounds._failures[("temp_dp", round_id)] = (9, float("inf"))
        result = await run_to_deadline(trio, clock, "temp_dp", round_id, second)
    else:
        await second.node.rounds.close_round("temp_dp", round_id)
        result = await wait_result(second, "temp_dp")
        assert second.node_id in result["signed_by"] and len(result["signed_by"]) >= 2
    if first == "up":
        assert result["status"] == "released"
        assert result["statistics"]["count"] == 3 + sum(NOISE_COUNTS)
    else:
        # The committed plan needs the absent dealer's noise: fail, never release a total
        # whose noise does not match.
        assert result["status"] == "failed" and result["statistics"] is None
    if first == "not_dealing":
        assert "noise dealers this round was committed to are not all reachable" in caplog.text


async def test_a_takeover_after_the_reveal_finishes_without_the_member_that_went_down(
    trio: list[LiveNode], clock: FakeClock, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Seat 0 gathered every seed and verifier share, then went down. The others are bound
    to its statement set and remember its seed (it came with the verify request), so seat 1
    takes over with exactly that set and releases the exact statistics without seat 0."""
    values = [20.0, 21.0, 23.5]
    round_id = await contribute_all(trio, values)
    into_grace(clock, round_id)
    seat0, second, _ = seated(trio, "temp", round_id)
    statements = await statements_of(seat0, "temp", round_id)
    await verification_evidence(seat0.node.rounds, "temp", round_id, statements)
    take_down(seat0, monkeypatch)
    await second.node.rounds.close_round("temp", round_id)
    result = await wait_result(second)
    assert result["status"] == "released" and result["contributors"] == 3
    assert result["statistics"]["mean"] == pytest.approx(np.mean(values), abs=0.005)
    assert seat0.node_id not in result["signed_by"]


async def test_a_member_that_sees_another_commitment_does_not_release_its_sum(
    trio: list[LiveNode], clock: FakeClock
) -> None:
    """Commit first, look second: of two honest members asked for different sets, at most one
    releases. Here another member already committed elsewhere (an earlier coordinator)."""
    round_id = await contribute_all(trio, [20.0, 21.0, 22.0])
    into_grace(clock, round_id)
    first, second, third = seated(trio, "temp", round_id)
    statements = await statements_of(first, "temp", round_id)
    evidence = await verification_evidence(first.node.rounds, "temp", round_id, statements)
    everyone = sorted(live.node_id for live in trio)
    other = RoundCommit("temp", round_id, tuple(everyone[:2]), b"", first.node_id, clock(), (),
                        ())
    await third.node.ctx.storage.put_commit(other)
    with pytest.raises(Conflict) as err:
        await second.node.rounds.handle_partial(
            partial_request(first, "temp", round_id, everyone, statements, evidence), "test")
    assert err.value.code == "conflicting_commitment"
    # It stays committed (a tombstone), so no other set can be asked of it either.
    commit = await second.node.ctx.storage.get_commit("temp", round_id)
    assert commit is not None and list(commit.senders) == everyone


async def test_an_equivocating_member_is_named_and_stops_the_release(
    trio: list[LiveNode], clock: FakeClock
) -> None:
    """A member whose forwarded statement differs from the one it hands out itself."""
    round_id = await contribute_all(trio, [20.0, 21.0, 22.0])
    into_grace(clock, round_id)
    first, second, third = seated(trio, "temp", round_id)
    statements = await statements_of(first, "temp", round_id)
    everyone = sorted(live.node_id for live in trio)
    # ``third`` signs a second, different statement (it holds all three, claims one more),
    # committing to a seed of its choosing that it hands the coordinator to reveal.
    seed = secrets.token_bytes(32)
    forged = sign_held(third.node.ctx.keys, third.node.ctx.federation_id, "temp",
                              round_id, sorted([*everyone, "0" * 32]), seed_commitment(seed))
    swapped = [forged if s["statement"]["member"] == third.node_id else s for s in statements]
    # The honest members reveal and verify for these statements; t + 1 verifier shares do.
    committee = first.node.ctx.roster.committee("temp", round_id)
    honest = [seat for seat, m in enumerate(committee) if m.node_id != third.node_id]
    base = {"task": "temp", "round": round_id, "statements": swapped}
    revealed = await first.node.rounds._ask_all([committee[s] for s in honest], "reveal", base,
                                                seats=honest)
    seeds = {committee[seat].node_id: a.body["seed"] for seat, a in revealed.items()}
    seeds[third.node_id] = seed.hex()
    verified = await first.node.rounds._ask_all([committee[s] for s in honest], "verify",
                                                {**base, "seeds": seeds}, seats=honest)
    assert sorted(verified) == honest
    evidence = {"seeds": seeds,
                "verifications": {str(seat): a.envelope for seat, a in verified.items()}}
    with pytest.raises(Conflict, match=f"{third.node.ctx.config.name} signed two different "
                                       "held statements") as err:
        await second.node.rounds.handle_partial(
            partial_request(first, "temp", round_id, everyone, swapped, evidence), "test")
    assert err.value.code == "equivocation"
    status = await second.node.status()
    named = {m["node_id"]: m for m in status["misbehaviour"]["members"]}
    assert named[third.node_id]["kinds"] == {"equivocation": 1}


async def test_a_close_that_keeps_failing_is_retried_a_bounded_number_of_times(
    trio: list[LiveNode], clock: FakeClock, monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="mpc_backend.rounds")
    calls: dict[str, int] = {}

    async def broken(self: Any, task_id: str, round_id: int) -> None:
        calls[self.ctx.node_id] = calls.get(self.ctx.node_id, 0) + 1
        raise RuntimeError("storage on fire")

    monkeypatch.setattr(rounds.RoundService, "close_round", broken)
    round_id = await contribute_all(trio, [20.0, 21.0, 22.0])
    clock.advance(PERIOD + 2)
    for _ in range(120):  # the scheduler runs on real time and reads the fake clock
        await asyncio.sleep(0.1)
        clock.advance(TIMING.takeover_s)
        if await trio[0].node.results.latest("temp", 0, 1):
            break
    result = await wait_result(trio[0])
    assert result["round"] == round_id and result["status"] == "failed"
    assert result["reason"].startswith("not released within")
    assert calls and max(calls.values()) <= rounds.MAX_CLOSE_ATTEMPTS
    loud = [r for r in caplog.records if r.levelno >= logging.INFO and "storage on fire"
            in (r.exc_text or "") + r.getMessage()]
    assert len(loud) <= len(calls), "one logged traceback per member, not one per attempt"


async def test_a_coordinator_holds_the_next_seat_back_once_and_cannot_stall_it(
    trio: list[LiveNode], clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A live coordinator delays the next seat for one takeover period; asking again and
    again (the stalling attack) does not extend that."""
    started: list[str] = []

    async def record(self: Any, task_id: str, round_id: int) -> None:
        started.append(self.ctx.node_id)

    monkeypatch.setattr(rounds.RoundService, "close_round", record)
    round_id = await contribute_all(trio, [20.0, 21.0, 22.0])
    first, second, _ = seated(trio, "temp", round_id)
    end = (round_id + 1) * PERIOD
    base = {"task": "temp", "round": round_id}
    seat1 = [second.node.ctx.roster.member(second.node_id)]
    turn = end + TIMING.grace_s + TIMING.takeover_s  # seat 1's own turn
    clock.now = turn - 1.0
    assert await first.node.rounds._ask_all(seat1, "held", base, seats=[1])
    clock.now = turn + 0.1
    await asyncio.sleep(0.8)
    assert second.node_id not in started, "held back while the coordinator's claim is fresh"
    # The coordinator keeps asking; its claim still ends one takeover after its first request.
    clock.now = turn - 1.0 + TIMING.takeover_s - 0.2
    assert await first.node.rounds._ask_all(seat1, "held", base, seats=[1])
    clock.now = turn - 1.0 + TIMING.takeover_s + 0.1
    for _ in range(40):
        if second.node_id in started:
            break
        await asyncio.sleep(0.05)
    assert second.node_id in started


@pytest.mark.parametrize("households", [3, 4])
async def test_a_malformed_contribution_is_excluded_by_verification_and_never_summed(
    tmp_path: Path, clock: FakeClock, households: int
) -> None:
    """A report that fails its validity proof (it counts as two households) is left out of
    the contributor set by the co-signed verdict, not summed: the round is still decided over
    the valid reports (released with enough of them, else insufficient), the result names the
    sender, every member records it, and no partial sum of it is ever computed."""
    async for nodes in federation_of(households, tmp_path, clock):
        cheat, honest = nodes[0], nodes[1:]
        ctx = cheat.node.ctx
        spec = ctx.roster.task("temp").spec  # type: ignore[union-attr]
        round_id = int(clock() // PERIOD)
        vector = encode_report(spec, 20.0)
        vector[0] = 2  # claims to be two households
        committee = ctx.roster.committee("temp", round_id)
        sealed = seal_vector(ctx.keys, ctx.federation_id, spec, round_id, committee, vector,
                             FieldRNG())
        for member, ciphertext in zip(committee, sealed, strict=True):
            await by_id(nodes, member.node_id).node.ingest.handle_shares(
                shares_envelope(ctx.keys, ctx.federation_id, [("temp", round_id, ciphertext)],
                                now=clock()), "test")
        values = [21.0, 22.0, 24.0][: len(honest)]
        for live, value in zip(honest, values, strict=True):
            await live.node.household.contribute("temp", value)
        valid = sorted(live.node_id for live in honest)
        result = await run_to_deadline(nodes, clock, "temp", round_id, honest[0])
        assert result["excluded"] == [{"household": cheat.node_id, "verdict": "invalid"}]
        assert result["contributors"] == len(valid)
        if len(valid) >= spec.min_contributors:
            assert result["status"] == "released" and result["reason"] is None
            assert result["statistics"]["count"] == len(valid)
            assert result["statistics"]["mean"] == pytest.approx(np.mean(values), abs=0.005)
        else:
            assert result["status"] == "insufficient" and result["statistics"] is None
            # The reason goes to every member: it names counts, no aggregate value.
            assert result["reason"] == (f"{len(valid)} valid contributors, at least "
                                        f"{spec.min_contributors} needed")
        for live in nodes:  # one decision, on every member
            seen = await wait_result(live)
            assert (seen["round"], seen["status"], seen["excluded"], seen["signed_by"]) == (
                round_id, result["status"], result["excluded"], result["signed_by"])
        summed = 0
        for member in committee:  # a partial sum only ever over the valid reports, if any
            storage = by_id(nodes, member.node_id).node.ctx.storage
            commit = await storage.get_commit("temp", round_id)
            if result["status"] == "insufficient":
                assert commit is None
            elif commit is not None:
                summed += 1
                assert list(commit.senders) == valid
                assert commit.excluded == ((cheat.node_id, "invalid"),)
            record = await storage.get_result("temp", round_id)
            assert record is not None
            assert record.doc["result"]["senders_digest"] == (
                senders_digest(valid) if result["status"] == "released" else None)
        assert summed >= (spec.t + 1 if result["status"] == "released" else 0)
        status = await honest[0].node.status()
        named = {m["node_id"]: m for m in status["misbehaviour"]["members"]}
        assert named[cheat.node_id]["kinds"].get("invalid_report") == 1


async def test_a_restarted_member_takes_no_share_after_its_held_statement(
    trio: list[LiveNode], clock: FakeClock, tmp_path: Any
) -> None:
    """The statement is final: a share acknowledged after it would never be summed, and the
    household would wrongly believe it counted. A restart must not forget that."""
    from tests.backend.conftest import start_node, stop_node  # noqa: PLC0415

    for live, value in zip(trio[:2], [20.0, 21.0], strict=True):
        await live.node.household.contribute("temp", value)
    round_id = int(clock() // PERIOD)
    into_grace(clock, round_id)  # the round ended; late shares are still accepted
    await statements_of(trio[0], "temp", round_id)  # every member signs its statement
    index = 2
    await stop_node(trio[index])
    trio[index] = await start_node(tmp_path / f"n{index}", f"house{index}", clock)
    restarted = trio[index].node
    ctx = restarted.ctx  # its own household's share arrives late, inside the grace
    spec = ctx.roster.task("temp").spec  # type: ignore[union-attr]
    committee = ctx.roster.committee("temp", round_id)
    sealed = seal_vector(ctx.keys, ctx.federation_id, spec, round_id, committee,
                         encode_report(spec, 19.0), FieldRNG())
    ct = sealed[[m.node_id for m in committee].index(ctx.node_id)]
    late = shares_envelope(ctx.keys, ctx.federation_id, [("temp", round_id, ct)], now=clock())
    with pytest.raises(Unprocessable) as err:
        await restarted.ingest.handle_shares(late, "test")
    assert err.value.code == "outside_round_window"
