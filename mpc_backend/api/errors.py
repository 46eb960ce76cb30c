"""JSON errors for both APIs: ``{"error": {"code", "message", "field"?}}``.

Node errors keep their status; aiohttp's own HTTP errors (unknown route, wrong
method, body over the size limit) are rewritten into the same shape; anything
else is logged with its traceback on the node and answered with a bare 500, so
clients never see internals.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from mpc_backend.node.errors import BadRequest, NodeError, PayloadTooLarge

log = logging.getLogger("mpc_backend.api")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


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


async def read_json(request: web.Request, limit: int) -> Any:
    """The request's JSON body; 413 over ``limit`` bytes, 400 if it is not JSON."""
    if request.content_length is not None and request.content_length > limit:
        raise PayloadTooLarge(f"request body exceeds the limit of {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    while chunk := await request.content.read(64 * 1024):  # read() may return less
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"request body exceeds the limit of {limit} bytes")
        chunks.append(chunk)
    raw = b"".join(chunks)
    if not raw:
        raise BadRequest("request body is empty; send a JSON object", field="body")
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as err:
        raise BadRequest(f"request body is not valid JSON: {err}", field="body") from None
    except RecursionError:
        raise BadRequest("request body is nested too deeply", field="body") from None


async def read_object(request: web.Request, limit: int) -> dict[str, Any]:
    data = await read_json(request, limit)
    if not isinstance(data, dict):
        raise BadRequest("request body must be a JSON object", field="body")
    return data
