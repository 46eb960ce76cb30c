"""Forward a request to the node's main process (used by ingest workers).

Method, path, query, headers and body go through as they came; the answer comes back
streamed as it arrives (the local API's server-sent events too). Only hop-by-hop headers,
which describe one connection, are dropped.

Upstream connections are a shared, bounded resource, so nobody holds one while sending
slowly: the worker reads the whole body first, up to the path's size limit and within
``BODY_DEADLINE_S`` (413/408 otherwise), and only then takes an upstream connection
(waiting at most ``ACQUIRE_TIMEOUT_S`` for a free one of ``UPSTREAM_CONNECTIONS``: 503).
The main process must start answering within ``READ_TIMEOUT_S`` and then not pause longer
(an event stream sends a keepalive every 15 s).

The caller's address travels in ``FORWARDED_HEADER`` as ``<secret> <address>``: the proxy
drops any copy a caller sent and sets its own; the main process believes it only from a
loopback connection carrying the secret it gave its workers (``forwarded_middleware``),
and otherwise ignores it.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Callable

import aiohttp
from aiohttp import web
from aiohttp.typedefs import Middleware
from multidict import CIMultiDict, CIMultiDictProxy

from mpc_backend.node.config import is_loopback
from mpc_backend.node.errors import NodeError

from .errors import Handler, error_response, read_body

log = logging.getLogger("mpc_backend.proxy")

FORWARDED_HEADER = "Hearth-Forwarded-For"
# RFC 9110 7.6.1, and Host: the upstream connection has its own.
HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-authenticate", "proxy-authorization",
                        "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade",
                        "host", FORWARDED_HEADER.lower()})
CONNECT_TIMEOUT_S = 5.0
# Well above what one main process answers at once (its pool has 8 database connections):
# a burst queues here, briefly, rather than failing.
UPSTREAM_CONNECTIONS = 256
ACQUIRE_TIMEOUT_S = 10.0
READ_TIMEOUT_S = 60.0
# Peers give up on a request after their peer timeout (5 s by default); a body still
# arriving after this is no one's honest request.
BODY_DEADLINE_S = 15.0


def _end_to_end(headers: CIMultiDictProxy[str]) -> CIMultiDict[str]:
    return CIMultiDict((k, v) for k, v in headers.items() if k.lower() not in HOP_BY_HOP)


class Proxy:
    """Forwards to ``http://127.0.0.1:port`` over one pooled client session.

    ``body_limit(path)``: the most body bytes the main process takes at ``path``.
    ``secret``: vouches for the caller's address to the main process.
    """

    def __init__(self, port: int, body_limit: Callable[[str], int], secret: str) -> None:
        self.base = f"http://127.0.0.1:{port}"
        self._body_limit = body_limit
        self._secret = secret
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        # No overall timeout: an event stream lasts as long as its reader stays.
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=UPSTREAM_CONNECTIONS),
            timeout=aiohttp.ClientTimeout(total=None, connect=ACQUIRE_TIMEOUT_S,
                                          sock_connect=CONNECT_TIMEOUT_S,
                                          sock_read=READ_TIMEOUT_S),
            auto_decompress=False, skip_auto_headers=("User-Agent", "Accept-Encoding",
                                                      "Accept", "Content-Type"))

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def forward(self, request: web.Request) -> web.StreamResponse:
        assert self._session is not None, "Proxy.start() first"
        body = None
        if request.body_exists:
            try:
                body = await read_body(request, self._body_limit(request.path),
                                       deadline=BODY_DEADLINE_S, allow_empty=True)
            except NodeError as err:
                response = error_response(err.status, err.code, err.message)
                response.force_close()  # what is left of the body is not worth reading
                return response
        headers = _end_to_end(request.headers)
        headers[FORWARDED_HEADER] = f"{self._secret} {request.remote or '?'}"
        try:
            upstream = await self._session.request(
                request.method, self.base + request.rel_url.raw_path_qs, headers=headers,
                data=body, allow_redirects=False)
        except (aiohttp.ClientConnectionError, TimeoutError) as err:
            log.warning("could not forward %s %s to the main process: %s", request.method,
                        request.path, err or type(err).__name__)
            return error_response(503 if isinstance(err, TimeoutError) else 502, "unavailable",
                                  "the node's main process is not answering (busy or "
                                  "restarting); try again shortly")
        try:
            response = web.StreamResponse(status=upstream.status, reason=upstream.reason,
                                          headers=_end_to_end(upstream.headers))
            await response.prepare(request)
            async for chunk in upstream.content.iter_any():
                await response.write(chunk)
            await response.write_eof()
            return response
        finally:
            upstream.release()


def forwarded_middleware(secret: str) -> Middleware:
    """The main process's side: a request from its own worker (a loopback connection with
    ``secret``) is handled as coming from the caller's address; the header is never
    believed otherwise."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        claim = request.headers.get(FORWARDED_HEADER)
        if claim is None:
            return await handler(request)
        token, _, remote = claim.partition(" ")
        headers = request.headers.copy()
        del headers[FORWARDED_HEADER]
        if request.remote and is_loopback(request.remote) and remote and hmac.compare_digest(
                token.encode(), secret.encode()):
            return await handler(request.clone(remote=remote, headers=headers))
        log.warning("ignored a %s header from %s that no ingest worker of this node set",
                    FORWARDED_HEADER, request.remote or "?")
        return await handler(request.clone(headers=headers))

    return middleware
