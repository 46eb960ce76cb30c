"""A member passes its own shares off as another household's; the committee refuses them.

A committee member checks one signature per share delivery: the request's, over
the exact body bytes, by the member that sends it (``mpc_backend.node.ingest``).
Mallory's node (``patches.impersonate_household``) seals its report to the share
context that names house2, wraps it in an envelope naming house2 as its sender,
and sends it in requests it signs as itself. Were the envelope's sender not held
to the request's signer, those shares would open and count as house2's report.
Every honest committee member refuses them, names both ids in its log, and
stores nothing; an honest household's report is acknowledged as before.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from tests.backend.nodes import NodeProcess

from .conftest import HONEST_TIMING, PERIOD, TASK_ARGS, Federation, elm_street

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def street(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Federation]:
    with elm_street(tmp_path_factory.mktemp("ingest-attacks"), HONEST_TIMING) as cluster:
        cluster.nodes[0].cli("task", "add", "--metric", "indoor temperature", "--id", "temp",
                             "--k", "3", "--t", "1", *TASK_ARGS)
        victim = cluster.honest[2]
        cluster.restart_mallory("impersonate_household", victim=victim.node_id)
        time.sleep(PERIOD - time.time() % PERIOD + 0.3)  # the task's first round, from its start
        yield cluster


def ingest(node: NodeProcess) -> dict[str, int]:
    load = node.api("GET", "/status")[1]["load"]
    return {"reports": load["ingest"]["reports"], "rejected": load["shares_rejected"]}


def test_shares_in_another_households_name_are_refused(street: Federation) -> None:
    mallory, victim = street.mallory, street.honest[2]
    before = {node.name: ingest(node) for node in street.honest}
    status, answer = mallory.api("POST", "/readings", {"task": "temp", "value": 39.0})
    assert "EVIL impersonate_household" in mallory.log_text(), "the patch never acted"
    assert status != 200 or answer["acknowledged_by"] == 0, answer
    committee = [node for node in street.honest if node.node_id in answer.get(
        "committee", [n.node_id for n in street.honest])]
    reason = (f"rejected shares message from {victim.node_id} (127.0.0.1): WrongContextError: "
              f"shares message names sender {victim.node_id}, but the request carrying it is "
              f"signed by {mallory.node_id}")
    refused = [node for node in committee if reason in node.log_text()]
    assert refused, "no honest committee member saw (and refused) the shares"
    for node in street.honest:
        after = ingest(node)
        assert after["reports"] == before[node.name]["reports"], f"{node.name} stored them"
        if node in refused:
            assert after["rejected"] > before[node.name]["rejected"]
    # An honest household's report still goes through, with every seat acknowledging it.
    status, answer = street.honest[0].api("POST", "/readings", {"task": "temp", "value": 21.0})
    assert status == 200 and answer["acknowledged_by"] == 3, answer
