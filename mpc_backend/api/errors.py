"""JSON errors for both APIs: ``{"error": {"code", "message", "field"?}}``.

Node errors keep their status; aiohttp's own HTTP errors (unknown route, wrong
method, body over the size limit) are rewritten into the same shape; anything
else is logged with its traceback on the node and answered with a bare 500, so
clients never see internals.

Request bodies are read up to a hard limit and parsed off the event loop when
large, so one big upload cannot stall every other request. A body nobody has
vouched for yet is read against a deadline (``read_body(deadline=)``), so a caller
that declares a body and never sends it cannot hold the request for ever.
"""

from __future__ import annotations

import asyncio
import json
import json.scanner
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from mpc_backend.node.errors import BadRequest, NodeError, PayloadTooLarge

log = logging.getLogger("mpc_backend.api")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
THREAD_PARSE_ABOVE = 64 * 1024
# For a body read before its sender is known (a join): an honest one is a few KB, sent at once.
UNAUTHENTICATED_BODY_S = 10.0


class BodyTimeout(NodeError):
    status, code = 408, "request_timeout"


def error_response(status: int, code: str, message: str, field: str | None = None) -> web.Response:
    error: dict[str, Any] = {"code": code, "message": message}
    if field is not None:
        error["field"] = field
    return web.json_response({"error": error}, status=status)


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except NodeError as err:
        return error_response(err.status, err.code, err.message, err.field)
    except web.HTTPRequestEntityTooLarge as err:
        return error_response(413, "payload_too_large",
                              f"request body exceeds the limit of {err.max_size} bytes")
    except web.HTTPException as err:
        if err.status < 400:
            raise
        code = {404: "not_found", 405: "method_not_allowed"}.get(err.status, "http_error")
        return error_response(err.status, code, err.reason)
    except Exception:
        log.exception("unhandled error in %s %s", request.method, request.path)
        return error_response(500, "internal", "internal error; see the node's log")


async def read_body(
    request: web.Request, limit: int, on_chunk: Callable[[bytes], None] | None = None,
    *, deadline: float | None = None, allow_empty: bool = False,
) -> bytes:
    """The raw request body, passing each chunk to ``on_chunk``; 413 over ``limit`` bytes,
    408 if it has not all arrived within ``deadline`` seconds.

    Nothing beyond ``limit`` is read: a declared length over it is refused at once.
    """
    if request.content_length is not None and request.content_length > limit:
        raise PayloadTooLarge(f"request body exceeds the limit of {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    try:
        async with asyncio.timeout(deadline):
            while chunk := await request.content.read(64 * 1024):  # read() may return less
                size += len(chunk)
                if size > limit:
                    raise PayloadTooLarge(f"request body exceeds the limit of {limit} bytes")
                if on_chunk is not None:
                    on_chunk(chunk)
                chunks.append(chunk)
    except TimeoutError:
        raise BodyTimeout(f"the request body did not arrive within {deadline:g} s") from None
    if not size and not allow_empty:
        raise BadRequest("request body is empty; send a JSON object", field="body")
    return b"".join(chunks)


async def decode_json(raw: bytes) -> Any:
    """Parse a body; 400 if it is not JSON. Large bodies are parsed in a worker thread."""
    if len(raw) <= THREAD_PARSE_ABOVE:
        return _decode(raw, json.loads)
    return await asyncio.to_thread(_decode, raw, _loads_yielding)


def _decode(raw: bytes, loads: Callable[[bytes], Any]) -> Any:
    try:
        return loads(raw)
    except (ValueError, UnicodeDecodeError) as err:
        raise BadRequest(f"request body is not valid JSON: {err}", field="body") from None
    except RecursionError:
        raise BadRequest("request body is nested too deeply", field="body") from None


def _loads_yielding(raw: bytes) -> Any:
    """``json.loads`` with the pure-Python scanner.

    The C scanner holds the GIL for a whole parse, so even in a thread a large
    body would stall the event loop; the Python one lets the loop run between
    its bytecodes (strings, the bulk of real messages, are still scanned in C).
    """
    decoder = json.JSONDecoder()
    decoder.scan_once = json.scanner.py_make_scanner(decoder)
    return decoder.decode(raw.decode(json.detect_encoding(raw), "surrogatepass"))


async def read_json(request: web.Request, limit: int) -> Any:
    """The request's JSON body; 413 over ``limit`` bytes, 400 if it is not JSON."""
    return await decode_json(await read_body(request, limit))


async def read_object(request: web.Request, limit: int) -> dict[str, Any]:
    data = await read_json(request, limit)
    if not isinstance(data, dict):
        raise BadRequest("request body must be a JSON object", field="body")
    return data
