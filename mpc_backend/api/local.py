"""The local API under ``/api/v1`` for Home Assistant and the CLI.

Bearer-token auth (``mpc-backend token``) on everything except ``health`` and
``openapi.json``; the comparison is constant-time. Request bodies are capped at
64 KiB. The document served at ``/api/v1/openapi.json`` lists every route here.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import math
from typing import Any

from aiohttp import web

from mpc_backend import __version__
from mpc_backend.node.errors import BadRequest, NotFound, Unauthorized
from mpc_backend.node.federation import task_view
from mpc_backend.node.node import Node
from mpc_backend.node.results import public_view

from .errors import Handler, error_middleware, read_object
from .openapi import openapi_document

LOCAL_BODY_LIMIT = 64 * 1024
PUBLIC_PATHS = frozenset({"/api/v1/health", "/api/v1/openapi.json"})
SSE_KEEPALIVE_S = 15.0
NODE_KEY = web.AppKey("node", Node)
TOKEN_KEY = web.AppKey("token", str)
STREAMS_KEY = web.AppKey("streams", set)


def _auth_middleware(token: str) -> Any:
    expected = f"Bearer {token}".encode()

    @web.middleware
    async def auth(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path not in PUBLIC_PATHS:
            given = request.headers.get("Authorization", "").encode()
            if not hmac.compare_digest(given, expected):
                raise Unauthorized(
                    "missing or wrong bearer token; get it with: mpc-backend token --data-dir DIR",
                    code="unauthorized",
                )
        return await handler(request)

    return auth


def make_local_app(node: Node, token: str) -> web.Application:
    app = web.Application(middlewares=[error_middleware, _auth_middleware(token)])
    app[NODE_KEY] = node
    app[STREAMS_KEY] = set()
    app.router.add_get("/health", health)
    app.router.add_get("/openapi.json", openapi)
    app.router.add_get("/status", status)
    app.router.add_get("/tasks", list_tasks)
    app.router.add_post("/tasks", propose_task)
    app.router.add_post("/readings", post_reading)
    app.router.add_get("/results", list_results)
    app.router.add_get("/results/stream", stream_results)
    app.router.add_post("/federation", create_federation)
    app.router.add_post("/invites", create_invite)
    app.router.add_post("/join", join)
    app.router.add_post("/members/{member}/capacity", set_capacity)
    app.on_shutdown.append(_close_streams)
    return app


async def health(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok", "version": __version__})


async def openapi(request: web.Request) -> web.Response:
    return web.json_response(openapi_document())


async def status(request: web.Request) -> web.Response:
    households = request.query.get("households", "0")
    if households not in ("0", "1"):
        raise BadRequest("households must be 0 or 1", field="households")
    return web.json_response(await request.app[NODE_KEY].status(households == "1"))


async def list_tasks(request: web.Request) -> web.Response:
    roster = request.app[NODE_KEY].ctx.roster
    return web.json_response({"roster_version": roster.version,
                              "tasks": [task_view(t) for t in roster.tasks]})


async def propose_task(request: web.Request) -> web.Response:
    body = await read_object(request, LOCAL_BODY_LIMIT)
    answer = await request.app[NODE_KEY].federation.propose_task(body)
    return web.json_response(answer, status=201)


async def post_reading(request: web.Request) -> web.Response:
    body = await read_object(request, LOCAL_BODY_LIMIT)
    for name in ("task", "value"):
        if name not in body:
            raise BadRequest(f"missing field {name!r}", field=name)
    answer = await request.app[NODE_KEY].household.contribute(body["task"], body["value"])
    return web.json_response(answer)


def _int_param(request: web.Request, name: str, default: int) -> int:
    raw = request.query.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BadRequest(f"{name} must be an integer", field=name) from None
    if value < 0:
        raise BadRequest(f"{name} must be >= 0", field=name)
    return value


def _task_param(request: web.Request) -> str | None:
    task = request.query.get("task")
    if task is not None and request.app[NODE_KEY].ctx.roster.task(task) is None:
        raise NotFound(f"unknown task {task!r}", field="task", code="unknown_task")
    return task


async def list_results(request: web.Request) -> web.Response:
    task = _task_param(request)
    since = _int_param(request, "since", 0)
    limit = _int_param(request, "limit", 20)
    results = await request.app[NODE_KEY].results.latest(task, since, limit)
    return web.json_response({"results": results})


async def stream_results(request: web.Request) -> web.StreamResponse:
    """Server-sent events: backlog after ``since``, then each new result as it lands."""
    node = request.app[NODE_KEY]
    task = _task_param(request)
    since = _int_param(request, "since", 0)
    queue = node.results.subscribe()
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream",
                                           "Cache-Control": "no-cache"})
    await response.prepare(request)
    streams: set[asyncio.Queue[Any]] = request.app[STREAMS_KEY]
    streams.add(queue)
    try:
        backlog = await node.ctx.storage.list_results(task, since, 1000) if since else []
        for record in reversed(backlog):
            await _send_event(response, record)
            since = max(since, record.seq)
        while True:
            try:
                record = await asyncio.wait_for(queue.get(), SSE_KEEPALIVE_S)
            except TimeoutError:
                await response.write(b": keepalive\n\n")
                continue
            if record is None:
                break
            if record.seq > since and (task is None or record.task == task):
                await _send_event(response, record)
    except (ConnectionResetError, asyncio.CancelledError):
        pass
    finally:
        streams.discard(queue)
        node.results.unsubscribe(queue)
    return response


async def _send_event(response: web.StreamResponse, record: Any) -> None:
    data = json.dumps(public_view(record), separators=(",", ":"))
    await response.write(f"id: {record.seq}\nevent: result\ndata: {data}\n\n".encode())


async def _close_streams(app: web.Application) -> None:
    for queue in list(app[STREAMS_KEY]):
        queue.put_nowait(None)


async def create_federation(request: web.Request) -> web.Response:
    body = await read_object(request, LOCAL_BODY_LIMIT)
    roster = await request.app[NODE_KEY].federation.create(
        body.get("name"), body.get("allow_classical_hpke", False), body.get("relay"))
    return web.json_response(
        {"federation": roster.federation_id, "name": roster.name, "roster_version": roster.version,
         "hpke_policy": roster.hpke_policy,
         "relay": None if roster.relay is None else roster.relay.url},
        status=201,
    )


async def create_invite(request: web.Request) -> web.Response:
    body = await read_object(request, LOCAL_BODY_LIMIT)
    expires = body.get("expires_s", 24 * 3600)
    if isinstance(expires, float) and math.isfinite(expires) and expires.is_integer():
        expires = int(expires)
    answer = await request.app[NODE_KEY].federation.invite(expires)
    return web.json_response(answer, status=201)


async def join(request: web.Request) -> web.Response:
    body = await read_object(request, LOCAL_BODY_LIMIT)
    if "token" not in body:
        raise BadRequest("missing field 'token'", field="token")
    node = request.app[NODE_KEY]
    roster = await node.federation.join(body["token"])
    return web.json_response({
        "federation": roster.federation_id,
        "name": roster.name,
        "roster_version": roster.version,
        "members": len(roster.members),
        "founder": roster.founder_member.name,
        # Admitted by the founder's signed admission (a household that only contributes),
        # not listed in the roster.
        "household": roster.member(node.ctx.node_id) is None,
    })


async def set_capacity(request: web.Request) -> web.Response:
    body = await read_object(request, LOCAL_BODY_LIMIT)
    if "capacity" not in body:
        raise BadRequest("missing field 'capacity'", field="capacity")
    answer = await request.app[NODE_KEY].federation.set_capacity(
        request.match_info["member"], body["capacity"])
    return web.json_response(answer)
