"""The peer API under ``/peer/v1``: what other members' nodes call.

Requests are authenticated before their body is read. Every route but
``/join`` requires the ``Hearth-*`` headers (``mpc_backend.node.peers``), checked
in this order: the sender is a roster member, the time is within the message
age window, the signature over path, time and body digest verifies under the
member's roster key (each a 403, logged with sender and address, never the
body), and that signature was not seen before (409). Only then is the body
read, up to the route's limit (413 beyond) and hashed on the way; one that does
not match the signed digest is refused (403). Then it is parsed (large bodies
in a worker thread) and the service checks the signed envelope inside. A
joining node is no member yet: ``/join`` takes 64 KiB at most and is checked
by its envelope alone.

Answers that carry protocol data are signed envelopes too. Body limits are per
route: share batches are small, a roster of a large federation is not.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from mpc_backend import __version__
from mpc_backend.crypto import BadSignatureError, b64url_decode
from mpc_backend.crypto.envelope import verify_request
from mpc_backend.node.context import MAX_MESSAGE_AGE_S, NodeContext
from mpc_backend.node.errors import Conflict, Forbidden, NodeError
from mpc_backend.node.node import Node
from mpc_backend.node.peers import DIGEST_HEADER, SENDER_HEADER, SIGNATURE_HEADER, TIME_HEADER

from .errors import decode_json, error_middleware, error_response, read_body

SHARES_BODY_LIMIT = 1024 * 1024
ROUND_BODY_LIMIT = 4 * 1024 * 1024
ROSTER_BODY_LIMIT = 16 * 1024 * 1024
SMALL_BODY_LIMIT = 64 * 1024
NODE_KEY = web.AppKey("node", Node)
log = logging.getLogger("mpc_backend.api")

Service = Callable[[Any, str | None], Awaitable[dict[str, Any]]]


def make_peer_app(node: Node) -> web.Application:
    app = web.Application(middlewares=[error_middleware])
    app[NODE_KEY] = node
    app.router.add_get("/health", health)
    app.router.add_post("/shares", _route(lambda n: n.ingest.handle_shares, SHARES_BODY_LIMIT))
    app.router.add_post("/join", _route(lambda n: n.federation.handle_join, SMALL_BODY_LIMIT,
                                        members_only=False))
    app.router.add_post("/roster", _route(lambda n: n.federation.handle_roster_push,
                                          ROSTER_BODY_LIMIT))
    app.router.add_post("/roster/fetch", _route(lambda n: n.federation.handle_roster_fetch,
                                                SMALL_BODY_LIMIT))
    app.router.add_post("/tasks", _route(lambda n: n.federation.handle_task_proposal,
                                         SMALL_BODY_LIMIT))
    app.router.add_post("/results", _route(lambda n: n.results.handle_push, ROUND_BODY_LIMIT))
    for step in node.rounds.handlers():  # every round step the service answers
        app.router.add_post(f"/round/{step}",
                            _route(lambda n, s=step: n.rounds.handlers()[s], ROUND_BODY_LIMIT))
    return app


def _route(
    pick: Callable[[Node], Service], limit: int, *, members_only: bool = True
) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """A POST handler: authenticate, read at most ``limit`` bytes, parse, hand to the service.

    ``pick`` runs per request, so a service's handler can be replaced at run time.
    """

    async def handler(request: web.Request) -> web.StreamResponse:
        node = request.app[NODE_KEY]
        try:
            if members_only:
                raw = await _read_signed(request, node.ctx, limit)
            else:
                raw = await read_body(request, limit)
        except NodeError as err:
            return await _refuse_unread(request, err)
        envelope = await decode_json(raw)
        answer = await pick(node)(envelope, request.remote)
        return web.json_response(answer)

    return handler


async def _refuse_unread(request: web.Request, err: NodeError) -> web.StreamResponse:
    """Answer a refusal, then drop the connection: aiohttp would otherwise go on reading
    (and discarding) the unread body for up to ten seconds after the answer."""
    response = error_response(err.status, err.code, err.message, err.field)
    response.force_close()
    await response.prepare(request)
    await response.write_eof()
    request.protocol.force_close()  # also skips the lingering read
    return response


async def _read_signed(request: web.Request, ctx: NodeContext, limit: int) -> bytes:
    """The body of a request signed by a roster member; nothing is read before that is known."""
    path = request.match_info.route.resource.canonical  # the route, however it was spelled
    headers = request.headers
    sender = headers.get(SENDER_HEADER)

    def refuse(reason: str) -> Forbidden:
        log.warning("refused a request to %s from %s (%s): %s", path, sender or "?",
                    request.remote or "?", reason)
        return Forbidden(reason, code="auth_failed")

    ts_text, digest_text, sig_text = (
        headers.get(TIME_HEADER), headers.get(DIGEST_HEADER), headers.get(SIGNATURE_HEADER))
    if not (sender and ts_text and digest_text and sig_text):
        raise refuse(f"peer requests must carry the {SENDER_HEADER}, {TIME_HEADER}, "
                     f"{DIGEST_HEADER} and {SIGNATURE_HEADER} headers")
    public = ctx.roster.signing_key(sender)
    if public is None:
        raise refuse(f"sender {sender} is not a member of federation {ctx.federation_id}")
    try:
        ts = int(ts_text)
        digest, sig = b64url_decode(digest_text), b64url_decode(sig_text)
    except ValueError:
        raise refuse("malformed request signature headers") from None
    now = ctx.clock()
    if abs(now - ts) > MAX_MESSAGE_AGE_S:
        raise refuse(f"request is dated {now - ts:.0f} s from this node's time (limit "
                     f"{MAX_MESSAGE_AGE_S:g} s): replayed, or a hub's clock is wrong")
    try:
        verify_request(public, path, ts, digest, sig)
    except BadSignatureError:
        raise refuse("request signature does not verify") from None
    if not ctx.replay.check_and_add(sender, sig.hex(), now):  # bytes: one key per signature
        log.warning("refused a replayed request to %s from %s (%s)", path, sender,
                    request.remote or "?")
        raise Conflict("replayed request (signature already seen)", code="replay")
    hasher = hashlib.sha256()
    raw = await read_body(request, limit, hasher.update)
    if not hmac.compare_digest(hasher.digest(), digest):
        raise refuse("request body does not match its signed digest")
    return raw


async def health(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok", "version": __version__})
