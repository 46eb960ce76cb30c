"""Peer calls that time out and are retried: a slow but live member still counts.

A retry is a new, freshly signed message (the receiver refuses a nonce it has
seen), and every peer request is idempotent, so a retry after a processed but
unanswered attempt gets the same answer.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from mpc_backend.crypto import b64url_decode
from tests.backend.conftest import TIMING, FakeClock, LiveNode, verification_evidence
from tests.backend.test_node_round_faults import into_grace, seated
from tests.backend.test_node_rounds import contribute_all


def slow_first_answer(live: LiveNode, step: str, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The member handles the first request of ``step`` but answers after the peer timeout."""
    calls: list[int] = []
    handler = getattr(live.node.rounds, f"handle_{step}")

    async def slow(envelope: Any, remote: str | None) -> dict[str, Any]:
        calls.append(1)
        answer = await handler(envelope, remote)
        if len(calls) == 1:
            await asyncio.sleep(TIMING.peer_timeout_s + 0.5)  # the caller has given up
        return answer

    monkeypatch.setattr(live.node.rounds, f"handle_{step}", slow)
    return calls


@pytest.mark.parametrize("step", ["held", "partial"])
async def test_retry_after_a_lost_answer_succeeds(
    trio: list[LiveNode], clock: FakeClock, monkeypatch: pytest.MonkeyPatch, step: str
) -> None:
    round_id = await contribute_all(trio, [20.0, 21.0, 22.0])
    into_grace(clock, round_id)
    coordinator, slow_member, _ = seated(trio, "temp", round_id)
    committee = coordinator.node.ctx.roster.committee("temp", round_id)
    held = await coordinator.node.rounds._ask_all(committee, "held",
                                                  {"task": "temp", "round": round_id})
    statements = [a.body["statement"] for a in held.values()]
    evidence = await verification_evidence(coordinator.node.rounds, "temp", round_id, statements)
    calls = slow_first_answer(slow_member, step, monkeypatch)
    body = {"task": "temp", "round": round_id,
            "senders": sorted(live.node_id for live in trio),
            "statements": statements, **evidence}
    answers = await coordinator.node.rounds._ask_all(committee, step, body)
    assert len(calls) == 2, "the member got a retry"
    assert sorted(answers) == [0, 1, 2], "the slow member's retried answer counts"
    if step == "partial":
        # The retry returns the partial sum the first attempt committed.
        commit = await slow_member.node.ctx.storage.get_commit("temp", round_id)
        assert commit is not None
        assert b64url_decode(answers[1].body["partial"]) == commit.partial
