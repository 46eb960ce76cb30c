"""In-process nodes on real loopback HTTP with a shared, steerable clock.

``trio`` is a three-member federation (founder + two joiners, built through the
same services the CLI uses) with task ``temp``; the clock starts just before
the task's first round, and tests move it with ``clock.advance``. Background
loops run in real time but decide by the fake clock, so a round closes as soon
as the test moves the clock past its end.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from mpc_backend.api.server import make_app
from mpc_backend.crypto import load_or_create_keys, new_api_token
from mpc_backend.node.config import NodeConfig, Timing
from mpc_backend.node.node import Node
from mpc_backend.storage import SQLiteStorage
from tests.backend.nodes import allow_loopback_sockets, free_port

PERIOD = 60
TASK = {
    "task_id": "temp", "metric": "indoor temperature", "unit": "°C", "low": -20.0,
    "high": 40.0, "resolution": 0.01, "stats": ["count", "sum", "mean", "variance", "stddev",
                                                "histogram", "quantiles"],
    "buckets": [18.0, 20.0, 22.0], "period_s": PERIOD, "min_contributors": 3,
}
TIMING = Timing(grace_s=1.0, takeover_s=2.5, peer_timeout_s=1.0, peer_attempts=2, backoff_s=0.05)


class FakeClock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class LiveNode:
    node: Node
    runner: web.AppRunner
    token: str
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def node_id(self) -> str:
        return self.node.ctx.node_id


async def start_node(data_dir: Path, name: str, clock: FakeClock, **config: Any) -> LiveNode:
    keys = load_or_create_keys(data_dir)
    port = free_port()
    node = Node(
        data_dir,
        NodeConfig(name=name, listen_host="127.0.0.1", listen_port=port, public_url=None,
                   timing=TIMING, **config),
        keys, SQLiteStorage(data_dir), clock=clock,
    )
    await node.start()
    token = new_api_token()
    runner = web.AppRunner(make_app(node, token), access_log=None, shutdown_timeout=0.5)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return LiveNode(node, runner, token, port)


async def stop_node(live: LiveNode) -> None:
    await live.runner.cleanup()
    await live.node.stop()


@pytest.fixture(autouse=True)
def _loopback_sockets() -> None:
    allow_loopback_sockets()


@pytest.fixture
def clock() -> FakeClock:
    # Just before a round boundary of the test period, far from real time on purpose.
    return FakeClock(1_800_000_000.0 - 5.0)


async def federation_of(
    size: int, tmp_path: Path, clock: FakeClock, **task: Any
) -> AsyncIterator[list[LiveNode]]:
    """``size`` nodes in one federation with task ``temp`` (``TASK`` updated by ``task``);
    the clock is moved into the task's first round."""
    nodes: list[LiveNode] = []
    try:
        for i in range(size):
            nodes.append(await start_node(tmp_path / f"n{i}", f"house{i}", clock))
        founder = nodes[0].node.federation
        await founder.create("Test Street")
        for live in nodes[1:]:
            invite = await founder.invite(600)
            await live.node.federation.join(invite["token"])
        await nodes[1].node.federation.propose_task({**TASK, **task})
        for live in nodes:  # wait for the roster push to land everywhere
            for _ in range(100):
                roster = live.node.ctx.roster
                if roster.task("temp") is not None and len(roster.members) == size:
                    break
                await asyncio.sleep(0.02)
        clock.now = math.ceil(clock.now / PERIOD) * PERIOD + 1.0  # the task's first round
        yield nodes
    finally:
        for live in nodes:
            await stop_node(live)


@pytest.fixture
async def trio(tmp_path: Path, clock: FakeClock) -> AsyncIterator[list[LiveNode]]:
    async for nodes in federation_of(3, tmp_path, clock):
        yield nodes


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session
