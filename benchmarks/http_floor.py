"""The floor of one report's HTTP request to a node on this machine: aiohttp with nothing else.

    python benchmarks/http_floor.py [--requests 5000] [--concurrency 48] [--json]

A bare aiohttp server (its own process, on uvloop, as ``mpc-backend serve`` runs)
answers every POST by reading the body and writing a JSON answer the size of a share
ack; nothing is checked, opened or stored. The benchmark's own client (aiohttp, one
session, ``concurrency`` requests in flight, as ``bench_round`` sends its envelopes)
posts ``requests`` copies of a real one-task shares envelope of ``bench_round``'s task
(its share sealed under a channel). Printed: the wall time per request over the whole
window, and the server's and the client's CPU time per request (all threads, from
schedstat). Any node that takes one HTTP request per report per committee member, as
Hearth's does over direct HTTP, pays at least this per report.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import uvloop

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from mpc_backend.crypto import NodeKeys, share_aad  # noqa: E402
from mpc_backend.crypto import channel as channels  # noqa: E402
from mpc_backend.node.household import shares_envelope  # noqa: E402
from mpc_backend.protocol import TaskSpec  # noqa: E402
from mpc_backend.protocol.validity import shared_length  # noqa: E402
from tests.backend.nodes import free_port  # noqa: E402

ACK = {"ack": {"household": "0" * 32, "items": [["bench", 1, "0" * 64]], "duplicate": False},
       "mac": "0" * 43}


def cpu_seconds(pid: int) -> float:
    """CPU time of a process's live threads (ns-precise, from schedstat)."""
    total = 0
    try:
        threads = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return 0.0
    for thread in threads:
        try:
            total += int((thread / "schedstat").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            continue  # the thread ended meanwhile
    return total / 1e9


def serve(port: int) -> None:
    from aiohttp import web  # noqa: PLC0415

    async def shares(request: web.Request) -> web.Response:
        await request.read()
        return web.json_response(ACK)

    app = web.Application()
    app.router.add_post("/peer/v1/shares", shares)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None,
                loop=uvloop.new_event_loop())


def envelope_body(task: dict[str, Any]) -> bytes:
    """The request body of one household's one-task shares envelope over a channel."""
    spec = TaskSpec.from_dict({**task, "task_id": "bench", "metric": "bench", "period_s": 60,
                               "min_contributors": 3, "k": 3, "t": 1})
    household, member = NodeKeys.generate(), NodeKeys.generate()
    channel = channels.derive(channels.new_secret(), "floor", household.node_id,
                              member.node_id, channels.new_channel_id(), int(time.time()))
    share = os.urandom(8 * shared_length(spec))
    sealed = channels.seal(channel, share, share_aad("floor", "bench", 1, household.node_id,
                                                     member.node_id))
    envelope = shares_envelope(household, "floor", [("bench", 1, sealed)], signed=False)
    return json.dumps(envelope, separators=(",", ":")).encode()


async def _drive(url: str, body: bytes, requests: int, concurrency: int,
                 server: subprocess.Popen[bytes]) -> dict[str, float]:
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        deadline = time.monotonic() + 30
        while True:  # until the server listens
            try:
                async with session.get(url) as resp:
                    await resp.read()
                break
            except aiohttp.ClientConnectionError:
                if server.poll() is not None:
                    raise RuntimeError(f"the bare HTTP server exited ({server.returncode}) "
                                       "before it listened") from None
                if time.monotonic() > deadline:
                    raise RuntimeError("the bare HTTP server did not start") from None
                await asyncio.sleep(0.1)
        sem = asyncio.Semaphore(concurrency)

        async def post() -> int:
            async with sem, session.post(url, data=body) as resp:
                await resp.read()
                return resp.status

        await asyncio.gather(*(post() for _ in range(min(requests, 500))))  # warm up
        cpu0, c0, w0 = cpu_seconds(server.pid), time.process_time(), time.perf_counter()
        statuses = await asyncio.gather(*(post() for _ in range(requests)))
        wall, client_cpu = time.perf_counter() - w0, time.process_time() - c0
        server_cpu = cpu_seconds(server.pid) - cpu0
    if set(statuses) != {200}:
        raise RuntimeError(f"the bare server answered {sorted(set(statuses))}")
    return {"http_wall_us": wall / requests * 1e6,
            "http_server_cpu_us": server_cpu / requests * 1e6,
            "http_client_cpu_us": client_cpu / requests * 1e6}


def measure_http_floor(task: dict[str, Any], requests: int = 5000,
                       concurrency: int = 48) -> dict[str, Any]:
    """Per request, in µs: wall over the window, the bare server's CPU and the client's."""
    body = envelope_body(task)
    port = free_port()
    server = subprocess.Popen([sys.executable, __file__, "--serve", str(port)])
    try:
        figures = uvloop.run(_drive(f"http://127.0.0.1:{port}/peer/v1/shares", body,
                                    requests, concurrency, server))
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
    return {**{k: round(v, 1) for k, v in figures.items()}, "http_requests": requests,
            "http_concurrency": concurrency, "http_body_bytes": len(body)}


def print_http_floor(f: dict[str, Any]) -> None:
    print(f"HTTP floor, this machine, this run (bare aiohttp on uvloop, {f['http_requests']} "
          f"POSTs of {f['http_body_bytes']} B, {f['http_concurrency']} in flight)")
    print(f"  wall per request        {f['http_wall_us']:.1f} us")
    print(f"  server CPU per request  {f['http_server_cpu_us']:.1f} us")
    print(f"  client CPU per request  {f['http_client_cpu_us']:.1f} us")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=48, help="requests in flight")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--serve", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve)
        return
    from benchmarks.bench_round import TASK  # noqa: PLC0415 (the task the round benchmark uses)

    floor = measure_http_floor(TASK, args.requests, args.concurrency)
    if args.json:
        print(json.dumps(floor, indent=2))
        return
    print_http_floor(floor)


if __name__ == "__main__":
    main()
