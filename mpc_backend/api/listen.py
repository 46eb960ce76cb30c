"""How the node's HTTP servers listen: the main process's (``server``) and its ingest
workers' (``workers``) alike."""

from __future__ import annotations

import ssl

from mpc_backend.node.config import NodeConfig

SHUTDOWN_TIMEOUT_S = 3.0  # in-flight requests may finish this long after the listener closes


def ssl_context(config: NodeConfig) -> ssl.SSLContext | None:
    """The server-side TLS context of ``config`` (None: plain HTTP)."""
    if not config.tls:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(str(config.tls_cert), str(config.tls_key))
    return context
