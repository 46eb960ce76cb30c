"""16 MiB garbage uploads to a real node's peer API are refused before they are read.

One ``mpc-backend serve`` process that founded a federation receives concurrent
16 MiB bodies of small JSON objects (about two million of them: parsed, they
would take hundreds of MB and a second of the event loop) at ``/peer/v1/results``
and ``/peer/v1/roster``, unsigned and under the founder's id with a forged
signature, while ``/peer/v1/health`` is polled. Health keeps answering, the
node's resident memory stays low and the node logs each refusal.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from mpc_backend.crypto import b64url_encode
from tests.backend.conftest import _loopback_sockets  # noqa: F401 - autouse here too
from tests.backend.nodes import Cluster, NodeProcess, allow_loopback_sockets

pytestmark = pytest.mark.slow

MiB = 1024 * 1024
GARBAGE = b"[" + b'{"a":0},' * (2 * MiB - 2) + b'{"a":0}]'  # just under 16 MiB of JSON
RSS_LIMIT_KB = 200 * 1024


@pytest.fixture
def founder(tmp_path: Path) -> Iterator[NodeProcess]:
    allow_loopback_sockets()
    cluster = Cluster(tmp_path)
    try:
        node = cluster.add("lone")
        node.start()
        node.cli("federation", "create", "--name", "Lone Lane")
        yield node
    finally:
        cluster.close()


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


async def test_big_unauthenticated_uploads_cost_the_node_nothing(founder: NodeProcess) -> None:
    assert founder.proc is not None
    pid = founder.proc.pid
    forged = {  # the founder's id is public; its signature is not
        "Hearth-Sender": founder.node_id,
        "Hearth-Time": str(int(time.time())),
        "Hearth-Digest": b64url_encode(hashlib.sha256(GARBAGE).digest()),
        "Hearth-Signature": b64url_encode(bytes(64)),
    }

    async def upload(session: aiohttp.ClientSession, path: str, headers: dict[str, str]) -> int:
        async with session.post(f"{founder.url}/peer/v1{path}", data=GARBAGE,
                                headers=headers) as resp:
            return resp.status

    worst_health, peak_kb = 0.0, rss_kb(pid)

    async def sample_rss() -> None:
        nonlocal peak_kb
        while True:
            peak_kb = max(peak_kb, rss_kb(pid))
            await asyncio.sleep(0.01)

    sampler = asyncio.create_task(sample_rss())
    async with aiohttp.ClientSession() as uploads, aiohttp.ClientSession() as health:
        tasks = [asyncio.create_task(upload(uploads, path, headers))
                 for headers in ({}, forged) for path in ("/results", "/roster")]
        while not all(task.done() for task in tasks):
            started = time.perf_counter()
            async with asyncio.timeout(5), health.get(f"{founder.url}/peer/v1/health") as resp:
                assert resp.status == 200
            worst_health = max(worst_health, time.perf_counter() - started)
            await asyncio.sleep(0.02)
        statuses = [task.result() for task in tasks]
    await asyncio.sleep(0.2)  # anything the node still does with the bodies shows by now
    sampler.cancel()
    assert statuses == [403, 403, 403, 403]
    assert worst_health < 1.0, f"/health took {worst_health:.2f} s during the uploads"
    assert peak_kb < RSS_LIMIT_KB, f"the node grew to {peak_kb // 1024} MB"
    log = founder.log_text()
    for path in ("/results", "/roster"):
        assert f"refused a request to /peer/v1{path} from ? " in log
        assert f"refused a request to /peer/v1{path} from {founder.node_id} " in log
    assert "request signature does not verify" in log
