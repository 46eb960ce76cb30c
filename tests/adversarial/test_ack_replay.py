"""A keyless relay answers a household's share delivery with an ack it kept from another one.

Three real node processes built with the CLI; member_m's roster URL is a relay in
this test process that forwards to it. The relay keeps the ack of an earlier
delivery (another household's, or the same household's in an earlier round) and
answers with it instead of forwarding. The household must not count member_m as
having acknowledged (``contribute``'s ``acknowledged_by``), must log it and keep
retrying; once the relay forwards again, the delivery completes.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.adversarial.relay import Relay
from tests.backend.conftest import _loopback_sockets  # noqa: F401 - autouse here too
from tests.backend.nodes import Cluster, NodeProcess, allow_loopback_sockets, free_port, wait_for

pytestmark = pytest.mark.slow

PERIOD = 20
TIMING = ("--grace", "1", "--takeover", "4", "--peer-timeout", "1.5", "--peer-attempts", "2")
TASK_ARGS = ("--unit", "°C", "--min", "-20", "--max", "40", "--resolution", "0.01",
             "--stats", "count,sum,mean", "--period", str(PERIOD), "--min-contributors", "3")


@pytest.fixture(scope="module")
def neighbourhood(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Cluster, Relay]]:
    allow_loopback_sockets()
    root: Path = tmp_path_factory.mktemp("relay")
    cluster = Cluster(root)
    member = NodeProcess("member_m", root / "member_m", free_port(), root / "member_m.log")
    relay = Relay(member.port)
    relay.start()
    try:
        cluster.add("house_a", *TIMING)
        cluster.add("house_b", *TIMING)
        member.init(*TIMING, "--public-url", relay.url)
        cluster.nodes.append(member)
        for node in cluster.nodes:
            node.start()
        founder = cluster.federate("Relay Lane")
        founder.cli("task", "add", "--metric", "indoor temperature", "--id", "temp", *TASK_ARGS)
        first = wait_for(lambda: all(n.cli_json("task", "list")["tasks"] for n in cluster.nodes)
                         and founder.cli_json("task", "list")["tasks"][0], 20,
                         what="the task on every node")
        time.sleep(max(0.0, first["first_round_starts_at"] - time.time() + 0.3))
        yield cluster, relay
    finally:
        cluster.close()
        relay.close()


def round_ahead(min_left: float) -> None:
    """Sleep, if need be, into the next round, so that ``min_left`` seconds of it lie ahead."""
    now = time.time()
    end = (math.floor(now / PERIOD) + 1) * PERIOD
    if end - now < min_left:
        time.sleep(end - now + 0.3)


def next_round() -> None:
    now = time.time()
    time.sleep((math.floor(now / PERIOD) + 1) * PERIOD - now + 0.3)


def contribute(node: NodeProcess, value: float) -> dict[str, object]:
    answer = node.cli_json("contribute", "--task", "temp", "--value", str(value))
    assert answer["status"] == "accepted"
    return answer


def replay_and_recover(cluster: Cluster, relay: Relay, value: float) -> None:
    """Household a contributes while the relay replays its kept ack; then the relay forwards."""
    household, _, member = cluster.nodes

    def delivered() -> int:
        return sum(d.status == 200 for d in relay.from_sender(household.node_id, replayed=False))

    before = delivered()
    try:
        answer = contribute(household, value)
        assert member.node_id in answer["committee"]
        assert answer["acknowledged_by"] == 2, "the replayed ack counted"
        assert relay.from_sender(household.node_id, replayed=True), "the attack was attempted"
        # The outbox retries: each attempt again gets the replayed ack and is refused.
        wait_for(lambda: len(relay.from_sender(household.node_id, replayed=True)) >= 3, 8,
                 what="the household's retries")
        assert f"ignored an acknowledgement from {member.name}" in household.log_text()
    finally:
        relay.replay = None
    wait_for(lambda: delivered() > before, 8, what="the share delivered once the relay forwards")
    time.sleep(0.5)  # the relay records the answer before the household has read it
    sent = len(relay.from_sender(household.node_id, replayed=False))
    again = contribute(household, value)
    assert again["duplicate"] is True and again["acknowledged_by"] == 3
    assert len(relay.from_sender(household.node_id, replayed=False)) == sent, (
        "nothing was still pending")


def test_another_households_ack_does_not_count(neighbourhood: tuple[Cluster, Relay]) -> None:
    cluster, relay = neighbourhood
    neighbour = cluster.nodes[1]
    round_ahead(14)
    assert contribute(neighbour, 19.5)["acknowledged_by"] == 3
    relay.replay = relay.from_sender(neighbour.node_id, replayed=False)[-1].answer
    replay_and_recover(cluster, relay, 21.25)


def test_an_earlier_rounds_ack_does_not_count(neighbourhood: tuple[Cluster, Relay]) -> None:
    cluster, relay = neighbourhood
    household = cluster.nodes[0]
    next_round()  # one the household has not contributed to yet
    earlier = contribute(household, 20.0)
    assert earlier["acknowledged_by"] == 3
    kept = relay.from_sender(household.node_id, replayed=False)[-1].answer
    next_round()
    relay.replay = kept
    replay_and_recover(cluster, relay, 22.5)
