"""A five-household federation of real ``mpc-backend serve`` processes, built with the CLI.

The street runs over direct HTTP and through a relay; tests parametrised with
``STREETS_WITH_POSTGRES`` also run on a direct street whose nodes each keep their state in
a database of their own on one throwaway PostgreSQL server."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.backend.conftest import _loopback_sockets  # noqa: F401 - autouse here too
from tests.backend.nodes import Cluster, allow_loopback_sockets
from tests.postgres import PostgresServer, postgres_server  # noqa: F401 - a fixture
from tests.relay_broker import TRANSPORTS, running_broker

# Short, test-friendly timing: rounds of 10 s (the minimum a task allows), 1 s grace,
# peer calls time out after 1.5 s, 2 attempts; the next committee member takes over
# after 4 s (it must exceed that call chain: 2 x 1.5 s + 0.25 s backoff).
TIMING = ("--grace", "1", "--takeover", "4", "--peer-timeout", "1.5", "--peer-attempts", "2")
PERIOD = 10
TASK_ARGS = (
    "--unit", "°C", "--min", "-1000", "--max", "1000", "--resolution", "0.001",
    "--stats", "count,sum,mean,variance,stddev,histogram,quantiles",
    "--buckets", "18,20,22,24", "--period", str(PERIOD), "--min-contributors", "3",
    "--k", "3", "--t", "1",
)
TASKS = ("temp", "kill_one", "kill_two", "restart", "hang", "away")
# For ``pytest.mark.parametrize("federation", STREETS_WITH_POSTGRES, indirect=True)``: a few
# representative tests, not the whole file (each street costs its setup and rounds).
STREETS_WITH_POSTGRES = [*TRANSPORTS, pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture(scope="module", params=TRANSPORTS)
def federation(tmp_path_factory: pytest.TempPathFactory,
               request: pytest.FixtureRequest) -> Iterator[Cluster]:
    """The street over direct HTTP, and again through a Mosquitto relay on loopback."""
    allow_loopback_sockets()
    root: Path = tmp_path_factory.mktemp("fed")
    cluster = Cluster(root)
    with contextlib.ExitStack() as stack:
        create_args: tuple[str, ...] = ()
        database: Callable[[str], str] | None = None
        if request.param == "relay":
            broker = stack.enter_context(running_broker(root / "relay"))
            create_args = ("--relay-admin", str(broker.admin_file))
            cluster.broker = broker
        elif request.param == "postgres":
            server: PostgresServer = request.getfixturevalue("postgres_server")
            cluster.postgres = server
            database = server.database
        yield from _street(cluster, create_args, database)


def _street(cluster: Cluster, create_args: tuple[str, ...],
            database: Callable[[str], str] | None = None) -> Iterator[Cluster]:
    """``database``: makes a PostgreSQL database for a node by name (default: SQLite)."""
    try:
        for i in range(5):
            storage = ("--database-url", database(f"house{i}")) if database else ()
            cluster.add(f"house{i}", *TIMING, *storage)
        for node in cluster.nodes:
            node.start()
        cluster.federate("Elm Street", *create_args)
        # Any member proposes; the founder publishes.
        for i, task in enumerate(TASKS):
            cluster.nodes[i % 5].cli("task", "add", "--metric", "indoor temperature",
                                     "--id", task, *TASK_ARGS)
        cluster.nodes[1].cli("task", "add", "--metric", "indoor temperature", "--id", "temp_dp",
                             *TASK_ARGS, "--dp-epsilon", "1")
        yield cluster
    finally:
        cluster.close()
