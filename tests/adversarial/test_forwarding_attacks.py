"""A committee member forwards households' uploads dishonestly; no share is lost or forged.

Every member sits on the committee (k = 4), so each honest household uploads its round to
one of the three others, chosen by ``choose_forwarder``, which passes the other two
members' requests on. Mallory's node (``patches.evil_forwarder``) drops them, alters
every body by a byte, sends each on twice, answers each with an ack it made up, answers
malformed garbage, or stays silent past the household's timeout. The
threat model (``mpc_backend.node.forwarding``): the forwarder can drop, delay, replay
and lie, not read or forge. For each attack, a round in which at least one honest
household uploads through mallory: every honest household's share reaches all four
members (mallory ingests its own honestly), each household that uploaded through mallory
says in its log that it sent the rest directly (but after a replay, whose first copy is
the genuine request and acked as such), the honest members saw what the attack predicts
(a body that does not match its digest; a replay), and the round releases the three
honest readings' statistics, each counted once.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator

import pytest

from mpc_backend.node.forwarding import choose_forwarder
from tests.backend.nodes import NodeProcess

from .conftest import HONEST_TIMING, PERIOD, TASK_ARGS, Federation, elm_street, outcome

pytestmark = pytest.mark.slow

TASKS = ("fwd_a", "fwd_b", "fwd_c")
VALUES = (19.0, 20.5, 22.0)
# What an honest member's log shows for each attack, if anything.
SEEN_BY_MEMBER = {"alter": "body does not match its signed digest",
                  "replay": "refused a replayed request to /peer/v1/shares"}


@pytest.fixture(scope="module")
def street(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Federation]:
    with elm_street(tmp_path_factory.mktemp("forwarding-attacks"), HONEST_TIMING) as cluster:
        for task in TASKS:
            cluster.nodes[0].cli("task", "add", "--metric", "indoor temperature", "--id",
                                 task, "--k", "4", "--t", "1", *TASK_ARGS)
        yield cluster


def through_mallory(street: Federation, round_id: int) -> list[tuple[NodeProcess, str]]:
    """The (honest household, task) uploads of ``round_id`` that mallory would forward."""
    ids = [node.node_id for node in street.nodes]
    return [(house, task) for house in street.honest for task in TASKS
            if choose_forwarder(house.node_id, task, round_id,
                                [i for i in ids if i != house.node_id]) == street.mallory.node_id]


@pytest.mark.parametrize("mode", ["drop", "alter", "replay", "forge", "garbage", "silent"])
def test_a_dishonest_forwarder_costs_a_round_trip_never_a_share(street: Federation,
                                                                mode: str) -> None:
    street.restart_mallory("evil_forwarder", mode=mode)
    marks = {node.name: len(node.log_text()) for node in street.nodes}
    for _ in range(6):  # a round in which some honest household uploads through mallory
        now = time.time()
        round_id = math.floor(now / PERIOD) + 1
        attacked = through_mallory(street, round_id)
        if attacked:
            break
        time.sleep(round_id * PERIOD - now)
    assert attacked, "no honest upload went through mallory in six rounds"
    time.sleep(round_id * PERIOD - time.time() + 0.3)
    for house, value in zip(street.honest, VALUES, strict=True):
        for task in TASKS:
            status, answer = house.api("POST", "/readings", {"task": task, "value": value})
            assert status == 200 and answer["round"] == round_id, answer
            assert answer["acknowledged_by"] == 4, (house.name, task, answer)
    assert f"EVIL evil_forwarder {mode}" in street.mallory.log_text()[marks["mallory"]:]
    for house, task in attacked:
        logged = house.log_text()[marks[house.name]:]
        # A replay forwards the genuine request first: its ack is the member's own.
        forwarded_not = f"round {round_id} not delivered to" in logged and "via mallory" in logged
        went_direct = forwarded_not or f"round {round_id} through mallory failed" in logged
        assert went_direct == (mode != "replay"), (house.name, task)
    if mode in SEEN_BY_MEMBER:
        targets = [n for n in street.honest if any(n is not house for house, _ in attacked)]
        assert any(SEEN_BY_MEMBER[mode] in n.log_text()[marks[n.name]:] for n in targets)
    for task in TASKS:
        for node in street.honest:
            result = outcome(node, task, round_id)
            assert result["status"] == "released" and result["contributors"] == 3, result
            assert result["statistics"]["mean"] == pytest.approx(sum(VALUES) / 3, abs=0.006)
