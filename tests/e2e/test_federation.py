"""End to end: five real node processes on 127.0.0.1, a federation built with the CLI.

Each test uses its own task and round, contributes known values from every
household and compares the released statistics with numpy on the plaintext
values; faults (SIGKILL, restart, SIGSTOP) hit members of that round's
committee. Tests run in file order on one federation; each restores the nodes
it stopped.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mpc_backend.arith import P
from mpc_backend.storage import DB_FILE_NAME
from tests.backend.nodes import Cluster, NodeProcess, wait_for

from .conftest import PERIOD, STREETS_WITH_POSTGRES

pytestmark = pytest.mark.slow

LOW, RES = -1000.0, 0.001
EDGES = [18.0, 20.0, 22.0, 24.0]
# Distinctive values: their fixed-point codes and squares are searched for on disk.
VALUES = {
    "temp": [21.373, 18.931, 24.617, 19.482, 22.869],
    "kill_one": [20.514, 23.106, 17.442, 21.958, 19.077],
    "kill_two": [22.222, 18.181, 20.202, 23.323, 19.191],
    "restart": [19.734, 21.286, 24.052, 18.517, 22.603],
    "hang": [20.045, 22.731, 18.866, 23.594, 21.119],
    "away": [21.505, 19.808, 23.909, 18.707, 22.404],
}


def start_of_next_round() -> None:
    """Sleep until just after the next round boundary, so a whole round lies ahead."""
    now = time.time()
    time.sleep((math.floor(now / PERIOD) + 1) * PERIOD - now + 0.3)


def contribute(cluster: Cluster, task: str, values: list[float]) -> tuple[int, list[str]]:
    start_of_next_round()
    rounds, committees = set(), set()
    for node, value in zip(cluster.nodes, values, strict=True):
        answer = node.cli_json("contribute", "--task", task, "--value", str(value))
        assert answer["status"] == "accepted"
        assert answer["acknowledged_by"] == 3
        rounds.add(answer["round"])
        committees.add(tuple(answer["committee"]))
    assert len(rounds) == 1 and len(committees) == 1, "contributions straddled a round"
    return rounds.pop(), list(committees.pop())


def result_of(node: NodeProcess, task: str, round_id: int) -> dict[str, Any] | None:
    answer = node.cli_json("results", "--task", task, "--limit", "10")
    return next((r for r in answer["results"] if r["round"] == round_id), None)


def wait_results(
    nodes: list[NodeProcess], task: str, round_id: int
) -> list[dict[str, Any]]:
    timeout = (round_id + 1) * PERIOD - time.time() + 25
    return [
        wait_for(lambda n=n: result_of(n, task, round_id), timeout,
                 what=f"{task} round {round_id} result on {n.name}")
        for n in nodes
    ]


def check_statistics(result: dict[str, Any], values: list[float]) -> None:
    """Released statistics equal numpy's on the plaintext values, within the resolution."""
    assert result["status"] == "released", result
    stats = result["statistics"]
    data = np.array(values)
    assert result["contributors"] == len(values)
    assert stats["count"] == len(values)
    assert stats["sum"] == pytest.approx(data.sum(), abs=RES * len(values))
    assert stats["mean"] == pytest.approx(data.mean(), abs=RES / 2)
    assert stats["stddev"] == pytest.approx(data.std(), abs=RES)
    assert stats["variance"] == pytest.approx(data.var(), abs=RES * 2 * data.std() + RES**2)
    expected_bins = np.bincount(np.searchsorted(EDGES, data, side="right"), minlength=5)
    assert [b["count"] for b in stats["histogram"]] == expected_bins.tolist()
    assert [b["low"] for b in stats["histogram"]][1:] == EDGES
    ordered = np.sort(data)
    for name, p in (("p10", 0.1), ("p25", 0.25), ("p50", 0.5), ("p75", 0.75), ("p90", 0.9)):
        exact = ordered[math.ceil(p * len(values)) - 1]
        edges = [LOW, *EDGES, -LOW]
        bin_index = int(np.searchsorted(EDGES, exact, side="right"))
        width = edges[bin_index + 1] - edges[bin_index]
        assert abs(stats["quantiles"][name] - exact) <= width, (name, stats["quantiles"])


@pytest.mark.parametrize("federation", STREETS_WITH_POSTGRES, indirect=True)
def test_round_releases_plaintext_statistics(federation: Cluster) -> None:
    values = VALUES["temp"]
    round_id, _ = contribute(federation, "temp", values)
    for node, value in zip(federation.nodes, values, strict=True):
        node.cli_json("contribute", "--task", "temp_dp", "--value", str(value))
    results = wait_results(federation.nodes, "temp", round_id)
    for result in results:
        check_statistics(result, values)
    signers = {tuple(r["signed_by"]) for r in results}
    assert len(signers) == 1, "every member holds the same co-signed result"
    assert len(signers.pop()) >= 2, "signed by t + 1 committee members"
    if federation.postgres is not None:  # the nodes kept their state there, not in SQLite
        assert not any((n.data_dir / DB_FILE_NAME).exists() for n in federation.nodes)

    noisy = wait_results(federation.nodes[:1], "temp_dp", round_id)[0]
    assert noisy["status"] == "released" and noisy["dp_epsilon"] == 1
    # Laplace noise of scale 4 per member: a count 100 off would be a broken protocol.
    assert abs(noisy["statistics"]["count"] - len(values)) < 100

    status = federation.nodes[2].cli_json("status")
    assert status["federation"]["members"] == 5
    assert status["federation"]["members_online"] == 5
    temp = next(t for t in status["tasks"] if t["task"] == "temp")
    assert temp["last_round"]["status"] == "released"
    if federation.broker is None:
        assert status["relay"] is None
        assert all(m["url"] and m["mailbox"] is None for m in status["members"])
    else:  # nobody has an address another hub could connect to: the relay carried it all
        assert status["relay"]["connected"] is True
        assert status["relay"]["url"] == federation.broker.endpoint.url
        assert all(m["url"] is None and m["mailbox"] for m in status["members"])


