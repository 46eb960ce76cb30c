"""Ingest workers benchmark: one committee node on PostgreSQL taking shares with 0, 1, 2 ...
ingest workers (``serve --ingest-workers N``), side by side.

    python benchmarks/bench_workers.py [--households 2000] [--workers 0,1,2]
        [--concurrency 64] [--json]

Per setting: a fresh federation of three ``mpc-backend serve`` processes (the measured
node on its own database of one throwaway PostgreSQL server, the two others on SQLite),
one task, N households joined in-process through invites. Every household seals its
report (encode, prove, share, seal: done before the clock starts) and sends the measured
node its envelope, signed as a household node signs it, all at once over ``--concurrency``
connections (the kernel spreads connections, not requests, over the workers). Printed:
envelopes acknowledged per second (first send to last ack), the node's CPU seconds per
envelope (main process and workers), and the speed-up over no workers. Client, server
and database share this machine's cores: with fewer cores than processes, workers mostly
add context switches; read the figures with ``cores`` beside them.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.bench_round import api, join_household  # noqa: E402
from benchmarks.http_floor import cpu_seconds  # noqa: E402
from mpc_backend.arith import FieldRNG  # noqa: E402
from mpc_backend.crypto import NodeKeys, sign_envelope  # noqa: E402
from mpc_backend.node.household import seal_report, shares_envelope  # noqa: E402
from mpc_backend.node.peers import request_headers  # noqa: E402
from mpc_backend.node.roster import verify_roster  # noqa: E402
from tests.backend.nodes import NodeProcess, free_port  # noqa: E402
from tests.postgres import PostgresServer, running_postgres  # noqa: E402

TASK = {"task_id": "temp", "metric": "temp", "low": -20.0, "high": 40.0, "resolution": 0.01,
        "unit": "°C", "stats": ["count", "mean"], "min_contributors": 3, "k": 3, "t": 1}


async def measure(args: argparse.Namespace, workers: int, pg: PostgresServer,
                  root: Path) -> dict[str, Any]:
    nodes = [NodeProcess(f"n{i}", root / f"n{i}", free_port(), root / f"n{i}.log")
             for i in range(3)]
    measured = nodes[0]
    measured.serve_args = ("--ingest-workers", str(workers)) if workers else ()
    try:
        measured.init("--grace", "2", "--database-url", pg.database("bench_workers"))
        for node in nodes[1:]:
            node.init("--grace", "2")
        for node in nodes:
            node.start()
        timeout = aiohttp.ClientTimeout(total=300)
        async with aiohttp.ClientSession(timeout=timeout, connector=aiohttp.TCPConnector(
                limit=args.concurrency)) as session:
            return await _bench(args, session, nodes, workers)
    finally:
        for node in nodes:
            node.stop()


async def _bench(args: argparse.Namespace, session: aiohttp.ClientSession,
                 nodes: list[NodeProcess], workers: int) -> dict[str, Any]:
    founder = nodes[0]
    await api(session, founder, "POST", "/federation", {"name": "bench"})
    for node in nodes[1:]:
        invite = await api(session, founder, "POST", "/invites", {"expires_s": 600})
        await api(session, node, "POST", "/join", {"token": invite["token"]})
    households = [NodeKeys.generate() for _ in range(args.households)]
    sem = asyncio.Semaphore(32)

    async def join(i: int, keys: NodeKeys) -> None:
        async with sem:
            await join_household(session, founder, keys, i)

    await asyncio.gather(*(join(i, k) for i, k in enumerate(households)))
    # Long enough to seal and send everything inside one round.
    period = max(30, int(20 + args.households * 0.004))
    await api(session, founder, "POST", "/tasks", {**TASK, "period_s": period})
    status = await api(session, founder, "GET", "/status")
    federation_id = status["federation"]["id"]
    fetch = json.dumps(sign_envelope(households[0], "roster-fetch", federation_id, {})).encode()
    async with session.post(f"{founder.url}/peer/v1/roster/fetch", data=fetch, headers=(
            request_headers(households[0], "/peer/v1/roster/fetch", fetch, time.time()))) as r:
        roster = verify_roster((await r.json())["roster"]).roster
    rtask = roster.task("temp")
    assert rtask is not None
    await asyncio.sleep(max(0.0, rtask.first_round() * period - time.time() + 0.2))
    round_id = int(time.time() // period)
    committee = roster.committee("temp", round_id)
    seat = [m.node_id for m in committee].index(founder.node_id)
    rng = FieldRNG()
    bodies = []
    for h, keys in enumerate(households):
        ct = seal_report(keys, federation_id, rtask.spec, round_id, committee,
                         18.0 + h % 7, rng)[seat]
        envelope = shares_envelope(keys, federation_id, [("temp", round_id, ct)])
        bodies.append((keys, json.dumps(envelope, separators=(",", ":")).encode()))

    pids = [founder.proc.pid] if founder.proc else []
    if workers:
        pids += [w["pid"] for w in status["load"]["ingest_workers"]]
    cpu0 = sum(cpu_seconds(pid) for pid in pids)
    path = "/peer/v1/shares"

    async def send(keys: NodeKeys, body: bytes) -> bool:
        async with session.post(f"{founder.url}{path}", data=body, headers={
                "Content-Type": "application/json",
                **request_headers(keys, path, body, time.time())}) as resp:
            return resp.status == 200 and "ack" in await resp.json()

    t0 = time.perf_counter()
    acked = await asyncio.gather(*(send(keys, body) for keys, body in bodies))
    wall = time.perf_counter() - t0
    cpu = sum(cpu_seconds(pid) for pid in pids) - cpu0
    if time.time() > (round_id + 1) * period + 2:
        raise RuntimeError("the sends outlasted the round; fewer --households")
    if not all(acked):
        raise RuntimeError(f"{acked.count(False)} envelopes were not acknowledged")
    await asyncio.sleep(1.5)  # workers report their counters once a second
    served = [w["ingest"]["envelopes"] for w in
              (await api(session, founder, "GET", "/status"))["load"].get("ingest_workers", [])]
    return {"workers": workers, "envelopes": len(bodies), "wall_s": round(wall, 3),
            "per_s": round(len(bodies) / wall, 1), "cpu_ms_per_envelope":
            round(1000 * cpu / len(bodies), 3), "per_worker": served}


async def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    results = []
    with running_postgres() as pg:
        for workers in args.workers:
            root = Path(tempfile.mkdtemp(prefix=f"bench-workers-{workers}-"))
            try:
                results.append(await measure(args, workers, pg, root))
            finally:
                shutil.rmtree(root, ignore_errors=True)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--households", type=int, default=2000)
    parser.add_argument("--workers", type=lambda s: [int(x) for x in s.split(",")],
                        default=[0, 1, 2], help="comma-separated worker counts to compare")
    parser.add_argument("--concurrency", type=int, default=64, help="client connections")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    results = asyncio.run(run(args))
    if args.json:
        print(json.dumps({"cores": os.cpu_count(), "results": results}))
        return
    base = results[0]["per_s"]
    print(f"one committee node on PostgreSQL, {args.households} envelopes over "
          f"{args.concurrency} connections, {os.cpu_count()} cores on this machine")
    print(f"{'workers':>8} {'envelopes/s':>12} {'CPU ms/env':>11} {'vs first':>9}  per worker")
    for r in results:
        print(f"{r['workers']:>8} {r['per_s']:>12.1f} {r['cpu_ms_per_envelope']:>11.3f} "
              f"{r['per_s'] / base:>8.2f}x  {r['per_worker'] or '-'}")


if __name__ == "__main__":
    main()
