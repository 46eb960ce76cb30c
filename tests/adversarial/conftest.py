"""Four real ``mpc-backend serve`` processes built with the CLI: three honest, one attacker.

The attacker ``mallory`` is an ordinary member (it joined with an invite) whose
process runs with one function patched (``tests/adversarial/patches.py``); each
test restarts it with the patch it needs. Its own timing lets it act before the
honest members do, as an attacker would arrange.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.backend.conftest import _loopback_sockets  # noqa: F401 - autouse here too
from tests.backend.nodes import Cluster, NodeProcess, allow_loopback_sockets, wait_for
from tests.relay_broker import TRANSPORTS, running_broker

PERIOD = 10
HONEST_TIMING = ("--grace", "2", "--takeover", "4", "--peer-timeout", "1.5",
                 "--peer-attempts", "2")
QUICK_TIMING = ("--grace", "0.1", "--takeover", "0.5", "--peer-timeout", "0.4",
                "--peer-attempts", "1")
TASK_ARGS = ("--unit", "°C", "--min", "-20", "--max", "40", "--resolution", "0.01",
             "--stats", "count,mean,stddev,histogram", "--buckets", "18,20,22",
             "--period", str(PERIOD), "--min-contributors", "3")
TASKS = ("capture", "stall", "forge", "split", "shrink")


class Federation(Cluster):
    @property
    def honest(self) -> list[NodeProcess]:
        return self.nodes[:3]

    @property
    def mallory(self) -> NodeProcess:
        return self.nodes[3]

    def restart_mallory(self, patch: str, **args: Any) -> None:
        self.mallory.stop()
        self.mallory.patch, self.mallory.patch_args = patch, args
        self.mallory.start()


@contextmanager
def elm_street(root: Path, mallory_timing: tuple[str, ...], mallory_patch: str | None = None,
               transport: str = "direct") -> Iterator[Federation]:
    """Three honest households and mallory (with ``mallory_patch``, if any), serving and
    federated over ``transport`` (direct HTTP, or a Mosquitto relay on loopback); every
    process stopped afterwards."""
    allow_loopback_sockets()
    cluster = Federation(root)
    with ExitStack() as stack:
        create_args: tuple[str, ...] = ()
        if transport == "relay":
            cluster.broker = stack.enter_context(running_broker(root / "relay"))
            create_args = ("--relay-admin", str(cluster.broker.admin_file))
        try:
            for i in range(3):
                cluster.add(f"house{i}", *HONEST_TIMING)
            cluster.add("mallory", *mallory_timing).patch = mallory_patch
            for node in cluster.nodes:
                node.start()
            cluster.federate("Elm Street", *create_args)
            yield cluster
        finally:
            cluster.close()


@pytest.fixture(scope="module", params=TRANSPORTS)
def federation(tmp_path_factory: pytest.TempPathFactory,
               request: pytest.FixtureRequest) -> Iterator[Federation]:
    with elm_street(tmp_path_factory.mktemp("adversarial"), QUICK_TIMING,
                    transport=request.param) as cluster:
        for task in TASKS:
            cluster.nodes[0].cli("task", "add", "--metric", "indoor temperature", "--id",
                                 task, "--k", "3", "--t", "1", *TASK_ARGS)
        yield cluster


def contribute_where_mallory_sits(
    federation: Federation, task: str, values: list[float]
) -> tuple[int, list[str]]:
    """Every household contributes in one round whose committee holds mallory."""
    for _ in range(6):
        now = time.time()
        time.sleep((math.floor(now / PERIOD) + 1) * PERIOD - now + 0.3)
        answers = [node.cli_json("contribute", "--task", task, "--value", str(value))
                   for node, value in zip(federation.nodes, values, strict=True)]
        assert len({a["round"] for a in answers}) == 1, "contributions straddled a round"
        if federation.mallory.node_id in answers[0]["committee"]:
            return answers[0]["round"], answers[0]["committee"]
    raise AssertionError("mallory sat on no committee of six rounds")


def outcome(node: NodeProcess, task: str, round_id: int, timeout: float = 40) -> dict[str, Any]:
    def find() -> dict[str, Any] | None:
        answer = node.cli_json("results", "--task", task, "--limit", "20")
        return next((r for r in answer["results"] if r["round"] == round_id), None)

    return wait_for(find, timeout, interval=0.5, what=f"{task} round {round_id} on {node.name}")


def reports_about(node: NodeProcess, suspect: str) -> dict[str, int]:
    """The misbehaviour kinds ``node`` recorded against ``suspect``, from its status."""
    status = node.api("GET", "/status")[1]
    for member in status["misbehaviour"]["members"]:
        if member["node_id"] == suspect:
            return member["kinds"]
    return {}
