"""Round closing with three in-process nodes on loopback HTTP and a steerable clock."""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np
import pytest

from mpc_backend.arith import FieldRNG, shamir_share
from mpc_backend.node import rounds
from mpc_backend.node.errors import Conflict
from mpc_backend.node.rounds import _choose_contributors, _reconstruct
from tests.backend.conftest import PERIOD, FakeClock, LiveNode


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
    assert len({r["signature"] for r in results}) == 1
    # Once decided, committee members no longer keep the round's shares.
    for live in trio:
        assert await live.node.ctx.storage.rounds_holding_shares() == []


async def test_too_few_contributors_release_nothing(trio: list[LiveNode], clock: FakeClock) -> None:
    await trio[0].node.household.contribute("temp", 20.0)
    clock.advance(PERIOD + 2)
    result = await wait_result(trio[2])
    assert result["status"] == "insufficient"
    assert result["statistics"] is None
    assert result["reason"] == "1 contributors, at least 2 needed"


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

    monkeypatch.setattr(rounds, "noise_vector", fake_noise)
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


async def test_member_commits_to_one_contributor_set_only(
    trio: list[LiveNode], clock: FakeClock
) -> None:
    round_id = await contribute_all(trio, [20.0, 21.0, 22.0])
    clock.now = (round_id + 1) * PERIOD + 0.5  # ended, inside the grace: nobody closes yet
    coordinator, member = trio[0].node, trio[1].node
    senders = sorted(live.node_id for live in trio)
    committee = coordinator.ctx.roster.committee("temp", round_id)
    seats = {m.node_id: seat for seat, m in enumerate(committee)}
    first = await coordinator.rounds._ask_all(
        [member.ctx.me()], "partial", {"task": "temp", "round": round_id, "senders": senders},
        seats=[seats[member.ctx.node_id]],
    )
    assert first, "member answered the first set"
    with pytest.raises(rounds._Abort):
        await coordinator.rounds._ask_all(
            [member.ctx.me()], "partial",
            {"task": "temp", "round": round_id, "senders": senders[:2]},
            seats=[seats[member.ctx.node_id]],
        )
    # The refusal is a 409 at the member's handler.
    envelope = rounds.sign_envelope(coordinator.ctx.keys, "round-partial",
                                    coordinator.ctx.federation_id,
                                    {"task": "temp", "round": round_id, "senders": senders[1:]},
                                    now=clock())
    with pytest.raises(Conflict):
        await member.rounds.handle_partial(envelope, "test")


def test_contributor_set_is_the_largest_intersection() -> None:
    held = {
        0: {"held": ["a", "b", "c"]},
        1: {"held": ["a", "b", "c", "d"]},
        2: {"held": ["a", "b", "d"]},  # missed c
    }
    # All three share only {a, b}; seats 0+1 share {a, b, c}; seats 1+2 share {a, b, d}.
    senders, group, dealers = _choose_contributors(held, t=1)
    assert len(senders) == 3 and len(group) == 2 and dealers is None
    assert set(senders) <= set(held[group[0]]["held"]) & set(held[group[1]]["held"])
    committed = {0: {"held": ["a", "b"], "committed": ["a", "b"], "dealers": ["x", "y"]},
                 1: {"held": ["a", "b", "c"]}}
    assert _choose_contributors(committed, t=1) == (["a", "b"], [0, 1], ["x", "y"])


def test_conflicting_commitments_continue_the_plan_most_members_can_finish() -> None:
    held = {
        0: {"held": ["a", "b"], "committed": ["a", "b"], "dealers": []},
        1: {"held": ["a", "b", "c"], "committed": ["a", "b", "c"], "dealers": []},
        2: {"held": ["a", "b", "c"]},  # not committed, can join either plan
    }
    # Seat 2 can finish either plan; on a tie the one with more contributors wins, and
    # the member committed to the other plan is not asked.
    assert _choose_contributors(held, t=1) == (["a", "b", "c"], [1, 2], [])
    # Seat 2 missed c: only the {a, b} plan has two members able to finish it.
    held[2] = {"held": ["a", "b"]}
    assert _choose_contributors(held, t=1) == (["a", "b"], [0, 2], [])
    # Nobody can join: members committed to different sets and no set has t + 1.
    del held[2]
    with pytest.raises(ValueError, match="2 different contributor set"):
        _choose_contributors(held, t=1)


def test_reconstruction_cross_checks_a_third_partial_sum() -> None:
    secret = np.array([3, 1234, 99], dtype=np.uint64)
    shares = shamir_share(secret, 1, 3, FieldRNG())
    partials = {seat: shares[seat] for seat in range(3)}
    assert np.array_equal(_reconstruct(partials, 1), secret)
    corrupted = dict(partials)
    corrupted[2] = corrupted[2].copy()
    corrupted[2][1] ^= np.uint64(1)
    assert _reconstruct(corrupted, 1) is None
    assert np.array_equal(_reconstruct({0: partials[0], 2: partials[2]}, 1), secret)
