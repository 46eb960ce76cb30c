"""The neighbourhood's backend nodes: initialised and served through the real CLI.

With Home Assistant, household 1's Home Assistant founds the neighbourhood and makes the
invitations through its own flows (home_assistant.py) and the other households join with
the CLI; without it (--no-ha), the founder's CLI does it all (`federate_with_cli`).
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .processes import Supervisor

_LOGGER = logging.getLogger(__name__)

BASE_PORT = 8731
FEDERATION_NAME = "Demo street"
# The least the backend allows (a mean over two tells each the other's reading): with the
# default three households, every one of them must contribute for a round to be released.
MIN_CONTRIBUTORS = 3

# What the demo neighbourhood aggregates. Bucket edges sit on each task's resolution grid.
TASKS: tuple[dict[str, str], ...] = (
    {
        "--metric": "indoor_temperature",
        "--unit": "°C",
        "--min": "5",
        "--max": "35",
        "--resolution": "0.01",
        "--stats": "count,mean,stddev,histogram,quantiles",
        "--buckets": "16,18,20,22,24,26",
    },
    {
        "--metric": "pm25",
        "--unit": "µg/m³",
        "--min": "0",
        "--max": "500",
        "--resolution": "0.1",
        "--stats": "count,mean,stddev,histogram,quantiles",
        "--buckets": "5,10,15,25,35,50",
    },
    {
        "--metric": "co2",
        "--unit": "ppm",
        "--min": "300",
        "--max": "5000",
        "--resolution": "1",
        "--stats": "count,mean,stddev,histogram,quantiles",
        "--buckets": "600,800,1000,1400,2000",
    },
)


@dataclass(frozen=True)
class Node:
    """One household's backend node on loopback."""

    index: int
    data_dir: Path
    base_port: int = BASE_PORT

    @property
    def name(self) -> str:
        return f"Household {self.index + 1}"

    @property
    def port(self) -> int:
        return self.base_port + self.index

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def token(self) -> str:
        return (self.data_dir / "api_token").read_text().strip()


def cli(*args: str) -> dict[str, Any]:
    """Run `mpc-backend ARGS --json` and return its answer; a failure names the command."""
    argv = [sys.executable, "-m", "mpc_backend", *args, "--json"]
    done = subprocess.run(argv, capture_output=True, text=True, check=False)  # noqa: S603
    if done.returncode != 0:
        raise RuntimeError(f"mpc-backend {' '.join(args[:2])} failed: {done.stderr.strip()}")
    return json.loads(done.stdout) if done.stdout.strip() else {}


def wait_healthy(
    node: Node, proc: subprocess.Popen[bytes], log_file: Path, timeout: float = 30.0
) -> None:
    """Until the node answers; a node that exits instead (e.g. it refuses data an older
    version left in the demo dir) ends the wait with its last log line."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"{node.url}/api/v1/health", timeout=2):  # noqa: S310
                return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            if proc.poll() is not None:
                lines = log_file.read_text(errors="replace").strip().splitlines()
                # The CLI's one-line "error: ..." says why; noise may follow it on exit.
                errors = [line for line in lines if line.startswith("error: ")] or lines
                raise RuntimeError(
                    f"{node.name}'s node exited: {errors[-1] if errors else '(no output)'} "
                    f"(log: {log_file}; to start the demo afresh, delete {node.data_dir.parent})"
                ) from None
            if time.monotonic() > deadline:
                raise RuntimeError(f"{node.name}'s node did not answer on {node.url}") from None
            time.sleep(0.2)


def start_nodes(
    supervisor: Supervisor, root: Path, households: int, base_port: int = BASE_PORT
) -> list[Node]:
    """Init (once) and serve `households` nodes; idempotent across re-runs."""
    nodes = [Node(i, root / f"node-{i + 1}", base_port) for i in range(households)]
    serve_nodes(supervisor, root, nodes)
    return nodes


def serve_nodes(supervisor: Supervisor, root: Path, nodes: list[Node]) -> None:
    """`mpc-backend init` each node once, then serve them all until they answer."""
    for node in nodes:
        if not (node.data_dir / "config.json").exists():
            cli(
                "init",
                "--data-dir",
                str(node.data_dir),
                "--name",
                node.name,
                "--listen",
                f"127.0.0.1:{node.port}",
            )
    procs = [
        supervisor.start(
            node.name,
            [sys.executable, "-m", "mpc_backend", "serve", "--data-dir", str(node.data_dir)],
            log_file(root, node),
        )
        for node in nodes
    ]
    for node, proc in zip(nodes, procs, strict=True):
        wait_healthy(node, proc, log_file(root, node))


def in_federation(node: Node) -> bool:
    return cli("status", "--data-dir", str(node.data_dir)).get("federation") is not None


def check_transport(founder: Node, relay_admin: Path | None) -> None:
    """A federated founder must use the transport this run asks for (relay or direct)."""
    status = cli("status", "--data-dir", str(founder.data_dir))
    if status.get("federation") is not None and (
        (status.get("relay") is None) != (relay_admin is None)
    ):
        made = "without" if status.get("relay") is None else "with"
        raise RuntimeError(f"the demo federation in {founder.data_dir.parent} was made {made} a "
                           "relay; delete that directory to switch, or run the demo as before "
                           "(--direct selects direct HTTP)")


def join(node: Node, token: str) -> None:
    """`mpc-backend join`: what a neighbour does with the invitation they were given."""
    cli("join", "--data-dir", str(node.data_dir), token)
    _LOGGER.info("%s joined", node.name)


def log_file(root: Path, node: Node) -> Path:
    return root / "logs" / f"node-{node.index + 1}.log"


def federate_with_cli(nodes: list[Node], relay_admin: Path | None) -> None:
    """Found the federation on household 1 and let the others join, all with the CLI."""
    founder = nodes[0]
    check_transport(founder, relay_admin)
    if not in_federation(founder):
        relay = ("--relay-admin", str(relay_admin)) if relay_admin else ()
        cli("federation", "create", "--data-dir", str(founder.data_dir), "--name", FEDERATION_NAME,
            *relay)
        _LOGGER.info("founded federation %r on %s%s", FEDERATION_NAME, founder.name,
                     " through the relay" if relay_admin else " (direct HTTP)")
    for node in nodes[1:]:
        if not in_federation(node):
            invite = cli("invite", "--data-dir", str(founder.data_dir), "--expires", "10m")
            join(node, invite["token"])


def add_tasks(
    founder: Node,
    period: int,
    min_contributors: int = MIN_CONTRIBUTORS,
    tasks: tuple[dict[str, str], ...] = TASKS,
) -> None:
    """Tasks (the demo's by default) proposed by the founder, each once."""
    listed = cli("task", "list", "--data-dir", str(founder.data_dir))["tasks"]
    existing = {t["spec"]["metric"] for t in listed}
    for task in tasks:
        if task["--metric"] in existing:
            continue
        args = [item for pair in task.items() for item in pair]
        cli(
            "task",
            "add",
            "--data-dir",
            str(founder.data_dir),
            *args,
            "--period",
            str(period),
            "--min-contributors",
            str(min_contributors),
        )
        _LOGGER.info("task %s added (period %d s)", task["--metric"], period)
