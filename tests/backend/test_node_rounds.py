"""Round closing with three in-process nodes on loopback HTTP and a steerable clock."""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np
import pytest

from mpc_backend.arith import FieldRNG, shamir_share
from mpc_backend.crypto import sign_envelope
from mpc_backend.node import round_steps
from mpc_backend.node.cosign import reconstruct_checked
from mpc_backend.node.errors import Unprocessable
from mpc_backend.node.node import KEEP_ROUND_STATE_S
from mpc_backend.node.round_steps import _Answer
from mpc_backend.node.rounds import _choose_plan
from mpc_backend.node.timeline import decision_deadline
from tests.backend.conftest import (
    PERIOD,
    TIMING,
    FakeClock,
    LiveNode,
    verification_evidence,
)


async def wait_result(live: LiveNode, task: str = "temp", timeout: float = 10.0) -> dict[str, Any]:
    for _ in range(int(timeout / 0.05)):
        found = await live.node.results.latest(task, 0, 1)
        if found:
            return found[0]
        await asyncio.sleep(0.05)
    raise AssertionError(f"no result for {task} on {live.node.ctx.config.name}")


async def contribute_all(trio: list[LiveNode], values: list[float]) -> int:
    rounds_seen = set()
    for live, value in zip(trio, values, strict=True):
        answer = await live.node.household.contribute("temp", value)
        assert answer["acknowledged_by"] == 3
        rounds_seen.add(answer["round"])
    assert len(rounds_seen) == 1
    return rounds_seen.pop()


async def test_round_releases_exact_statistics_to_every_member(
    trio: list[LiveNode], clock: FakeClock
) -> None:
    values = [21.37, 18.93, 24.61]
    await contribute_all(trio, values)
    clock.advance(PERIOD + 2)  # past the round end and the grace
    results = [await wait_result(live) for live in trio]
    data = np.array(values)
    for result in results:
        stats = result["statistics"]
        assert result["status"] == "released" and result["contributors"] == 3
        assert stats["mean"] == pytest.approx(data.mean(), abs=0.005)
        assert stats["stddev"] == pytest.approx(data.std(), abs=0.01)
        expected = np.bincount(np.searchsorted([18.0, 20.0, 22.0], data, side="right"),
                               minlength=4)
        assert [b["count"] for b in stats["histogram"]] == expected.tolist()
    # One document, co-signed by at least t + 1 = 2 committee members, on every node.
    assert len({tuple(r["signed_by"]) for r in results}) == 1
    assert len(results[0]["signed_by"]) >= 2
    # Once decided, committee members no longer keep the round's shares.
    for live in trio:
        assert await live.node.ctx.storage.rounds_holding_shares() == []


async def test_too_few_contributors_release_nothing(trio: list[LiveNode], clock: FakeClock) -> None:
    await trio[0].node.household.contribute("temp", 20.0)
    clock.advance(PERIOD + 2)
    result = await wait_result(trio[2])
    assert result["status"] == "insufficient"
    assert result["statistics"] is None
    spec = trio[2].node.ctx.roster.task("temp").spec  # type: ignore[union-attr]
    assert result["reason"] == f"1 contributors, at least {spec.min_contributors} needed"
    assert len(result["signed_by"]) >= spec.t + 1


