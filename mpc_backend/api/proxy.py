"""Forward a request unchanged to the node's main process (used by ingest workers).

Method, path, query, headers and body go through as they came, the body streamed; the
answer comes back the same way, streamed as it arrives (the local API's server-sent
events too). Only hop-by-hop headers, which describe one connection, are dropped. The
main process sees the worker's loopback address as the request's origin.
"""

from __future__ import annotations

import logging

import aiohttp
from aiohttp import web
from multidict import CIMultiDict, CIMultiDictProxy

from .errors import error_response

log = logging.getLogger("mpc_backend.proxy")

# RFC 9110 7.6.1, and Host: the upstream connection has its own.
HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-authenticate", "proxy-authorization",
                        "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade",
                        "host"})
CONNECT_TIMEOUT_S = 5.0


def _end_to_end(headers: CIMultiDictProxy[str]) -> CIMultiDict[str]:
    return CIMultiDict((k, v) for k, v in headers.items() if k.lower() not in HOP_BY_HOP)


class Proxy:
    """Forwards to ``http://127.0.0.1:port`` over one pooled client session."""

    def __init__(self, port: int) -> None:
        self.base = f"http://127.0.0.1:{port}"
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        # No overall timeout: an event stream lasts as long as its reader stays.
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=CONNECT_TIMEOUT_S),
            auto_decompress=False, skip_auto_headers=("User-Agent", "Accept-Encoding",
                                                      "Accept", "Content-Type"))

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def forward(self, request: web.Request) -> web.StreamResponse:
        assert self._session is not None, "Proxy.start() first"
        try:
            upstream = await self._session.request(
                request.method, self.base + request.rel_url.raw_path_qs,
                headers=_end_to_end(request.headers),
                data=request.content if request.body_exists else None, allow_redirects=False)
        except (aiohttp.ClientConnectionError, TimeoutError) as err:
            log.warning("could not forward %s %s to the main process: %s", request.method,
                        request.path, err or type(err).__name__)
            return error_response(502, "unavailable", "the node's main process is not "
                                  "answering (restarting?); try again shortly")
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