def _encodings(value: float) -> list[bytes]:
    q = round((value - LOW) / RES)
    return [
        repr(value).encode(),
        str(q).encode(),
        q.to_bytes(8, "little"),
        (q * q % P).to_bytes(8, "little"),
    ]


@pytest.mark.parametrize("federation", STREETS_WITH_POSTGRES, indirect=True)
def test_no_plaintext_value_on_disk_or_in_logs(federation: Cluster) -> None:
    """After a round, no node's files or logs hold any household's value or its encoding."""
    files: list[Path] = []
    for node in federation.nodes:
        files += [p for p in node.data_dir.rglob("*") if p.is_file()]
        files += node.logs
    if federation.broker is not None:  # what the relay stored and logged
        files += [p for p in federation.broker.directory.rglob("*") if p.is_file()]
    if federation.postgres is not None:  # the server's tables, WAL and log
        files += [p for p in federation.postgres.directory.rglob("*") if p.is_file()]
    assert files
    blobs = {path: path.read_bytes() for path in files}
    for value in VALUES["temp"]:
        for needle in _encodings(value):
            holders = [str(path) for path, blob in blobs.items() if needle in blob]
            assert not holders, f"{needle!r} (from {value}) found in {holders}"


def test_round_survives_a_committee_member_killed_mid_round(federation: Cluster) -> None:
    values = VALUES["kill_one"]
    round_id, committee = contribute(federation, "kill_one", values)
    victim = federation.by_id(committee[0])  # the member that would close the round
    victim.kill()
    try:
        survivors = [n for n in federation.nodes if n is not victim]
        for result in wait_results(survivors, "kill_one", round_id):
            check_statistics(result, values)
            assert victim.node_id not in result["signed_by"]
    finally:
        victim.start()


def test_two_committee_members_down_fail_the_round_visibly(federation: Cluster) -> None:
    values = VALUES["kill_two"]
    round_id, committee = contribute(federation, "kill_two", values)
    victims = [federation.by_id(n) for n in committee[:2]]
    for victim in victims:
        victim.kill()
    try:
        survivors = [n for n in federation.nodes if n not in victims]
        for result in wait_results(survivors, "kill_two", round_id):
            assert result["status"] == "failed"
            assert result["reason"] == "only 1 of 3 committee members reachable"
            assert result["statistics"] is None
        status = survivors[0].cli_json("status")
        task = next(t for t in status["tasks"] if t["task"] == "kill_two")
        assert task["last_round"]["status"] == "failed"
        assert status["federation"]["members_online"] == 3
    finally:
        for victim in victims:
            victim.start()


def test_restart_mid_round_loses_no_acknowledged_share(federation: Cluster) -> None:
    values = VALUES["restart"]
    round_id, committee = contribute(federation, "restart", values)
    restarted = federation.by_id(committee[1])
    restarted.kill()  # no clean shutdown
    restarted.start()
    # With seat 0 gone, seats 1 and 2 must reconstruct: seat 1 only has what it stored.
    other = federation.by_id(committee[0])
    other.kill()
    try:
        survivors = [n for n in federation.nodes if n is not other]
        for result in wait_results(survivors, "restart", round_id):
            check_statistics(result, values)
    finally:
        other.start()


def test_member_that_never_answers_is_timed_out(federation: Cluster) -> None:
    values = VALUES["hang"]
    round_id, committee = contribute(federation, "hang", values)
    frozen = federation.by_id(committee[0])
    frozen.pause()  # accepts TCP connections, never answers
    try:
        survivors = [n for n in federation.nodes if n is not frozen]
        for result in wait_results(survivors[:2], "hang", round_id):
            check_statistics(result, values)
    finally:
        frozen.resume()
    # Once it answers again it catches up with the released result and keeps running.
    result = wait_results([frozen], "hang", round_id)[0]
    check_statistics(result, values)
    assert frozen.proc is not None and frozen.proc.poll() is None


def test_a_member_away_when_the_result_was_pushed_gets_it_on_return(
    federation: Cluster,
) -> None:
    """A household off the committee stops after contributing, so the result's push finds
    it away (over direct HTTP nobody can hold it); back, it catches up from a member."""
    values = VALUES["away"]
    round_id, committee = contribute(federation, "away", values)
    away = next(n for n in federation.nodes if n.node_id not in committee)
    away.stop()
    try:
        others = [n for n in federation.nodes if n is not away]
        for result in wait_results(others, "away", round_id):
            check_statistics(result, values)
    finally:
        away.start()
    result = wait_for(lambda: result_of(away, "away", round_id), 20,
                      what="the result on the member that was away")
    check_statistics(result, values)
    if federation.broker is None:  # by HTTP it can only have come from catching up
        assert "caught up on 1 result(s) from house" in away.log_text()
