"""The peer API under ``/peer/v1``: what other members' nodes call.

Requests are authenticated before their body is read. Every route but
``/join`` requires the ``Hearth-*`` headers (``mpc_backend.node.peers``), checked
in this order: all four are present and the time is within the message age window
(so a request without them costs no lookup), the sender is a member (of the roster,
or a household admitted by the founder, both held in memory; one not known yet
costs, on a member that keeps the admission log, at most a rate-limited catch-up
from the founder), the signature over path, time and body digest verifies under
the member's key (each a 403, logged with sender and address,
never the body), and that signature was not seen before (409). ``/shares`` also
takes, in the signature's place, the MAC of a channel the household offered this
node (``Hearth-Channel`` names it; ``mpc_backend.node.channels``): an unknown or
expired channel is a 403 ``unknown_channel``, and every other route refuses one.
Only then is the body read, up to the route's limit (413 beyond) and hashed on
the way; one that does not match the signed digest is refused (403). Then it is parsed (large bodies
in a worker thread) and the service checks the signed envelope inside (for
``/shares`` all but its signature, which would prove again what the request's
did: ``mpc_backend.node.ingest``). A
joining node is no member yet: ``/join`` takes 64 KiB at most and is checked
by its envelope alone.

``/shares/batch`` carries households' ``/shares`` requests that a member forwards
(``mpc_backend.node.forwarding``): the batch is a member's signed request like any other,
and each request in it goes through the checks above, in that order, as if its household
had sent it here itself; each gets its own answer, so one bad request fails alone.

Answers that carry protocol data are signed envelopes too. Body limits are per
route: share batches are small, a roster of a large federation is not.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any

from aiohttp import web

from mpc_backend import __version__
from mpc_backend.crypto import BadSignatureError, b64url_decode
from mpc_backend.crypto.channel import (
    CHANNEL_HEADER,
    Channel,
    aead_open,
    aead_seal,
    check_request_mac,
    valid_id,
)
from mpc_backend.crypto.envelope import verify_request
from mpc_backend.crypto.errors import DecryptionError
from mpc_backend.crypto.sealing import seal_share
from mpc_backend.node.context import DELIVERY_MAX_AGE_S, MAX_MESSAGE_AGE_S, NodeContext
from mpc_backend.node.errors import BadRequest, Conflict, Forbidden, NodeError, PayloadTooLarge
from mpc_backend.node.forwarding import BATCH_MAX, body_text, decode_body, parse_headers
from mpc_backend.node.ingest import Preauth
from mpc_backend.node.node import Node
from mpc_backend.node.peers import DIGEST_HEADER, SENDER_HEADER, SIGNATURE_HEADER, TIME_HEADER
from mpc_backend.relay.sealed import answer_aad, request_aad

from .errors import (
    UNAUTHENTICATED_BODY_S,
    decode_json,
    error_middleware,
    error_response,
    read_body,
)

SHARES_BODY_LIMIT = 1024 * 1024
ROUND_BODY_LIMIT = 4 * 1024 * 1024
ROSTER_BODY_LIMIT = 16 * 1024 * 1024
SMALL_BODY_LIMIT = 64 * 1024
NODE_KEY = web.AppKey("node", Node)
log = logging.getLogger("mpc_backend.api")

Service = Callable[[Any, str | None], Awaitable[dict[str, Any]]]  # (envelope, remote)


@dataclass(frozen=True)
class Route:
    # Per request, so a service's handler can be replaced; given who signed the request
    # (None on a route open to non-members), so a service that takes it (ingest) need not
    # verify the signature of the envelope inside over the same bytes again.
    pick: Callable[[Node, Preauth | None], Service]
    limit: int
    members_only: bool = True
    # Self-authenticating documents (co-signed results, founder-signed rosters) pushed
    # through the relay wait in an offline member's queue; there their request stays valid
    # for longer. Over HTTP nothing waits, and every request must be fresh (the envelope
    # inside may be as old over either transport: its content is self-authenticating).
    relay_max_age_s: float = MAX_MESSAGE_AGE_S
    # Whether a request may carry a channel MAC (``Hearth-Channel``) in its signature's place.
    channel_auth: bool = False


PEER_PREFIX = "/peer/v1"
SHARES_ROUTE = Route(lambda n, p: partial(n.ingest.handle_shares, preauth=p), SHARES_BODY_LIMIT,
                     channel_auth=True)


def peer_routes(node: Node) -> dict[str, Route]:
    """Every POST route of the peer API, by path under ``/peer/v1``."""
    routes = {
        "/shares": SHARES_ROUTE,
        "/shares/batch": Route(lambda n, p: partial(serve_batch, n, p), ROUND_BODY_LIMIT),
        "/channel": Route(lambda n, _: n.channels.handle_offer, SMALL_BODY_LIMIT),
        "/join": Route(lambda n, _: n.federation.handle_join, SMALL_BODY_LIMIT, members_only=False),
        "/roster": Route(lambda n, _: n.federation.handle_roster_push, ROSTER_BODY_LIMIT,
                         relay_max_age_s=DELIVERY_MAX_AGE_S),
        "/roster/fetch": Route(lambda n, _: n.federation.handle_roster_fetch, SMALL_BODY_LIMIT),
        "/admissions": Route(lambda n, _: n.federation.handle_admissions_push, ROSTER_BODY_LIMIT,
                             relay_max_age_s=DELIVERY_MAX_AGE_S),
        "/admissions/fetch": Route(lambda n, _: n.federation.handle_admissions_fetch,
                                   SMALL_BODY_LIMIT),
        "/tasks": Route(lambda n, _: n.federation.handle_task_proposal, SMALL_BODY_LIMIT),
        "/relay/password": Route(lambda n, _: n.federation.handle_relay_password,
                                 SMALL_BODY_LIMIT),
        "/results": Route(lambda n, _: n.results.handle_push, ROUND_BODY_LIMIT,
                          relay_max_age_s=DELIVERY_MAX_AGE_S),
        "/results/fetch": Route(lambda n, _: n.results.handle_fetch, SMALL_BODY_LIMIT),
    }
    for step in node.rounds.handlers():  # every round step the service answers
        routes[f"/round/{step}"] = Route(lambda n, _, s=step: n.rounds.handlers()[s],
                                         ROUND_BODY_LIMIT)
    return routes


def make_peer_app(node: Node) -> web.Application:
    app = web.Application(middlewares=[error_middleware])
    app[NODE_KEY] = node
    app.router.add_get("/health", health)
    for path, route in peer_routes(node).items():
        app.router.add_post(path, http_handler(route))
    return app


def http_handler(route: Route) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """A POST handler: authenticate, read at most ``route.limit`` bytes, parse, hand over."""

    async def handler(request: web.Request) -> web.StreamResponse:
        node = request.app[NODE_KEY]
        arrived = time.perf_counter()
        preauth = None
        try:
            if route.members_only:
                path = request.match_info.route.resource.canonical  # however it was spelled
                preauth, digest = await authenticate(node, route, path, request.headers,
                                                     request.remote, arrived)
                hasher = hashlib.sha256()
                raw = await read_body(request, route.limit, hasher.update)
                check_digest(node.ctx, path, hasher.digest(), digest, request.remote)
            else:
                raw = await read_body(request, route.limit, deadline=UNAUTHENTICATED_BODY_S)
        except NodeError as err:
            return await refuse_unread(request, err)
        envelope = await decode_json(raw)
        answer = await _serve(route, node, envelope, request.remote, preauth)
        return web.json_response(answer)

    return handler


class PeerDispatcher:
    """The peer API for requests that arrive as relay frames instead of HTTP.

    The same routes, checks and limits as over HTTP, in the same order; the body is
    already whole (the broker delivered it), so only its size and digest remain. A
    member's request must be sealed to this node (``mpc_backend.relay.sealed``): it is
    opened only after its signature checks out, and the answer is sealed back to the
    member, so the broker reads neither.
    """

    def __init__(self, node: Node) -> None:
        self.node = node
        self.routes = peer_routes(node)

    async def dispatch(self, path: str, headers: Mapping[str, str], body: bytes,
                       remote: str, sealed: bool) -> tuple[int, bytes, bool]:
        """(HTTP status, answer body, sealed) for one request; never raises for a bad one."""
        prefix = PEER_PREFIX
        route = self.routes.get(path[len(prefix):]) if path.startswith(prefix) else None
        if path == prefix + "/health":
            return 200, _json(_health()), False
        if route is None:
            return 404, _json(_error("not_found", f"no peer route {path[:100]!r}")), False
        ctx = self.node.ctx
        # Every answer to a sealed request goes back sealed to the member it names as its
        # sender (a refusal too): only that member can read it, and the broker cannot
        # tell or change what it says. A sender not in memory is looked for further only
        # once the request's headers pass their first checks.
        requester = ctx.member(headers.get(SENDER_HEADER, "")) if sealed else None
        arrived = time.perf_counter()
        preauth = None
        try:
            if len(body) > route.limit:
                raise PayloadTooLarge(f"request body exceeds the limit of {route.limit} bytes")
            if route.members_only:
                preauth, digest = await authenticate(self.node, route, path, headers, remote,
                                                     arrived, route.relay_max_age_s)
                requester = ctx.member(preauth.sender) if sealed else None
                # The signed digest is of the sealed bytes, which open to one plaintext only.
                check_digest(ctx, path, hashlib.sha256(body).digest(), digest, remote)
                body = _open_request(ctx, path, headers, body, sealed, preauth.channel)
            elif sealed:
                raise BadRequest("a join travels unsealed: the joiner has no roster key yet")
            if not body:
                raise BadRequest("request body is empty; send a JSON object", field="body")
            envelope = await decode_json(body)
            status, answer = 200, await _serve(route, self.node, envelope, remote, preauth)
        except NodeError as err:
            status, answer = err.status, _error(err.code, err.message)
            if err.field is not None:
                answer["error"]["field"] = err.field
        except Exception:
            log.exception("unhandled error in relayed %s", path)
            status, answer = 500, _error("internal", "internal error; see the node's log")
        if requester is None:
            return status, _json(answer), False
        aad = answer_aad(ctx.federation_id, path, ctx.node_id, requester.node_id,
                         headers.get(SIGNATURE_HEADER, ""), status)
        if preauth is not None and preauth.channel is not None:
            return status, aead_seal(preauth.channel.relay_answer_key, _json(answer), aad), True
        return status, seal_share(requester.hpke_public, requester.hpke_suite, _json(answer),
                                  aad), True


async def authenticate(node: Node, route: Route, path: str, headers: Mapping[str, str],
                       remote: str | None, arrived: float,
                       max_age_s: float = MAX_MESSAGE_AGE_S,
                       forwarded_by: str | None = None) -> tuple[Preauth, bytes]:
    """Who sent a member request, and the body digest they signed (or MAC'd), from its
    ``Hearth-*`` headers alone; Forbidden or Conflict (replay) otherwise."""
    ctx = node.ctx
    signed = signed_headers(ctx, path, headers, remote, max_age_s)
    await ctx.resolve(signed.sender)
    checking = time.perf_counter()  # after any catch-up from the founder
    channel = await channel_of(node, route, path, signed, remote)
    digest = check_signed_headers(ctx, path, signed, remote, channel)
    return Preauth(signed.sender, arrived, time.perf_counter() - checking, channel,
                   forwarded_by), digest


async def serve_batch(node: Node, preauth: Preauth | None, envelope: Any,
                      remote: str | None) -> dict[str, Any]:
    """A member's batch of households' share requests (``mpc_backend.node.forwarding``):
    each checked and answered exactly as if its household had sent it here itself."""
    assert preauth is not None  # a members-only route
    body = node.ctx.verify(envelope, "shares-batch", remote=remote,
                           authenticated_by=preauth.sender)
    requests = body.get("requests")
    if not isinstance(requests, list) or not 1 <= len(requests) <= BATCH_MAX:
        raise BadRequest(f"requests must be a list of 1-{BATCH_MAX} share requests",
                         field="body.requests")
    entries = []
    for index, item in enumerate(requests):
        where = f"body.requests[{index}]"
        if not isinstance(item, dict):
            raise BadRequest("each request must be an object", field=where)
        # What the forwarder checked is its own to get right; whether the body decodes is
        # the household's, so that fails its entry alone.
        entries.append((parse_headers(item.get("headers"), f"{where}.headers"),
                        body_text(item.get("body"), f"{where}.body"), f"{where}.body"))
    answers = await asyncio.gather(*(
        _serve_forwarded(node, preauth.sender, headers, text, where, remote)
        for headers, text, where in entries))
    return {"answers": [{"status": status, "answer": answer} for status, answer in answers]}


async def _serve_forwarded(node: Node, forwarder: str, headers: Mapping[str, str], text: str,
                           where: str, remote: str | None) -> tuple[int, dict[str, Any]]:
    """One forwarded request to ``/shares``: the HTTP handler's checks, in its order."""
    path = PEER_PREFIX + "/shares"
    try:
        preauth, digest = await authenticate(node, SHARES_ROUTE, path, headers, remote,
                                             time.perf_counter(), forwarded_by=forwarder)
        raw = decode_body(text, where)
        check_digest(node.ctx, path, hashlib.sha256(raw).digest(), digest, remote)
        envelope = await decode_json(raw)
        return 200, await node.ingest.handle_shares(envelope, remote, preauth=preauth)
    except NodeError as err:
        answer = _error(err.code, err.message)
        if err.field is not None:
            answer["error"]["field"] = err.field
        return err.status, answer
    except Exception:  # this entry's alone: the batch's other entries are answered
        log.exception("unhandled error in a share request %s forwarded", forwarder)
        return 500, _error("internal", "internal error; see the node's log")


async def _serve(route: Route, node: Node, envelope: Any, remote: str | None,
                 preauth: Preauth | None) -> dict[str, Any]:
    return await route.pick(node, preauth)(envelope, remote)


def _open_request(ctx: NodeContext, path: str, headers: Mapping[str, str], body: bytes,
                  sealed: bool, channel: Channel | None) -> bytes:
    """An authenticated member request's plain body: relayed ones must be sealed to us (to
    our key, or under the channel the request names)."""
    if not sealed:
        raise BadRequest("a relayed request from a member must be sealed to the recipient's "
                         "key; this node answers no unsealed one", code="unsealed")
    aad = request_aad(ctx.federation_id, path, headers[SENDER_HEADER], ctx.node_id)
    try:
        if channel is not None:
            return aead_open(channel.relay_request_key, body, aad)
        return ctx.keys.open_share(body, aad)
    except DecryptionError:
        key = "this node's key" if channel is None else "the channel it names"
        log.warning("refused a relayed request to %s from %s: it does not open with %s", path,
                    headers[SENDER_HEADER], key)
        raise Forbidden(f"the sealed body does not open with {key} for this path and sender",
                        code="auth_failed") from None


def _json(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc, separators=(",", ":")).encode()


def _error(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}


async def refuse_unread(request: web.Request, err: NodeError) -> web.StreamResponse:
    """Answer a refusal, then drop the connection: aiohttp would otherwise go on reading
    (and discarding) the unread body for up to ten seconds after the answer."""
    response = error_response(err.status, err.code, err.message, err.field)
    response.force_close()
    await response.prepare(request)
    await response.write_eof()
    request.protocol.force_close()  # also skips the lingering read
    return response


@dataclass(frozen=True)
class SignedHeaders:
    sender: str
    ts: int
    digest: bytes
    sig: bytes  # an Ed25519 signature, or with ``channel`` that channel's MAC
    channel: str | None = None


def _refuse(path: str, sender: str | None, remote: str | None, reason: str) -> Forbidden:
    log.warning("refused a request to %s from %s (%s): %s", path, sender or "?",
                remote or "?", reason)
    return Forbidden(reason, code="auth_failed")


def signed_headers(ctx: NodeContext, path: str, headers: Mapping[str, str],
                   remote: str | None, max_age_s: float = MAX_MESSAGE_AGE_S) -> SignedHeaders:
    """The request's signature headers, all present, well formed and dated within the age
    window; Forbidden otherwise. Checked before the sender is looked up: a request without
    them costs no lookup, and no catch-up from the founder."""
    sender = headers.get(SENDER_HEADER)
    ts_text, digest_text, sig_text = (
        headers.get(TIME_HEADER), headers.get(DIGEST_HEADER), headers.get(SIGNATURE_HEADER))
    if not (sender and ts_text and digest_text and sig_text):
        raise _refuse(path, sender, remote,
                      f"peer requests must carry the {SENDER_HEADER}, {TIME_HEADER}, "
                      f"{DIGEST_HEADER} and {SIGNATURE_HEADER} headers")
    try:
        ts = int(ts_text)
        digest, sig = b64url_decode(digest_text), b64url_decode(sig_text)
    except ValueError:
        raise _refuse(path, sender, remote, "malformed request signature headers") from None
    channel = headers.get(CHANNEL_HEADER)
    if channel is not None and not valid_id(channel):
        raise _refuse(path, sender, remote, f"{CHANNEL_HEADER} must be 32 lowercase hex digits")
    age = ctx.clock() - ts
    if not -MAX_MESSAGE_AGE_S <= age <= max_age_s:
        raise _refuse(path, sender, remote,
                      f"request is dated {age:.0f} s from this node's time (limit "
                      f"{max_age_s:g} s): replayed, or a hub's clock is wrong")
    return SignedHeaders(sender, ts, digest, sig, channel)


async def channel_of(node: Node, route: Route, path: str, signed: SignedHeaders,
                     remote: str | None) -> Channel | None:
    """The live channel a request names, None for a signed one; Forbidden if it names one
    this node does not hold from that sender (code ``unknown_channel``: offer it again) or
    the route takes signatures only."""
    if signed.channel is None:
        return None
    if not route.channel_auth:
        raise _refuse(path, signed.sender, remote,
                      f"only shares travel over a channel; sign requests to {path}")
    if node.ctx.member(signed.sender) is None:  # no storage lookup for strangers
        raise _refuse(path, signed.sender, remote,
                      f"sender {signed.sender} is not a member of federation "
                      f"{node.ctx.federation_id}")
    channel = await node.channels.inbound(signed.sender, signed.channel)
    if channel is None:
        log.info("refused a request to %s from %s: channel %s unknown or expired", path,
                 signed.sender, signed.channel)
        raise Forbidden(f"channel {signed.channel} is unknown or expired here; offer it again "
                        "(POST /peer/v1/channel) or open a new one", code="unknown_channel")
    return channel


def check_signed_headers(ctx: NodeContext, path: str, signed: SignedHeaders,
                         remote: str | None, channel: Channel | None = None) -> bytes:
    """The signed (or, over ``channel``, MAC'd) body digest of a request by a member;
    Forbidden/Conflict otherwise.

    Nothing of the body is needed (nor read) before this passes.
    """
    if channel is not None:
        if not check_request_mac(channel, path, signed.ts, signed.digest, signed.sig):
            raise _refuse(path, signed.sender, remote,
                          "request MAC does not verify under its channel")
    else:
        public = ctx.signing_key(signed.sender)
        if public is None:
            raise _refuse(path, signed.sender, remote,
                          f"sender {signed.sender} is not a member of federation "
                          f"{ctx.federation_id}")
        try:
            verify_request(public, path, signed.ts, signed.digest, signed.sig)
        except BadSignatureError:
            raise _refuse(path, signed.sender, remote,
                          "request signature does not verify") from None
    # bytes: one key per signature
    if not ctx.replay.check_and_add(signed.sender, signed.sig.hex(), ctx.clock()):
        log.warning("refused a replayed request to %s from %s (%s)", path, signed.sender,
                    remote or "?")
        raise Conflict("replayed request (signature already seen)", code="replay")
    return signed.digest


def check_digest(ctx: NodeContext, path: str, actual: bytes, signed: bytes,
                 remote: str | None) -> None:
    if not hmac.compare_digest(actual, signed):
        log.warning("refused a request to %s (%s): body does not match its signed digest",
                    path, remote or "?")
        raise Forbidden("request body does not match its signed digest", code="auth_failed")


def _health() -> dict[str, Any]:
    return {"status": "ok", "version": __version__}


async def health(request: web.Request) -> web.Response:
    return web.json_response(_health())
