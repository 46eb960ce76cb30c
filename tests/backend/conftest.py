"""In-process nodes on real loopback HTTP with a shared, steerable clock.

``trio`` is a three-member federation (founder + two joiners, built through the
same services the CLI uses) with task ``temp``; the clock starts just before
the task's first round, and tests move it with ``clock.advance``. Background
loops run in real time but decide by the fake clock, so a round closes as soon
as the test moves the clock past its end.

Tests that drive a close by hand give their ``partial`` (and "insufficient"
``sign``) requests the verification evidence a coordinator gathers:
``verification_evidence`` (honest reveal and verify steps) and
``own_verifier_reply`` (a member's signed verifier shares for any seeds, as a
colluding member can sign them whatever statements it revealed for).
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from mpc_backend.api.server import make_app
from mpc_backend.crypto import b64url_encode, load_or_create_keys, new_api_token, sign_envelope
from mpc_backend.node.config import NodeConfig, Timing
from mpc_backend.node.node import Node
from mpc_backend.node.rounds import RoundService, _Plan
from mpc_backend.node.wire import pack_elements
from mpc_backend.protocol.contributors import answering_members, contributor_set, senders_digest
from mpc_backend.protocol.validity import joint_seed
from mpc_backend.storage import PostgresStorage, SQLiteStorage, Storage
from tests.backend.nodes import allow_loopback_sockets, free_port
from tests.postgres import postgres_server, postgres_url  # noqa: F401 - fixtures

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


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def storage_factory(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[], Storage]:
    """Makes unopened storages over one backing store (SQLite in ``tmp_path``, or a fresh
    PostgreSQL database): a second one sees what the first committed, like a restart."""
    if request.param == "sqlite":
        return lambda: SQLiteStorage(tmp_path)
    url: str = request.getfixturevalue("postgres_url")
    return lambda: PostgresStorage(url)


@pytest.fixture
async def storage(storage_factory: Callable[[], Storage]) -> AsyncIterator[Storage]:
    """An open storage, on each backend: the storage contract tests run against both."""
    store = storage_factory()
    await store.open()
    yield store
    await store.close()


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


async def verification_evidence(
    rounds: RoundService, task: str, round_id: int, statements: list[dict[str, Any]]
) -> dict[str, Any]:
    """``{"seeds", "verifications"}`` for ``statements``, gathered as the coordinator
    ``rounds`` gathers them: every signer reveals its seed (and binds itself to exactly
    these statements), every member holding the whole set signs its verifier shares."""
    spec = rounds.ctx.roster.tasks_by_id[task].spec
    committee = rounds.ctx.roster.committee(task, round_id)
    ids = [m.node_id for m in committee]
    held = {w["statement"]["member"]: frozenset(w["statement"]["senders"]) for w in statements}
    senders = contributor_set(held, spec.t)
    verifiers = [ids.index(m) for m in answering_members(held, senders)]
    seeds, verifications, _ = await rounds._verify(
        spec, committee, {"task": task, "round": round_id},
        _Plan(senders, sorted(held), None), statements, verifiers, {})
    return {"seeds": seeds, "verifications": verifications}


async def own_verifier_reply(
    rounds: RoundService, task: str, round_id: int, senders: list[str], seeds: dict[str, str]
) -> dict[str, Any]:
    """The member ``rounds``'s signed verifier shares of ``senders`` (from its own shares) for
    the randomness ``seeds`` give: what a colluding member can sign for any statements."""
    ctx = rounds.ctx
    spec = ctx.roster.tasks_by_id[task].spec
    joint = joint_seed(ctx.federation_id, task, round_id,
                       {m: bytes.fromhex(seed) for m, seed in seeds.items()})
    shares = await rounds._my_verifier(spec, round_id, senders, joint)
    return sign_envelope(ctx.keys, "round-verify-reply", ctx.federation_id,
                         {"task": task, "round": round_id,
                          "senders_digest": senders_digest(senders), "joint": joint.hex(),
                          "verifier": b64url_encode(pack_elements(shares))}, now=ctx.clock())
