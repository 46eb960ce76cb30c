"""Households that only contribute, admitted by the founder's signed record: real processes.

Three members that compute (the founder among them) and three input-only
households built with the CLI. The households' joins publish no roster version;
a member that is up learns each admission by push, one that was down while they
joined fetches them when it comes back; the households' shares are accepted and
the round releases their mean, on the members and, pushed, on the households.
Then 30 more households join over the peer API as the benchmark's do: the
founder's answer to the 30th is no bigger than to the first.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.backend.nodes import (
    Cluster,
    NodeProcess,
    allow_loopback_sockets,
    households_known,
    join_household,
    wait_for,
)

from .conftest import PERIOD, TASK_ARGS, TIMING

pytestmark = pytest.mark.slow

VALUES = [19.25, 21.5, 23.125]


@pytest.fixture(scope="module")
def street(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    allow_loopback_sockets()
    cluster = Cluster(tmp_path_factory.mktemp("admissions"))
    try:
        for i in range(3):
            cluster.add(f"house{i}", *TIMING).start()
        cluster.federate("Elm Street")
        cluster.nodes[0].cli("task", "add", "--metric", "indoor temperature", "--id", "temp",
                             *TASK_ARGS)
        yield cluster
    finally:
        cluster.close()


def test_households_join_by_admission_and_their_round_is_released(street: Cluster) -> None:
    founder, member, away = street.nodes
    version = founder.api("GET", "/status")[1]["federation"]["roster_version"]
    away.stop()  # misses every admission push
    households = []
    for i in range(3):
        node = street.add(f"household{i}", "--input-only", *TIMING)
        node.start()
        out = node.cli("join", founder.cli("invite", "--expires", "10m").stdout.strip()).stdout
        assert "as a household" in out and f"roster v{version}" in out
        households.append(node)
    status = founder.api("GET", "/status?households=1")[1]
    assert status["federation"]["roster_version"] == version, "no roster version per household"
    assert status["federation"]["households"] == 3
    assert {m["name"] for m in status["members"]} >= {"household0", "household2"}
    wait_for(lambda: households_known(member) == 3, 10, what="admissions pushed to house1")
    away.start()
    wait_for(lambda: households_known(away) == 3, 10, what="house2 catching up")
    assert "caught up on admissions 1..3 from the founder" in away.log_text()
    own = households[0].api("GET", "/status")[1]
    assert [m["name"] for m in own["members"]][-1] == "household0"

    now = time.time()
    time.sleep((math.floor(now / PERIOD) + 1) * PERIOD - now + 0.3)
    rounds = set()
    for node, value in zip(households, VALUES, strict=True):
        answer = node.cli_json("contribute", "--task", "temp", "--value", str(value))
        assert answer["acknowledged_by"] == 3, answer
        rounds.add(answer["round"])
    assert len(rounds) == 1, "contributions straddled a round"
    round_id = rounds.pop()

    def released(node: NodeProcess) -> dict[str, Any] | None:
        results = node.cli_json("results", "--task", "temp", "--limit", "5")["results"]
        return next((r for r in results if r["round"] == round_id), None)

    for node in (member, households[1]):  # a household gets the result pushed too
        result = wait_for(lambda n=node: released(n), PERIOD + 25, what=f"result on {node.name}")
        assert result["status"] == "released", result
        assert result["contributors"] == 3
        assert result["statistics"]["mean"] == pytest.approx(sum(VALUES) / 3, abs=0.01)


def test_the_founders_answer_does_not_grow_with_the_households(street: Cluster) -> None:
    founder = street.nodes[0]
    before = founder.api("GET", "/status")[1]["federation"]
    answers = [join_household(founder, f"bulk {i:02d}") for i in range(30)]
    after = founder.api("GET", "/status")[1]["federation"]
    assert after["roster_version"] == before["roster_version"]
    assert after["households"] == before["households"] + 30
    seqs = [json.loads(a)["admission"]["admission"]["seq"] for a in answers]
    assert seqs == list(range(before["households"] + 1, before["households"] + 31))
    # The same size but for the digits of seq and time: the core roster, one record.
    assert len(answers[-1]) <= len(answers[0]) + 8, (len(answers[0]), len(answers[-1]))
    wait_for(lambda: households_known(street.nodes[1]) == after["households"], 10,
             what="the 30 admissions on house1")
