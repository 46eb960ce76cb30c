"""The peer API under ``/peer/v1``: what other members' nodes call.

Every request body is a signed envelope (see ``mpc_backend.crypto.envelope``)
checked against the roster before anything else happens; answers that carry
protocol data are signed envelopes too. Body limits are per route: share
batches are small, a roster of a large federation is not.
"""

from __future__ import annotations

from aiohttp import web

from mpc_backend import __version__
from mpc_backend.node.node import Node

from .errors import error_middleware, read_json

SHARES_BODY_LIMIT = 1024 * 1024
ROUND_BODY_LIMIT = 4 * 1024 * 1024
ROSTER_BODY_LIMIT = 16 * 1024 * 1024
SMALL_BODY_LIMIT = 64 * 1024
NODE_KEY = web.AppKey("node", Node)


def make_peer_app(node: Node) -> web.Application:
    app = web.Application(middlewares=[error_middleware])
    app[NODE_KEY] = node
    app.router.add_get("/health", health)
    app.router.add_post("/shares", _route(lambda n: n.ingest.handle_shares, SHARES_BODY_LIMIT))
    app.router.add_post("/join", _route(lambda n: n.federation.handle_join, SMALL_BODY_LIMIT))
    app.router.add_post("/roster", _route(lambda n: n.federation.handle_roster_push,
                                          ROSTER_BODY_LIMIT))
    app.router.add_post("/roster/fetch", _route(lambda n: n.federation.handle_roster_fetch,
                                                SMALL_BODY_LIMIT))
    app.router.add_post("/tasks", _route(lambda n: n.federation.handle_task_proposal,
                                         SMALL_BODY_LIMIT))
    app.router.add_post("/results", _route(lambda n: n.results.handle_push, ROUND_BODY_LIMIT))
    for step in ("held", "noise", "partial"):
        app.router.add_post(f"/round/{step}",
                            _route(lambda n, s=step: n.rounds.handlers()[s], ROUND_BODY_LIMIT))
    return app


def _route(pick, limit: int):
    async def handler(request: web.Request) -> web.Response:
        node = request.app[NODE_KEY]
        envelope = await read_json(request, limit)
        answer = await pick(node)(envelope, request.remote)
        return web.json_response(answer)

    return handler


async def health(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok", "version": __version__})
