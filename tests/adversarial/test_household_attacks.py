"""A household lies in its report; the committee's validity check leaves it out by name.

Mallory is an ordinary household here (it may or may not sit on a committee; as a
member it is honest). Its node replaces the encoded report before proving and
sharing it (``patches.lying_household``), one lie per task, the lies the
issue's attacker tried. Honest households report 19, 20 and 21. For every lie the
honest members release exactly the three honest readings' statistics, the
co-signed result names mallory as excluded, and their ``status`` records it.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from tests.backend.nodes import Cluster, NodeProcess
from tests.relay_broker import TRANSPORTS

from .conftest import HONEST_TIMING, PERIOD, elm_street, outcome, reports_about

pytestmark = pytest.mark.slow

HONEST = [19.0, 20.0, 21.0]
TASK_ARGS = ("--unit", "°C", "--min", "-20", "--max", "40", "--resolution", "0.01",
             "--stats", "count,mean,stddev,histogram", "--buckets", "18,20,22",
             "--period", str(PERIOD), "--min-contributors", "3", "--k", "3", "--t", "1")
# task -> (the lie, the verdict the committee reaches)
LIES = {
    "liar_count": ("count 1000, value 40", "invalid"),
    "liar_range": ("q twice the task's range", "invalid"),
    "liar_negative": ("negative q (P - 800)", "invalid"),
    "liar_squares": ("q^2 inconsistent with q", "invalid"),
    "liar_buckets": ("every histogram bucket set", "invalid"),
    "liar_shares": ("one seat's share off the polynomial", "inconsistent"),
}
DP_TASK = "liar_dp"


@pytest.fixture(scope="module", params=TRANSPORTS)
def street(tmp_path_factory: pytest.TempPathFactory,
           request: pytest.FixtureRequest) -> Iterator[Cluster]:
    with elm_street(tmp_path_factory.mktemp("household-attacks"), HONEST_TIMING,
                    "lying_household", transport=request.param) as cluster:
        founder = cluster.nodes[0]
        for task in LIES:
            founder.cli("task", "add", "--metric", "indoor temperature", "--id", task,
                        *TASK_ARGS)
        founder.cli("task", "add", "--metric", "indoor temperature", "--id", DP_TASK,
                    "--dp-epsilon", "4", *TASK_ARGS)
        yield cluster


@pytest.fixture(scope="module")
def lied_round(street: Cluster) -> int:
    """Every household contributes to every task in one round; mallory lies in each."""
    now = time.time()
    time.sleep((math.floor(now / PERIOD) + 1) * PERIOD - now + 0.3)

    def contribute(node: NodeProcess, task: str, value: float) -> int:
        status, answer = node.api("POST", "/readings", {"task": task, "value": value})
        assert status == 200, answer
        return int(answer["round"])

    # Concurrently, over the local API: 28 contributions must fit in one 10 s round even
    # on a slow machine (a CLI process per contribution would not).
    with ThreadPoolExecutor(max_workers=len(street.nodes)) as pool:
        rounds = set(pool.map(lambda job: contribute(*job), [
            (node, task, value) for task in [*LIES, DP_TASK]
            for node, value in zip(street.nodes, [*HONEST, 40.0], strict=True)]))
    assert len(rounds) == 1, "contributions straddled a round"
    return rounds.pop()


def honest_nodes(street: Cluster) -> list[NodeProcess]:
    return street.nodes[:3]


@pytest.mark.parametrize("task", list(LIES))
def test_a_lying_household_is_left_out_and_named(
    street: Cluster, lied_round: int, task: str
) -> None:
    """Released over the three honest households exactly; mallory excluded with its verdict."""
    mallory = street.nodes[3]
    lie, verdict = LIES[task]
    told = ("EVIL lying_household: a share off the polynomial" if task == "liar_shares"
            else f"EVIL lying_household: {task.removeprefix('liar_')} report for {task}")
    for node in honest_nodes(street):
        result = outcome(node, task, lied_round)
        assert result["status"] == "released", (lie, result)
        assert result["contributors"] == 3
        assert result["excluded"] == [{"household": mallory.node_id, "verdict": verdict}]
        stats = result["statistics"]
        assert stats["count"] == 3
        assert stats["mean"] == pytest.approx(np.mean(HONEST), abs=0.005)
        assert stats["stddev"] == pytest.approx(np.std(HONEST), abs=0.01)
        assert [b["count"] for b in stats["histogram"]] == [0, 1, 2, 0]
    assert told in mallory.log_text(), f"the lie ({lie}) was not told"


def test_the_lie_cannot_ride_on_dp_noise(street: Cluster, lied_round: int) -> None:
    """On a DP task the thousand-fold count is left out too: the noisy count stays near 3."""
    mallory = street.nodes[3]
    for node in honest_nodes(street):
        result = outcome(node, DP_TASK, lied_round)
        assert result["status"] == "released", result
        assert result["contributors"] == 3
        assert result["excluded"] == [{"household": mallory.node_id, "verdict": "invalid"}]
        # Three dealers' discrete-Laplace(1) noise: beyond 50 with odds below e^-45; the lie
        # would make it about 1003.
        assert abs(result["statistics"]["count"] - 3) < 50


def test_only_proven_lies_are_recorded_as_misbehaviour(street: Cluster, lied_round: int) -> None:
    """Every honest member records mallory's six provably invalid reports (``invalid_report``)
    and not the inconsistent one, which a committee member's lie could also have caused."""
    mallory = street.nodes[3]
    invalid = [t for t, (_, verdict) in LIES.items() if verdict == "invalid"] + [DP_TASK]
    for node in honest_nodes(street):
        for task in [*LIES, DP_TASK]:
            outcome(node, task, lied_round)
        assert reports_about(node, mallory.node_id) == {"invalid_report": len(invalid)}