async def test_dp_noise_is_the_sum_of_every_members_own_noise(
    trio: list[LiveNode], clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each member deals shares of its own noise; the total carries all of them."""
    dealt: list[np.ndarray] = []

    def fake_noise(spec: Any) -> np.ndarray:
        noise = np.zeros(7, dtype=np.int64)
        noise[0] = 5 + len(dealt)  # count noise: 5, 6, 7 for the three dealers
        dealt.append(noise)
        return noise

    monkeypatch.setattr(round_steps, "noise_vector", fake_noise)
    roster = trio[0].node.ctx.roster
    spec = roster.task("temp").spec  # type: ignore[union-attr]
    noisy = {**spec.to_dict(), "task_id": "temp_dp", "dp_epsilon": 1.0}
    noisy_task = await trio[0].node.federation.propose_task(noisy)
    for _ in range(100):
        if all(live.node.ctx.roster.task("temp_dp") for live in trio):
            break
        await asyncio.sleep(0.02)
    clock.now = noisy_task["task"]["first_round_starts_at"] + 1
    for live, value in zip(trio, [20.0, 21.0, 22.0], strict=True):
        await live.node.household.contribute("temp_dp", value)
    clock.advance(PERIOD + 2)
    result = await wait_result(trio[1], "temp_dp")
    assert result["status"] == "released"
    assert len(dealt) == 3, "every committee member dealt its own noise"
    assert result["statistics"]["count"] == 3 + 5 + 6 + 7


async def held_statements(coordinator: Any, round_id: int) -> list[dict[str, Any]]:
    committee = coordinator.ctx.roster.committee("temp", round_id)
    answers = await coordinator.rounds._ask_all(committee, "held",
                                               {"task": "temp", "round": round_id})
    return [a.body["statement"] for a in answers.values()]


def partial_request(coordinator: Any, round_id: int, senders: list[str],
                    statements: list[dict[str, Any]], evidence: dict[str, Any],
                    now: float) -> dict[str, Any]:
    return sign_envelope(coordinator.ctx.keys, "round-partial",
                                coordinator.ctx.federation_id,
                                {"task": "temp", "round": round_id, "senders": senders,
                                 "statements": statements, **evidence}, now=now)


def into_grace(clock: FakeClock, round_id: int) -> None:
    """Past the round's end, inside the grace: statements are signed, nobody closes yet."""
    clock.now = (round_id + 1) * PERIOD + TIMING.grace_s / 2


async def test_member_sums_only_the_set_the_statements_determine(
    trio: list[LiveNode], clock: FakeClock
) -> None:
    """Sets the statements do not determine are refused, and the asker named for it."""
    coordinator = trio[0].node
    round_id = await contribute_all(trio, [20.0, 21.0, 22.0])
    into_grace(clock, round_id)
    statements = await held_statements(coordinator, round_id)
    assert len(statements) == 3
    evidence = await verification_evidence(coordinator.rounds, "temp", round_id, statements)
    senders = sorted(live.node_id for live in trio)
    member = trio[1].node
    padded = sorted([*senders, "f" * 32])
    with pytest.raises(Unprocessable, match="not the verified reports of the one the held "
                                            r"statements determine \(0 failed") as err:
        await member.rounds.handle_partial(
            partial_request(coordinator, round_id, padded, statements, evidence, clock()),
            "test")
    assert err.value.code == "contributor_set_refused"
    # The full set is answered, and the member stays committed to it.
    answer = await member.rounds.handle_partial(
        partial_request(coordinator, round_id, senders, statements, evidence, clock()), "test")
    assert answer["reply"]["body"]["senders_digest"]
    assert await member.ctx.storage.get_commit("temp", round_id) is not None

    # Too few statements: a set of one statement could never be summed, so the member does
    # not even reveal its seed for it (which would bind it to that set for the round).
    round_id = await contribute_all(trio, [20.0, 21.0, 22.0])
    into_grace(clock, round_id)
    statements = await held_statements(coordinator, round_id)
    mine = [s for s in statements if s["statement"]["member"] == member.ctx.node_id]
    with pytest.raises(Unprocessable, match=r"1 held statement\(s\); at least t \+ 1 = 2") as err:
        await member.rounds.handle_reveal(sign_envelope(
            coordinator.ctx.keys, "round-reveal", coordinator.ctx.federation_id,
            {"task": "temp", "round": round_id, "statements": mine}, now=clock()), "test")
    assert err.value.code == "too_few_statements"
    assert await member.ctx.storage.get_verify_binding("temp", round_id) is None
    status = await member.status()
    named = {m["node_id"]: m for m in status["misbehaviour"]["members"]}
    assert named[coordinator.ctx.node_id]["kinds"]["contributor_set_refused"] == 1


async def test_commitment_and_statement_outlive_housekeeping(
    trio: list[LiveNode], clock: FakeClock
) -> None:
    """One sum per round for ever: tombstones survive the 24 h pruning of round state."""
    round_id = await contribute_all(trio, [20.0, 21.0, 22.0])
    into_grace(clock, round_id)
    coordinator, member = trio[0].node, trio[1].node
    statements = await held_statements(coordinator, round_id)
    evidence = await verification_evidence(coordinator.rounds, "temp", round_id, statements)
    senders = sorted(live.node_id for live in trio)
    await member.rounds.handle_partial(
        partial_request(coordinator, round_id, senders, statements, evidence, clock()), "test")
    clock.advance(KEEP_ROUND_STATE_S * 2)
    await member.housekeep()
    assert await member.ctx.storage.get_commit("temp", round_id) is not None
    assert await member.ctx.storage.get_held_statement("temp", round_id) is not None
    # Past the deadline the round takes no step at all, however it is asked.
    with pytest.raises(Unprocessable, match="past its decision deadline"):
        await member.rounds.handle_partial(
            partial_request(coordinator, round_id, senders, statements, evidence, clock()),
            "test")


async def test_an_undecided_round_fails_at_its_deadline_and_drops_its_shares(
    trio: list[LiveNode], clock: FakeClock
) -> None:
    """A round nobody closes (here: no coordinator ever runs) is failed by the deadline."""
    round_id = await contribute_all(trio, [20.0, 21.0, 22.0])
    spec = trio[0].node.ctx.roster.task("temp").spec  # type: ignore[union-attr]
    for live in trio:  # every close attempt is held back until the deadline
        live.node.rounds._failures[("temp", round_id)] = (1, float("inf"))
    clock.now = decision_deadline(spec, round_id) + 0.1
    result = await wait_result(trio[0])
    assert result["status"] == "failed" and "not released within" in result["reason"]
    for live in trio:
        for _ in range(100):
            if await live.node.ctx.storage.rounds_holding_shares() == []:
                break
            await asyncio.sleep(0.05)
        assert await live.node.ctx.storage.rounds_holding_shares() == []


def answers_of(**members: dict[str, Any]) -> tuple[dict[int, _Answer], list[str]]:
    ids = sorted(members)
    return {seat: _Answer(members[m], {}) for seat, m in enumerate(ids)}, ids


def test_a_fresh_plan_uses_every_statement() -> None:
    held = {"m0": frozenset("abc"), "m1": frozenset("abcd"), "m2": frozenset("abd")}
    answers, ids = answers_of(m0={}, m1={}, m2={})
    plan = _choose_plan(answers, ids, held, t=1)
    assert plan.senders == ["a", "b", "c", "d"]  # each named by at least two statements
    assert plan.statements == ["m0", "m1", "m2"] and plan.dealers is None


def test_a_commitment_to_another_set_does_not_steer_the_plan() -> None:
    """A member (say a liar) committed to its own chosen set: the plan stays the set every
    statement determines, and only a commitment to that same set fixes the DP dealers."""
    held = {"m0": frozenset("abc"), "m1": frozenset("abc"), "m2": frozenset("ab")}
    chosen = {"senders": ["a", "b"], "statements": ["m2", "m0"], "dealers": []}
    answers, ids = answers_of(m0={}, m1={}, m2={"committed": chosen})
    plan = _choose_plan(answers, ids, held, t=1)
    assert (plan.senders, plan.statements, plan.dealers) == (["a", "b", "c"],
                                                             ["m0", "m1", "m2"], None)
    same = {"senders": ["a", "b", "c"], "statements": ["m0", "m1"], "dealers": ["m0", "m1"]}
    answers, ids = answers_of(m0={"committed": same}, m1={}, m2={"committed": chosen})
    assert _choose_plan(answers, ids, held, t=1).dealers == ["m0", "m1"]


def test_reconstruction_cross_checks_a_third_partial_sum() -> None:
    secret = np.array([3, 1234, 99], dtype=np.uint64)
    shares = shamir_share(secret, 1, 3, FieldRNG())
    partials = {seat: shares[seat] for seat in range(3)}
    assert np.array_equal(reconstruct_checked(partials, 1), secret)
    corrupted = dict(partials)
    corrupted[2] = corrupted[2].copy()
    corrupted[2][1] ^= np.uint64(1)
    assert reconstruct_checked(corrupted, 1) is None
    assert np.array_equal(reconstruct_checked({0: partials[0], 2: partials[2]}, 1), secret)
