"""HTTP client for the peer API: per-request timeouts, bounded retries with backoff.

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
import hashlib
import json
import logging
import time
from collections.abc import Callable
from typing import Any

import aiohttp

from mpc_backend.crypto import NodeKeys, b64url_encode
from mpc_backend.crypto.envelope import sign_request

from .config import Timing

log = logging.getLogger("mpc_backend.peers")

SENDER_HEADER = "Hearth-Sender"
TIME_HEADER = "Hearth-Time"
DIGEST_HEADER = "Hearth-Digest"
SIGNATURE_HEADER = "Hearth-Signature"


def request_headers(keys: NodeKeys, path: str, body: bytes, now: float) -> dict[str, str]:
    """The ``Hearth-*`` headers authenticating a POST of ``body`` to ``path``."""
    ts = int(now)
    digest = hashlib.sha256(body).digest()
    return {
        SENDER_HEADER: keys.node_id,
        TIME_HEADER: str(ts),
        DIGEST_HEADER: b64url_encode(digest),
        SIGNATURE_HEADER: b64url_encode(sign_request(keys, path, ts, digest)),
    }


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
                headers.update(request_headers(self.keys, path, body, self.clock()))
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
