"""How a node reaches its peers: ``Peers``, over direct HTTP or through the relay.

``Peers`` is the one interface the protocol code uses. A target (a roster
member, or the founder named by an invite) has a URL, a relay mailbox or both;
with a relay connection the mailbox wins, so a federation behind home routers
needs no inbound port. The relay (``mpc_backend.relay.transport``) carries the
same signed requests and answers and keeps the same timeouts and retries.

``PeerClient`` is the direct transport: HTTP with per-request timeouts, bounded
retries with backoff.

Retried: connection failures, timeouts and 5xx answers (a restarting or
overloaded peer). Not retried: 4xx, which means the peer understood and
refused; it is raised at once as PeerRejected with the peer's error message.

Every attempt sends a freshly built (freshly signed) message: the receiver
refuses a nonce it has seen, and after a timeout the first attempt may well
have arrived. Every peer request is idempotent, so a retry that follows a
processed-but-unanswered attempt gets the same answer.

Every request carries this node's id and a signature over the path, the time
and the body's SHA-256 in ``Hearth-*`` headers (``request_headers``): a peer
checks them against its roster before it reads the body. The client needs the
node's keys for that; ``NodeContext`` hands them over.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import aiohttp

from mpc_backend.crypto import NodeKeys, b64url_encode
from mpc_backend.crypto.channel import CHANNEL_HEADER, Channel, aead_open, aead_seal, request_mac
from mpc_backend.crypto.envelope import sign_request
from mpc_backend.crypto.errors import DecryptionError
from mpc_backend.crypto.sealing import seal_share
from mpc_backend.relay.endpoint import BrokerAccount, RelayEndpoint
from mpc_backend.relay.sealed import answer_aad, request_aad
from mpc_backend.relay.transport import (
    PUSH_EXPIRY_S,
    Handler,
    RelayAnswer,
    RelayError,
    RelayTransport,
)

from .config import Timing

log = logging.getLogger("mpc_backend.peers")

SENDER_HEADER = "Hearth-Sender"
TIME_HEADER = "Hearth-Time"
DIGEST_HEADER = "Hearth-Digest"
SIGNATURE_HEADER = "Hearth-Signature"
HEALTH_PATH = "/peer/v1/health"


def request_headers(keys: NodeKeys, path: str, body: bytes, now: float,
                    channel: Channel | None = None) -> dict[str, str]:
    """The ``Hearth-*`` headers authenticating a POST of ``body`` to ``path``: signed, or
    over a channel (only ``/peer/v1/shares`` takes one) with its MAC in the signature's
    place and ``Hearth-Channel`` naming it."""
    ts = int(now)
    digest = hashlib.sha256(body).digest()
    headers = {
        SENDER_HEADER: keys.node_id,
        TIME_HEADER: str(ts),
        DIGEST_HEADER: b64url_encode(digest),
    }
    if channel is None:
        headers[SIGNATURE_HEADER] = b64url_encode(sign_request(keys, path, ts, digest))
    else:
        headers[SIGNATURE_HEADER] = b64url_encode(request_mac(channel, path, ts, digest))
        headers[CHANNEL_HEADER] = channel.channel
    return headers


class PeerError(Exception):
    """A peer call failed; ``str()`` says which peer and why."""


class PeerUnreachable(PeerError):
    """No answer after all attempts."""


class PeerRejected(PeerError):
    """The peer answered 4xx."""

    def __init__(self, url: str, status: int, code: str, message: str) -> None:
        super().__init__(f"{url} refused ({status} {code}): {message}")
        self.status = status
        self.code = code
        self.peer_message = message


class PeerClient:
    def __init__(
        self,
        timing: Timing,
        keys: NodeKeys | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.timing = timing
        self.keys = keys  # without keys requests go unsigned and peers refuse all but /join
        self.clock = clock
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=64, limit_per_host=16),
            json_serialize=lambda obj: json.dumps(obj, separators=(",", ":")),
        )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def post(
        self,
        base_url: str,
        path: str,
        build: Callable[[], dict[str, Any]],
        *,
        attempts: int | None = None,
        timeout_s: float | None = None,
        channel: Channel | None = None,
    ) -> dict[str, Any]:
        """POST ``build()`` (called per attempt), return the JSON answer.

        PeerRejected on 4xx, PeerUnreachable when no attempt got an answer.
        """
        if self._session is None:
            raise RuntimeError("peer client is not started")
        url = base_url.rstrip("/") + path
        tries = attempts or self.timing.peer_attempts
        timeout = aiohttp.ClientTimeout(total=timeout_s or self.timing.peer_timeout_s)
        last = "no attempt made"
        for attempt in range(tries):
            if attempt:
                await asyncio.sleep(self.timing.backoff_s * 2 ** (attempt - 1))
            body = json.dumps(build(), separators=(",", ":")).encode()
            headers = {"Content-Type": "application/json"}
            if self.keys is not None:
                headers.update(request_headers(self.keys, path, body, self.clock(), channel))
            try:
                async with self._session.post(
                    url, data=body, timeout=timeout, headers=headers
                ) as resp:
                    if resp.status < 400:
                        answer = await resp.json(content_type=None)
                        if not isinstance(answer, dict):
                            raise PeerRejected(url, resp.status, "bad_answer", "not a JSON object")
                        return answer
                    code, message = await _error_of(resp)
                    if resp.status < 500:
                        raise PeerRejected(url, resp.status, code, message)
                    last = f"{resp.status} {code}: {message}"
            except (aiohttp.ClientError, TimeoutError, ValueError) as err:
                last = f"{type(err).__name__}: {err}" if str(err) else type(err).__name__
            log.debug("peer call %s failed (attempt %d/%d): %s", url, attempt + 1, tries, last)
        raise PeerUnreachable(f"{url} unreachable after {tries} attempt(s): {last}")

    async def ping(self, base_url: str, timeout_s: float = 1.5) -> bool:
        if self._session is None:
            return False
        try:
            async with self._session.get(
                base_url.rstrip("/") + "/peer/v1/health",
                timeout=aiohttp.ClientTimeout(total=timeout_s),
            ) as resp:
                return resp.status == 200
        except (aiohttp.ClientError, TimeoutError):
            return False


async def _error_of(resp: aiohttp.ClientResponse) -> tuple[str, str]:
    try:
        data = await resp.json(content_type=None)
        error = data["error"]
        return str(error.get("code", "error")), str(error.get("message", ""))
    except (ValueError, KeyError, TypeError, aiohttp.ClientError):
        return "error", resp.reason or f"HTTP {resp.status}"


class Target(Protocol):
    """Where a peer is: a roster member, or the founder an invite names (no keys yet)."""

    @property
    def name(self) -> str: ...

    @property
    def url(self) -> str | None: ...

    @property
    def mailbox(self) -> str | None: ...


@dataclass(frozen=True)
class Address:
    name: str
    url: str | None = None
    mailbox: str | None = None


class UnverifiedAnswer(Exception):
    """An answer that should have been sealed to this node and was not, or does not open."""


class Peers:
    """The transport interface: direct HTTP always, the relay once the federation has one."""

    def __init__(self, timing: Timing) -> None:
        self.timing = timing
        self.direct = PeerClient(timing)
        self.relay: RelayTransport | None = None

    @property
    def keys(self) -> NodeKeys | None:
        return self.direct.keys

    @keys.setter
    def keys(self, keys: NodeKeys | None) -> None:
        self.direct.keys = keys

    @property
    def clock(self) -> Callable[[], float]:
        return self.direct.clock

    @clock.setter
    def clock(self, clock: Callable[[], float]) -> None:
        self.direct.clock = clock

    async def start(self) -> None:
        await self.direct.start()

    async def close(self) -> None:
        await self.stop_relay()
        await self.direct.close()

    async def use_relay(
        self, endpoint: RelayEndpoint, account: BrokerAccount, federation_id: str,
        handler: Handler | None, *, on_connected: Callable[[], Awaitable[None]] | None = None,
        wait_s: float | None = None, fallback: BrokerAccount | None = None,
    ) -> None:
        """Connect to the relay (RelayError if ``wait_s`` passes without a connection)."""
        await self.stop_relay()
        assert self.keys is not None
        relay = RelayTransport(endpoint, account, federation_id, clock=self.clock,
                               handler=handler, on_connected=on_connected, fallback=fallback)
        self.relay = relay
        try:
            await relay.start(wait_s)
        except RelayError:
            await self.stop_relay()
            raise

    async def stop_relay(self) -> None:
        if self.relay is not None:
            relay, self.relay = self.relay, None
            await relay.close()

    def reachable(self, target: Target) -> bool:
        return bool(target.mailbox and self.relay) or bool(target.url)

    def _sealed_request(
        self, relay: RelayTransport, target: Target, path: str, build: Callable[[], Any],
        channel: Channel | None = None,
    ) -> tuple[bytes, dict[str, str], bool]:
        """(body, Hearth-* headers, sealed): sealed to a roster member, then signed."""
        keys = self.keys
        assert keys is not None, "relay requests are always signed"
        body = json.dumps(build(), separators=(",", ":")).encode()
        sealed = isinstance(target, MemberLike)
        if sealed:
            aad = request_aad(relay.federation_id, path, keys.node_id, target.node_id)
            body = (aead_seal(channel.relay_request_key, body, aad) if channel is not None
                    else seal_share(target.hpke_public, target.hpke_suite, body, aad))
        return body, request_headers(keys, path, body, self.clock(), channel), sealed

    def open_answer(self, relay: RelayTransport, target: Target, path: str,
                    headers: dict[str, str], answer: RelayAnswer, sealed: bool,
                    channel: Channel | None = None) -> dict[str, Any]:
        """The answer's JSON; UnverifiedAnswer if a sealed request got an unsealed answer (it may
        come from the broker: unverified, so the request counts as unanswered) or a sealed
        answer that does not open for this request and status. Over a channel the member
        seals its answer under it, except a refusal made before it found the channel."""
        body = answer.body
        if answer.sealed:
            keys = self.keys
            assert keys is not None and isinstance(target, MemberLike)
            aad = answer_aad(relay.federation_id, path, target.node_id, keys.node_id,
                             headers[SIGNATURE_HEADER], answer.status)
            opened = None
            if channel is not None:
                with contextlib.suppress(DecryptionError):
                    opened = aead_open(channel.relay_answer_key, body, aad)
            if opened is None:
                try:
                    opened = keys.open_share(body, aad)
                except (DecryptionError, ValueError):
                    raise UnverifiedAnswer("a sealed answer that does not open") from None
            body = opened
        elif sealed:
            raise UnverifiedAnswer(f"an unsealed answer to a sealed request ({answer.status}: "
                              f"{body[:200].decode(errors='replace')})")
        try:
            data = json.loads(body) if body else {}
        except ValueError:
            data = None
        if not isinstance(data, dict):
            raise UnverifiedAnswer("an answer that is not a JSON object")
        return data

    async def post(
        self, target: Target, path: str, build: Callable[[], dict[str, Any]], *,
        attempts: int | None = None, timeout_s: float | None = None,
        channel: Channel | None = None,
    ) -> dict[str, Any]:
        """``build()`` (called per attempt) to ``target``; its JSON answer. With ``channel``
        the request carries its MAC instead of this node's signature.

        PeerRejected on a 4xx answer, PeerUnreachable when no attempt got one.
        """
        relay = self.relay
        if not (target.mailbox and relay):
            if not target.url:
                raise PeerUnreachable(f"{target.name} has no address this node can reach")
            return await self.direct.post(target.url, path, build, attempts=attempts,
                                          timeout_s=timeout_s, channel=channel)
        label = f"{target.name} (via the relay)"
        tries = attempts or self.timing.peer_attempts
        timeout = timeout_s or self.timing.peer_timeout_s
        last = "no attempt made"
        for attempt in range(tries):
            if attempt:
                await asyncio.sleep(self.timing.backoff_s * 2 ** (attempt - 1))
            body, headers, sealed = self._sealed_request(relay, target, path, build, channel)
            try:
                answer = await relay.request(target.mailbox, path, body, headers,
                                             timeout_s=timeout, sealed=sealed)
            except RelayError as err:
                last = str(err)
                continue
            if answer is None:
                last = f"no answer within {timeout:g} s"
                continue
            try:
                data = self.open_answer(relay, target, path, headers, answer, sealed, channel)
            except UnverifiedAnswer as err:
                last = str(err)
                continue
            if answer.status < 400:
                return data
            code, message = _error_fields(data)
            if answer.status < 500:
                raise PeerRejected(label, answer.status, code, message)
            last = f"{answer.status} {code}: {message}"
            log.debug("relay call %s %s failed (attempt %d/%d): %s", label, path, attempt + 1,
                      tries, last)
        raise PeerUnreachable(f"{label} unreachable after {tries} attempt(s): {last}")

    async def push(
        self, target: Target, path: str, build: Callable[[], dict[str, Any]]
    ) -> dict[str, Any] | None:
        """Deliver a self-authenticating document; the answer, or None when the relay
        holds it for a member that is away (it gets it when it reconnects)."""
        relay = self.relay
        if not (target.mailbox and relay):
            return await self.post(target, path, build)
        label = f"{target.name} (via the relay)"
        body, headers, sealed = self._sealed_request(relay, target, path, build)
        try:
            answer = await relay.request(target.mailbox, path, body, headers,
                                         timeout_s=self.timing.peer_timeout_s,
                                         expiry_s=PUSH_EXPIRY_S, sealed=sealed)
            if answer is None:
                return None
            data = self.open_answer(relay, target, path, headers, answer, sealed)
        except (RelayError, UnverifiedAnswer) as err:
            raise PeerUnreachable(f"{label}: {err}") from None
        if answer.status < 400:
            return data
        code, message = _error_fields(data)
        if answer.status < 500:
            raise PeerRejected(label, answer.status, code, message)
        raise PeerUnreachable(f"{label}: {answer.status} {code}: {message}")

    async def ping(self, target: Target, timeout_s: float = 1.5) -> bool:
        relay = self.relay
        if target.mailbox and relay:
            keys = self.keys
            assert keys is not None
            headers = request_headers(keys, HEALTH_PATH, b"", self.clock())
            try:
                answer = await relay.request(target.mailbox, HEALTH_PATH, b"", headers,
                                             timeout_s=timeout_s)
            except RelayError:
                return False
            return answer is not None and answer.status == 200
        return bool(target.url) and await self.direct.ping(str(target.url), timeout_s)

    def relay_status(self) -> dict[str, Any] | None:
        return None if self.relay is None else self.relay.status()


@runtime_checkable
class MemberLike(Protocol):
    """A target with roster keys: relayed requests to it are sealed to its HPKE key."""

    @property
    def node_id(self) -> str: ...

    @property
    def hpke_public(self) -> bytes: ...

    @property
    def hpke_suite(self) -> str: ...


def _error_fields(body: dict[str, Any]) -> tuple[str, str]:
    error = body.get("error")
    if isinstance(error, dict):
        return str(error.get("code", "error")), str(error.get("message", ""))
    return "error", "no error message"
