"""Stateless ingest workers: a committee node on PostgreSQL takes shares in several processes.

``mpc-backend serve --ingest-workers N``: the main process runs the node as always (rounds,
results, roster, outbox, the relay, the local API) but listens on a loopback port of its
own; N worker processes listen on the node's address with ``SO_REUSEPORT``, so the kernel
spreads incoming connections over them. A worker answers ``POST /peer/v1/shares`` itself,
with the same checks, storage and signed acks as the main process (the node's keys, read
from the data dir; its database, shared), and ``GET /api/v1/health``; it forwards every
other request to the main process (``mpc_backend.api.proxy``: bodies read in full, within
a deadline, before an upstream connection is taken; the caller's address vouched for by a
secret the main process hands each worker on its stdin).

A worker's sender lookups cost no query: it holds the roster and the admission log in
memory and follows both in storage (polled every ``MEMBERS_POLL_S``). A share delivery from
a sender it does not know is refused at once if its signature headers are missing or out
of date, and otherwise forwarded: the main process catches up from the founder
(rate-limited) or refuses it. So a request with a made-up sender costs the database
nothing, however many arrive. A channel (``mpc_backend.node.channels``) the worker has not
seen costs one query, and after a miss that sender's next one waits ``WORKER_MISS_S``: a
member naming made-up channels costs the database at most one query per sender that often.

What keeps a worker's acks true:

* a round the main process starts closing is marked in the database before the member
  reads its senders (``Storage.mark_closing``); from then on ``put_shares`` refuses its
  shares in every process (422 ``outside_round_window``), so no share is acknowledged
  that the member's held statement leaves out;
* the roster is read from storage and reloaded when its stored version changes, and
  admissions are read as they are stored (both polled every ``MEMBERS_POLL_S``), so a worker
  checks senders, windows and committee seats against what the node holds (a household
  admitted in the last second is forwarded, and the main process knows it).

The replay memory is per process: the same envelope replayed to two workers passes both
nonce checks, and both store the same digest (the second a DUPLICATE), which changes
nothing; the household's ack says the same.

The main process supervises the workers: it starts them once storage is open and waits
until each listens, restarts one that exits (backoff ``RESTART_BACKOFF_S`` doubling to
``MAX_BACKOFF_S``, reset after ``STABLE_S`` of running), stops them on SIGTERM before
itself, and reports their counters in ``status`` (``load.ingest_workers``). A worker reads
its stdin until the main process goes, so none outlives it; it writes its counters to
stdout as JSON lines and logs to the node's stderr, each line marked with its number.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import secrets
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import uvloop
from aiohttp import web

from mpc_backend.crypto import b64url_decode, load_keys
from mpc_backend.node.config import DATABASE_URL_ENV, ConfigError, NodeConfig, load_config
from mpc_backend.node.errors import Forbidden
from mpc_backend.node.federation import FOUNDER_KEY_META
from mpc_backend.node.logs import OneLineFormatter, setup_logging
from mpc_backend.node.node import Node
from mpc_backend.node.peers import SENDER_HEADER
from mpc_backend.node.roster import verify_roster
from mpc_backend.storage import open_storage

from .errors import error_middleware
from .listen import SHUTDOWN_TIMEOUT_S, ssl_context
from .local import LOCAL_BODY_LIMIT, health
from .peer import NODE_KEY, http_handler, peer_routes, refuse_unread, signed_headers
from .proxy import Proxy

log = logging.getLogger("mpc_backend.workers")

MEMBERS_POLL_S = 1.0
REPORT_EVERY_S = 1.0
READY_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0
RESTART_BACKOFF_S = 0.5
MAX_BACKOFF_S = 30.0
STABLE_S = 60.0
_READY = "ready"


def check_workers(config: NodeConfig, count: int) -> None:
    """ConfigError unless ``count`` ingest workers can serve this node."""
    if count < 0:
        raise ConfigError("--ingest-workers must be 0 or more")
    if count and config.database_url is None:
        raise ConfigError(
            "--ingest-workers needs PostgreSQL storage: the workers share the node's database, "
            "and this node keeps its state in SQLite in its data dir; set it up with init "
            "--database-url, or serve without --ingest-workers")


# -- the main process's side --------------------------------------------------------------
@dataclass
class _Worker:
    number: int
    proc: asyncio.subprocess.Process | None = None
    restarts: int = 0
    counters: dict[str, Any] = field(default_factory=dict)


class IngestWorkers:
    """Starts, watches, restarts and stops the worker processes of one node."""

    def __init__(self, data_dir: Path, config: NodeConfig, count: int) -> None:
        check_workers(config, count)
        self.data_dir = data_dir
        self.config = config
        self._workers = [_Worker(n) for n in range(1, count + 1)]
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = False
        self._upstream = 0
        # Vouches for the callers' addresses the workers forward (handed over on stdin).
        self.secret = secrets.token_urlsafe(32)

    async def start(self, upstream_port: int) -> None:
        """Start every worker and wait until each listens; ConfigError if one cannot."""
        self._upstream = upstream_port
        loop = asyncio.get_running_loop()
        ready: list[asyncio.Future[None]] = [loop.create_future() for _ in self._workers]
        self._tasks = [asyncio.create_task(self._keep(worker, started))
                       for worker, started in zip(self._workers, ready, strict=True)]
        try:
            await asyncio.wait_for(asyncio.gather(*ready), READY_TIMEOUT_S)
        except TimeoutError:
            raise ConfigError(f"the ingest workers did not all listen within "
                              f"{READY_TIMEOUT_S:g} s; see the log above") from None
        log.info("%d ingest workers take connections at %s:%d; the main process answers what "
                 "they forward on 127.0.0.1:%d", len(self._workers), self.config.listen_host,
                 self.config.listen_port, upstream_port)

    def view(self) -> list[dict[str, Any]]:
        """Per worker: number, pid, restarts and its latest counters (for ``status``)."""
        return [{"worker": w.number, "pid": w.proc.pid if w.proc else None,
                 "restarts": w.restarts, **w.counters} for w in self._workers]

    async def stop(self) -> None:
        self._stopping = True
        running = [w.proc for w in self._workers
                   if w.proc is not None and w.proc.returncode is None]
        for proc in running:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
        for proc in running:
            try:
                await asyncio.wait_for(proc.wait(), STOP_TIMEOUT_S)
            except TimeoutError:
                log.warning("ingest worker pid %d ignored SIGTERM; killing it", proc.pid)
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _spawn(self, worker: _Worker) -> asyncio.subprocess.Process:
        env = dict(os.environ)
        if self.config.database_url is not None:  # the same database, kept off the command line
            env[DATABASE_URL_ENV] = self.config.database_url
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "mpc_backend.api.workers",
            "--data-dir", str(self.data_dir), "--worker", str(worker.number),
            "--upstream", str(self._upstream),
            "--log-level", logging.getLevelName(logging.getLogger().getEffectiveLevel()),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, env=env)
        assert proc.stdin is not None
        proc.stdin.write(self.secret.encode() + b"\n")  # stays open: closes when we go
        await proc.stdin.drain()
        return proc

    async def _keep(self, worker: _Worker, ready: asyncio.Future[None]) -> None:
        """Run ``worker``, restarting it whenever it exits, until ``stop``."""
        backoff = RESTART_BACKOFF_S
        restarting = False
        while True:
            started = time.monotonic()
            proc = worker.proc = await self._spawn(worker)
            if restarting:  # counted with the new pid in place (status shows both at once)
                worker.restarts += 1
            assert proc.stdout is not None
            async for line in proc.stdout:
                try:
                    message = json.loads(line)
                except ValueError:
                    continue
                if message == _READY:
                    if not ready.done():
                        ready.set_result(None)
                    log.info("ingest worker %d listening (pid %d)", worker.number, proc.pid)
                elif isinstance(message, dict):
                    worker.counters = message
            code = await proc.wait()
            if self._stopping:
                return
            if not ready.done():  # never listened: starting the node fails
                ready.set_exception(ConfigError(
                    f"ingest worker {worker.number} exited with code {code} before it "
                    "listened; see the log above"))
                return
            if time.monotonic() - started > STABLE_S:
                backoff = RESTART_BACKOFF_S
            log.warning("ingest worker %d (pid %d) exited with code %d; restarting it in "
                        "%.1f s", worker.number, proc.pid, code, backoff)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, MAX_BACKOFF_S)
            restarting = True


# -- a worker process ---------------------------------------------------------------------
class _MembersFollower:
    """The worker's view of the members, followed in storage: the roster, reloaded when its
    stored version changes, and the admission log, read on from where it was (as the main
    process stores it, so a worker's lookups hit memory as often)."""

    def __init__(self, node: Node) -> None:
        self.ctx = node.ctx
        self.channels = node.channels
        self._version: int | None = None

    async def refresh(self) -> None:
        storage = self.ctx.storage
        version = await storage.roster_version()
        if version is not None and version != self._version:
            wire = await storage.get_roster()
            pinned = await storage.get_meta(FOUNDER_KEY_META)
            if wire is not None and pinned is not None:
                self.ctx.founder_public = b64url_decode(pinned)
                self.ctx.signed_roster = verify_roster(wire, self.ctx.founder_public)
                log.info("roster v%d loaded", version)
                self._version = version
        await self.ctx.directory.follow()
        # A worker runs no housekeeping: drop the channels that have expired from memory.
        self.channels.forget_before(self.ctx.clock())

    async def poll(self) -> None:
        while True:
            await asyncio.sleep(MEMBERS_POLL_S)
            try:
                await self.refresh()
            except Exception:  # a database hiccup must not end the worker
                log.exception("reading the roster or the admission log failed")


def body_limits(node: Node) -> Callable[[str], int]:
    """The most body bytes the main process reads at a path (its peer routes' limits; the
    local API's elsewhere)."""
    limits = {f"/peer/v1{path}": route.limit for path, route in peer_routes(node).items()}
    return lambda path: limits.get(path, LOCAL_BODY_LIMIT)


def make_worker_app(node: Node, proxy: Proxy) -> web.Application:
    ingest = http_handler(peer_routes(node)["/shares"])  # exactly the main process's handler

    async def shares(request: web.Request) -> web.StreamResponse:
        sender = request.headers.get(SENDER_HEADER, "")
        if node.ctx.member(sender) is not None:  # memory only: the roster and the log
            return await ingest(request)
        try:  # the main process's first checks, which need no lookup (they log a refusal)
            signed_headers(node.ctx, "/peer/v1/shares", request.headers, request.remote)
        except Forbidden as err:
            return await refuse_unread(request, err)
        return await proxy.forward(request)  # admitted since the last poll, or refused there

    app = web.Application(middlewares=[error_middleware])
    app[NODE_KEY] = node
    app.router.add_post("/peer/v1/shares", shares)
    app.router.add_get("/api/v1/health", health)
    app.router.add_route("*", "/{path:.*}", proxy.forward)
    return app


def _report(message: Any) -> None:
    sys.stdout.write(json.dumps(message, separators=(",", ":")) + "\n")
    sys.stdout.flush()


async def _report_loop(node: Node) -> None:
    last: dict[str, Any] = {}
    while True:
        ingest = node.ingest
        # The same counters as the main process's status shows for itself.
        counters = {"accepted": ingest.accepted, "rejected": ingest.rejected,
                    "ingest": ingest.counters()}
        if counters != last:
            _report(counters)
            last = counters
        await asyncio.sleep(REPORT_EVERY_S)


async def _until_stdin_closes() -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while await reader.read(4096):
        pass


async def run_worker(data_dir: Path, config: NodeConfig, upstream_port: int,
                     secret: str) -> None:
    # The node's keys, read only; the data dir's lock belongs to the main process.
    keys = load_keys(data_dir)
    node = Node(data_dir, config, keys, open_storage(data_dir, config.database_url, keys.node_id))
    # A worker holds no peer connections: it answers a household's forwards "not_forwarding",
    # and the household sends those shares to their members itself.
    node.ingest.forwarder = None
    await node.ctx.storage.open()
    proxy = Proxy(upstream_port, body_limits(node), secret)
    runner: web.AppRunner | None = None
    loops: list[asyncio.Task[None]] = []
    try:
        members = _MembersFollower(node)
        await members.refresh()
        await proxy.start()
        runner = web.AppRunner(make_worker_app(node, proxy), access_log=None,
                               shutdown_timeout=SHUTDOWN_TIMEOUT_S)
        await runner.setup()
        await web.TCPSite(runner, config.listen_host, config.listen_port,
                          ssl_context=ssl_context(config), reuse_address=True,
                          reuse_port=True).start()
        _report(_READY)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        # Stdin closes when the main process goes; a loop that fails ends the worker too
        # (the main process starts a new one).
        loops = [asyncio.create_task(_until_stdin_closes()),
                 asyncio.create_task(members.poll()), asyncio.create_task(_report_loop(node))]
        for task in loops:
            task.add_done_callback(lambda _t: stop.set())
        await stop.wait()
        failed = [e for t in loops if t.done() and not t.cancelled() and (e := t.exception())]
        if failed:
            raise failed[0]
    finally:
        for task in loops:
            task.cancel()
        if runner is not None:
            await runner.cleanup()
        await proxy.close()
        await node.ctx.storage.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="An ingest worker; started by serve.")
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--worker", type=int, required=True)
    parser.add_argument("--upstream", type=int, required=True, help="the main process's port")
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    setup_logging(args.log_level)
    for handler in logging.getLogger().handlers:
        handler.setFormatter(OneLineFormatter(
            f"%(asctime)s %(levelname)s %(name)s [ingest worker {args.worker}]: %(message)s"))
    secret = sys.stdin.readline().strip()  # the main process's first line
    config = load_config(args.data_dir, os.environ)
    try:
        uvloop.run(run_worker(args.data_dir, config, args.upstream, secret))
    except Exception:
        log.exception("ingest worker failed")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
