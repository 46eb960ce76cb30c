"""Run a node: one aiohttp server carrying the local API and the peer API.

The data dir is locked (``flock``) for the life of the process, so two
``serve`` processes can never share one database or identity. SIGTERM and
SIGINT stop the node cleanly: the listener closes, in-flight requests finish
(up to a few seconds), background loops stop, storage is closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import signal
import socket
from collections.abc import Callable, Iterator
from pathlib import Path

from aiohttp import web

from mpc_backend.crypto import load_keys
from mpc_backend.node.config import DataDirBusyError, NodeConfig, is_loopback, read_token
from mpc_backend.node.node import Node
from mpc_backend.storage import open_storage

from .errors import error_middleware
from .listen import SHUTDOWN_TIMEOUT_S, ssl_context
from .local import make_local_app
from .peer import ROSTER_BODY_LIMIT, PeerDispatcher, make_peer_app
from .proxy import forwarded_middleware
from .workers import IngestWorkers

log = logging.getLogger("mpc_backend.server")
LOCK_FILE_NAME = "node.lock"


def make_app(node: Node, token: str, workers_secret: str | None = None) -> web.Application:
    """``workers_secret``: requests carrying it come from this node's ingest workers, which
    pass on their callers' addresses (``mpc_backend.api.proxy``)."""
    middlewares = [error_middleware]
    if workers_secret is not None:
        middlewares.insert(0, forwarded_middleware(workers_secret))
    app = web.Application(middlewares=middlewares, client_max_size=ROSTER_BODY_LIMIT)
    app.add_subapp("/api/v1", make_local_app(node, token))
    app.add_subapp("/peer/v1", make_peer_app(node))
    node.ctx.relay_handler = PeerDispatcher(node).dispatch  # the same routes, by relay
    return app


@contextlib.contextmanager
def lock_data_dir(data_dir: Path) -> Iterator[None]:
    fd = os.open(Path(data_dir) / LOCK_FILE_NAME, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise DataDirBusyError(
                f"another mpc-backend serve is already using {data_dir}"
            ) from None
        yield
    finally:
        os.close(fd)


async def serve(
    data_dir: Path, config: NodeConfig, *, on_ready: Callable[[], None] | None = None,
    ingest_workers: int = 0,
) -> None:
    keys = load_keys(data_dir)
    token = read_token(data_dir)
    if not is_loopback(config.listen_host) and not config.tls:
        log.warning("listening on %s without TLS (--insecure-listen): everything this node "
                    "sends and receives travels in clear, including the API token, invite "
                    "secrets of joining members, partial sums and round results; use it only "
                    "behind a TLS proxy or on a network you trust", config.listen_host)
    workers = IngestWorkers(data_dir, config, ingest_workers) if ingest_workers else None
    with lock_data_dir(data_dir):
        node = Node(data_dir, config, keys, open_storage(data_dir, config.database_url,
                                                      keys.node_id))
        # Before start: relayed requests may arrive at once.
        app = make_app(node, token, workers.secret if workers else None)
        await node.start()
        runner = web.AppRunner(app, access_log=None,
                               shutdown_timeout=SHUTDOWN_TIMEOUT_S)
        try:
            await runner.setup()
            if workers is None:
                site: web.BaseSite = web.TCPSite(
                    runner, config.listen_host, config.listen_port,
                    ssl_context=ssl_context(config), reuse_address=True)
            else:  # the workers take the node's address; this process, a loopback port
                internal = socket.create_server(("127.0.0.1", 0))
                site = web.SockSite(runner, internal)
            await site.start()
            if workers is not None:
                await workers.start(internal.getsockname()[1])
                node.worker_view = workers.view
            log.info("listening on %s (peer URL %s)", config.listen, config.peer_url)
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, stop.set)
            if on_ready is not None:
                on_ready()
            await stop.wait()
            log.info("stopping")
        finally:
            if workers is not None:
                await workers.stop()
            await runner.cleanup()
            await node.stop()
