"""The relay transport: peer requests and answers as MQTT 5 messages through one broker.

One outbound connection per node, never an inbound one. The node subscribes to
its own inbox with QoS 1 in a persistent session (``clean_start`` never, a long
session expiry), so what is sent to it while it is away waits at the broker.

A request is a padded frame (``frames``) published with QoS 1 to the
recipient's inbox, with MQTT 5 ``response topic`` = the sender's inbox and
random ``correlation data``; the answer comes back the same way. Requests keep
the direct transport's per-attempt timeout and bounded retries, and expire at
the broker when nobody waits for them any more. Every attempt is freshly
signed; QoS 1 may deliver one attempt twice, so the answer to each
frame is kept for the replay window and sent again instead of
running the handler twice (which would refuse it as a replay); the memory is
keyed by the whole frame, its correlation data and reply topic, and bounded in
age and bytes.

Pushes (results, rosters) are one-way in effect: published once with a long
expiry, so a member offline for minutes or days gets them when it reconnects.

The broker is untrusted: bodies are HPKE-sealed end to end (``sealed``), every
request carries the same ``Hearth-*`` signature as over HTTP and is checked by
the same code (``PeerDispatcher``); answers are signed envelopes where they carry
protocol data. What the broker can do is delay, drop and count messages.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import math
import re
import secrets
import ssl
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import aiomqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from .endpoint import TOPIC_ROOT, BrokerAccount, RelayEndpoint, inbox_topic
from .frames import ANSWER, REQUEST, FrameError, decode_frame, encode_answer, encode_request

log = logging.getLogger("mpc_backend.relay")

SESSION_EXPIRY_S = 7 * 24 * 3600  # the broker keeps an offline member's queue this long
PUSH_EXPIRY_S = 7 * 24 * 3600
ANSWER_EXPIRY_S = 300
MAX_BACKOFF_S = 60.0
MAX_CONCURRENT_REQUESTS = 64
ANSWER_MEMORY_S = 600.0  # a redelivered request older than this is refused as stale anyway
ANSWER_MEMORY_BYTES = 64 * 1024 * 1024
_NOT_READY = b'{"error":{"code":"not_ready","message":"node is starting"}}'

# (path, headers, body, remote, sealed) -> (HTTP status, answer body, sealed)
Handler = Callable[[str, Mapping[str, str], bytes, str, bool],
                   Awaitable[tuple[int, bytes, bool]]]


class RelayError(Exception):
    """A relay call got no usable answer; ``str()`` says which member and why."""


@dataclass(frozen=True)
class RelayAnswer:
    status: int
    body: bytes  # JSON, or HPKE-sealed JSON when ``sealed``
    sealed: bool = False


class RelayTransport:
    def __init__(
        self,
        endpoint: RelayEndpoint,
        account: BrokerAccount,
        federation_id: str,
        *,
        clock: Callable[[], float] = time.time,
        handler: Handler | None = None,
        on_connected: Callable[[], Awaitable[None]] | None = None,
        fallback: BrokerAccount | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.account = account
        # While a password change is under way either password may be the broker's: a
        # refused login switches to the other one for the next attempt.
        self.fallback = fallback
        self.federation_id = federation_id
        self.clock = clock
        self.handler = handler
        self.on_connected = on_connected
        self.inbox = inbox_topic(federation_id, account.username)
        self._inbox_pattern = re.compile(
            rf"{TOPIC_ROOT}/{re.escape(federation_id)}/[a-z0-9][a-z0-9-]{{2,63}}/in")
        self._client: aiomqtt.Client | None = None
        self._connected = asyncio.Event()
        self._runner: asyncio.Task[None] | None = None
        self._pending: dict[bytes, asyncio.Future[RelayAnswer]] = {}
        # Answers by frame, for redeliveries: kept as long as a request is fresh, within a
        # memory budget.
        self._answered: OrderedDict[bytes, tuple[int, bytes, bool, float]] = OrderedDict()
        self._answered_bytes = 0
        self._in_flight: dict[bytes, asyncio.Future[tuple[int, bytes, bool]]] = {}
        self._handlers: set[asyncio.Task[None]] = set()
        self._slots = asyncio.Semaphore(MAX_CONCURRENT_REQUESTS)
        self.state_since: float = clock()
        self.last_error: str | None = None
        self.failed_attempts = 0
        self._first_failure = asyncio.get_running_loop().create_future()

    # -- connection ------------------------------------------------------------
    async def start(self, wait_s: float | None = None) -> None:
        """Connect in the background; with ``wait_s``, raise RelayError unless connected
        by then (with the broker's reason, e.g. refused credentials)."""
        self._runner = asyncio.create_task(self._run())
        if wait_s is None:
            return
        connected = asyncio.create_task(self._connected.wait())
        try:
            await asyncio.wait({connected, self._first_failure}, timeout=wait_s,
                               return_when=asyncio.FIRST_COMPLETED)
        finally:
            connected.cancel()
        if not self._connected.is_set():
            raise RelayError(f"could not connect to the relay {self.endpoint.url}: "
                             f"{self.last_error or 'no answer'}")

    async def close(self) -> None:
        if self._runner is not None:
            self._runner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._runner
            self._runner = None
        handlers = list(self._handlers)
        for task in handlers:
            task.cancel()
        await asyncio.gather(*handlers, return_exceptions=True)
        for future in self._pending.values():
            if not future.done():
                future.cancel()

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def status(self) -> dict[str, Any]:
        return {
            "url": self.endpoint.url,
            "mailbox": self.account.username,
            "connected": self.connected,
            "since": self.state_since,
            "last_error": self.last_error,
            "reconnects": self.failed_attempts,
        }

    def _client_for_session(self) -> aiomqtt.Client:
        properties = Properties(PacketTypes.CONNECT)
        properties.SessionExpiryInterval = SESSION_EXPIRY_S
        tls: ssl.SSLContext | None = None
        if self.endpoint.tls:
            tls = ssl.create_default_context(cadata=self.endpoint.ca_pem)
        return aiomqtt.Client(
            self.endpoint.host, self.endpoint.port,
            username=self.account.username, password=self.account.password,
            identifier=self.account.username,  # one session per member, kept across restarts
            protocol=aiomqtt.ProtocolVersion.V5, clean_start=False, properties=properties,
            tls_context=tls, keepalive=30, timeout=10, max_inflight_messages=200,
            logger=_MQTT_LOG,
        )

    async def _run(self) -> None:
        backoff = 1.0
        while True:
            try:
                async with self._client_for_session() as client:
                    granted = await client.subscribe(self.inbox, qos=1)
                    code = granted[0]
                    if int(getattr(code, "value", code)) >= 0x80:
                        raise aiomqtt.MqttError(f"the broker refused the subscription to this "
                                                f"node's inbox ({code})")
                    self._client = client
                    self._mark(connected=True)
                    backoff = 1.0
                    if self.on_connected is not None:
                        self._spawn(self.on_connected())
                    async for message in client.messages:
                        try:
                            self._on_message(message)
                        except Exception:  # one bad message must not cut the node off
                            log.exception("dropped a relay message that could not be handled")
                self._mark(connected=False, error="the relay closed the connection")
            except aiomqtt.MqttError as err:
                self._mark(connected=False, error=_reason(err))
                if self.fallback is not None and _refused_login(err):
                    self.account, self.fallback = self.fallback, self.account
            finally:
                self._client = None
            # Jittered exponential backoff: a restarted broker is not hit by every hub at once.
            delay = backoff * (0.5 + secrets.randbelow(1000) / 1000)
            log.info("relay %s: %s; reconnecting in %.1f s", self.endpoint.url,
                     self.last_error, delay)
            await asyncio.sleep(delay)
            backoff = min(backoff * 2, MAX_BACKOFF_S)

    def _mark(self, *, connected: bool, error: str | None = None) -> None:
        was = self._connected.is_set()
        if connected:
            self._connected.set()
            self.last_error = None
            log.info("connected to the relay %s as %s", self.endpoint.url, self.account.username)
        else:
            self._connected.clear()
            self.last_error = error
            self.failed_attempts += 1
            if not self._first_failure.done():
                self._first_failure.set_result(None)
        if was != connected:
            self.state_since = self.clock()

    # -- inbound ---------------------------------------------------------------
    def _on_message(self, message: aiomqtt.Message) -> None:
        payload = message.payload
        if not isinstance(payload, bytes | bytearray):
            return
        props = message.properties
        correlation = getattr(props, "CorrelationData", None) if props is not None else None
        try:
            frame = decode_frame(bytes(payload))
        except FrameError as err:
            log.warning("dropped a relay message on %s: %s", message.topic, err)
            return
        if not isinstance(correlation, bytes) or not 8 <= len(correlation) <= 64:
            log.warning("dropped a relay %s without correlation data", frame.kind)
            return
        if frame.kind == ANSWER:
            future = self._pending.get(correlation)
            if future is not None and not future.done():
                future.set_result(RelayAnswer(frame.status, frame.body, frame.sealed))
            return  # a late answer (its request gave up) or one for another session
        reply_to = getattr(props, "ResponseTopic", None)
        if not isinstance(reply_to, str) or not self._inbox_pattern.fullmatch(reply_to):
            log.warning("dropped a relay request without a response topic in this federation")
            return
        assert frame.kind == REQUEST and frame.headers is not None
        # A redelivery is the same frame to the same reply topic; anything else with this
        # correlation data goes through every check again.
        key = hashlib.sha256(correlation + b"\0" + reply_to.encode() + b"\0" + payload).digest()
        self._spawn(self._answer(frame.path, frame.headers, frame.body, frame.sealed, reply_to,
                                 correlation, key))

    def _forget_old_answers(self) -> None:
        horizon = time.monotonic() - ANSWER_MEMORY_S
        while self._answered:
            _, (_, answer, _, at) = next(iter(self._answered.items()))
            if at >= horizon and self._answered_bytes <= ANSWER_MEMORY_BYTES:
                break
            self._answered.popitem(last=False)
            self._answered_bytes -= len(answer)

    def _spawn(self, coro: Awaitable[None]) -> None:
        task = asyncio.ensure_future(coro)
        self._handlers.add(task)
        task.add_done_callback(self._handlers.discard)

    async def _answer(self, path: str, headers: dict[str, str], body: bytes, sealed: bool,
                      reply_to: str, correlation: bytes, key: bytes) -> None:
        sender = headers.get("Hearth-Sender", "?")
        self._forget_old_answers()
        if key in self._answered:
            status, answer, answer_sealed, _ = self._answered[key]  # a redelivery: no rerun
        elif key in self._in_flight:
            status, answer, answer_sealed = await asyncio.shield(self._in_flight[key])
        else:
            loop = asyncio.get_running_loop()
            future: asyncio.Future[tuple[int, bytes, bool]] = loop.create_future()
            self._in_flight[key] = future
            try:
                async with self._slots:
                    if self.handler is None:
                        status, answer, answer_sealed = 503, _NOT_READY, False
                    else:
                        status, answer, answer_sealed = await self.handler(
                            path, headers, body, f"relay:{sender}", sealed)
                future.set_result((status, answer, answer_sealed))
            except BaseException as err:
                future.set_exception(err)
                raise
            finally:
                del self._in_flight[key]
            self._answered[key] = (status, answer, answer_sealed, time.monotonic())
            self._answered_bytes += len(answer)
        client = self._client
        if client is None:
            return  # the requester retries with a fresh attempt
        props = Properties(PacketTypes.PUBLISH)
        props.CorrelationData = correlation
        props.MessageExpiryInterval = ANSWER_EXPIRY_S
        with contextlib.suppress(aiomqtt.MqttError, TimeoutError):
            await client.publish(reply_to, encode_answer(status, answer, sealed=answer_sealed),
                                 qos=1, properties=props)

    # -- outbound --------------------------------------------------------------
    async def request(
        self, mailbox: str, path: str, body: bytes, headers: dict[str, str], *,
        timeout_s: float, expiry_s: float | None = None, sealed: bool = False,
    ) -> RelayAnswer | None:
        """Publish one request and wait up to ``timeout_s`` for its answer.

        None if no answer came (the broker may still hold the request until
        ``expiry_s``, default ``timeout_s``); RelayError if it could not be published.
        """
        deadline = asyncio.get_running_loop().time() + timeout_s
        if not self._connected.is_set():
            try:
                await asyncio.wait_for(self._connected.wait(), timeout_s)
            except TimeoutError:
                raise RelayError(f"not connected to the relay {self.endpoint.url} "
                                 f"({self.last_error or 'connecting'})") from None
        client = self._client
        if client is None:
            raise RelayError(f"not connected to the relay {self.endpoint.url}")
        correlation = secrets.token_bytes(16)
        props = Properties(PacketTypes.PUBLISH)
        props.ResponseTopic = self.inbox
        props.CorrelationData = correlation
        props.MessageExpiryInterval = max(1, math.ceil(expiry_s or timeout_s))
        future: asyncio.Future[RelayAnswer] = asyncio.get_running_loop().create_future()
        self._pending[correlation] = future
        try:
            remaining = deadline - asyncio.get_running_loop().time()
            try:
                await client.publish(inbox_topic(self.federation_id, mailbox),
                                     encode_request(path, headers, body, sealed=sealed), qos=1,
                                     properties=props, timeout=max(remaining, 0.1))
            except (aiomqtt.MqttError, TimeoutError) as err:
                raise RelayError(f"the relay did not take the message: {_reason(err)}") from None
            remaining = deadline - asyncio.get_running_loop().time()
            try:
                return await asyncio.wait_for(future, max(remaining, 0.01))
            except TimeoutError:
                return None
        finally:
            self._pending.pop(correlation, None)


class _QuietQueueWarnings(logging.Filter):
    """aiomqtt warns whenever more than ten publishes await their acknowledgement; a round
    close to a whole committee does that by design."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "pending publish calls" not in record.getMessage()


_MQTT_LOG = logging.getLogger("mpc_backend.relay.mqtt")
_MQTT_LOG.addFilter(_QuietQueueWarnings())


def _refused_login(err: BaseException) -> bool:
    if isinstance(err, aiomqtt.MqttCodeError) and err.rc is not None:
        return int(getattr(err.rc, "value", err.rc)) in (0x86, 0x87, 4, 5)
    return False


def _reason(err: BaseException) -> str:
    text = str(err) or type(err).__name__
    if _refused_login(err):
        return f"the relay refused this hub's broker credentials ({text})"
    return text
