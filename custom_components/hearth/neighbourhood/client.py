"""Async client for the household backend's local API (``/api/v1``, bearer token).

It runs over Home Assistant's shared aiohttp session. Every failure becomes one
of the exceptions in ``errors``, so callers decide by what the user must do:
start the backend (CannotConnect), fix the token (InvalidAuth), create or join
a federation (NotInFederation), or read the backend's reason (BackendRejected).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from aiohttp.http_exceptions import LineTooLong

from .const import REQUEST_TIMEOUT_S
from .errors import (
    BackendError,
    BackendRejected,
    CannotConnect,
    InvalidAuth,
    NotInFederation,
    UnexpectedAnswer,
)
from .models import NodeStatus, Receipt, TaskResult, TaskSpec
from .roster import Invite, Member

API_PREFIX = "/api/v1"
# The backend sends a keepalive comment every 15 s; silence for this long means it is gone.
STREAM_IDLE_TIMEOUT_S = 45.0
# Creating or joining may wait for the relay broker (15 s on the node) and the founder.
SETUP_TIMEOUT_S = 60.0


def normalize_url(url: str) -> str:
    """``http(s)://host[:port]`` without a trailing slash; ValueError if it is not one."""
    url = url.strip().rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{url!r} is not an http(s) URL")
    if parts.path.endswith(API_PREFIX):
        url = url[: -len(API_PREFIX)]
    return url


class BackendClient:
    """One household backend, reached at ``url`` with ``token``."""

    def __init__(self, session: aiohttp.ClientSession, url: str, token: str) -> None:
        self._session = session
        self.url = normalize_url(url)
        self._token = token

    @property
    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._token}"}

    async def _request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str | int] | None = None,
        body: Mapping[str, Any] | None = None,
        auth: bool = True,
        timeout_s: float = REQUEST_TIMEOUT_S,
    ) -> dict[str, Any]:
        try:
            async with self._session.request(
                method,
                f"{self.url}{API_PREFIX}{path}",
                params=params,
                json=body,
                headers=self._headers if auth else None,
                timeout=aiohttp.ClientTimeout(total=timeout_s),
            ) as resp:
                if resp.status >= 400:
                    await _raise_for_error(resp)
                data = await resp.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError) as err:
            raise CannotConnect(
                f"cannot reach the backend at {self.url}: {type(err).__name__} {err}".rstrip()
            ) from err
        except ValueError as err:
            raise UnexpectedAnswer(f"{self.url} answered with something other than JSON") from err
        if not isinstance(data, dict):
            raise UnexpectedAnswer(f"{self.url} answered with JSON that is not an object")
        return data

    async def health(self) -> dict[str, Any]:
        """The unauthenticated liveness check; proves a Hearth backend answers at the URL."""
        try:
            data = await self._request("GET", "/health", auth=False)
        except BackendRejected as err:
            raise UnexpectedAnswer(f"no Hearth backend at {self.url} ({err})") from err
        if data.get("status") != "ok":
            raise UnexpectedAnswer(f"{self.url}{API_PREFIX}/health did not answer status ok")
        return data

    async def status(self) -> NodeStatus:
        """Identity, federation, members online, tasks and load of this node."""
        return NodeStatus.from_json(await self._request("GET", "/status"))

    async def validate(self) -> NodeStatus:
        """Check URL, token and membership in one go, as the config flow needs."""
        await self.health()
        status = await self.status()
        if not status.in_federation:
            raise NotInFederation(f"the backend at {self.url} is not in a federation yet")
        return status

    async def members(self, *, households: bool = False) -> list[Member]:
        """The federation's members as this node sees them (with online state): the hubs
        that compute and this one; with ``households``, every household that only
        contributes that the node knows (all of them on the founder and on a hub that
        computes, so a long list in a city: only when asked)."""
        data = await self._request("GET", "/status", params={"households": int(households)})
        items = data.get("members")
        if not isinstance(items, list):
            raise UnexpectedAnswer("backend /status answer has no members list")
        return [Member.from_json(item, data.get("identity")) for item in items]

    async def founder_name(self) -> str | None:
        """The founder's name (who issues invites and publishes tasks); None if unknown."""
        try:
            members = await self.members()
        except BackendError:
            return None
        return next((m.name for m in members if m.founder), None)

    async def create_invite(self, expires_s: int) -> Invite:
        """A one-time join token (founder only: others get BackendRejected not_founder)."""
        # A relay neighbourhood's node first makes the newcomer's broker login.
        data = await self._request(
            "POST", "/invites", body={"expires_s": expires_s}, timeout_s=SETUP_TIMEOUT_S
        )
        return Invite.from_json(data)

    async def propose_task(self, spec: Mapping[str, Any]) -> TaskSpec:
        """Publish a task (a non-founder's node forwards it to the founder); its final spec."""
        # A non-founder's node retries the founder (peer timeout x attempts) before it answers.
        data = await self._request("POST", "/tasks", body=spec, timeout_s=SETUP_TIMEOUT_S)
        task = data.get("task")
        return TaskSpec.from_json(task.get("spec") if isinstance(task, dict) else None)

    async def create_federation(
        self, name: str, relay: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        """Found a federation (``relay``: the broker block ``POST /federation`` takes)."""
        body: dict[str, Any] = {"name": name}
        if relay is not None:
            body["relay"] = relay
        return await self._request("POST", "/federation", body=body, timeout_s=SETUP_TIMEOUT_S)

    async def join(self, token: str) -> dict[str, Any]:
        """Join the federation an invite token names (the node asks its founder)."""
        return await self._request(
            "POST", "/join", body={"token": token}, timeout_s=SETUP_TIMEOUT_S
        )

    async def results(
        self, task: str | None = None, *, since: int = 0, limit: int = 20
    ) -> list[TaskResult]:
        """Round outcomes, newest first."""
        params: dict[str, str | int] = {"since": since, "limit": limit}
        if task is not None:
            params["task"] = task
        data = await self._request("GET", "/results", params=params)
        items = data.get("results")
        if not isinstance(items, list):
            raise UnexpectedAnswer("backend /results answer has no results list")
        return [TaskResult.from_json(item) for item in items]

    async def contribute(self, task: str, value: float) -> Receipt:
        """This household's reading for the task's current round."""
        data = await self._request("POST", "/readings", body={"task": task, "value": value})
        return Receipt.from_json(data)

    async def stream_results(
        self, since: int, on_open: Callable[[], None] | None = None
    ) -> AsyncIterator[TaskResult]:
        """Server-sent results with ``seq > since`` (backlog first), until the stream ends.

        ``on_open`` runs once the backend has accepted the stream, before any event.
        """
        try:
            async with self._session.get(
                f"{self.url}{API_PREFIX}/results/stream",
                params={"since": since},
                headers={**self._headers, "Accept": "text/event-stream"},
                timeout=aiohttp.ClientTimeout(
                    total=None, connect=REQUEST_TIMEOUT_S, sock_read=STREAM_IDLE_TIMEOUT_S
                ),
            ) as resp:
                if resp.status >= 400:
                    await _raise_for_error(resp)
                if on_open is not None:
                    on_open()
                async for event, data in _server_sent_events(resp.content):
                    if event != "result":
                        continue
                    try:
                        payload = json.loads(data)
                    except ValueError as err:
                        raise UnexpectedAnswer("the result stream sent malformed JSON") from err
                    yield TaskResult.from_json(payload)
        except (aiohttp.ClientError, TimeoutError) as err:
            raise CannotConnect(
                f"result stream from {self.url} broke: {type(err).__name__} {err}".rstrip()
            ) from err


async def _server_sent_events(content: aiohttp.StreamReader) -> AsyncIterator[tuple[str, str]]:
    """(event, data) pairs per the SSE format: fields until a blank line; ':' lines are comments."""
    event, data = "message", []
    async for text in _stream_lines(content):
        line = text.rstrip("\r\n")
        if not line:
            if data:
                yield event, "\n".join(data)
            event, data = "message", []
        elif line.startswith(":"):
            continue
        else:
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if name == "event":
                event = value
            elif name == "data":
                data.append(value)


async def _stream_lines(content: aiohttp.StreamReader) -> AsyncIterator[str]:
    """The stream's lines as text; bytes no Hearth backend sends are UnexpectedAnswer."""
    lines = aiter(content)
    while True:
        try:
            line = (await anext(lines)).decode("utf-8")
        except StopAsyncIteration:
            return
        except UnicodeDecodeError as err:
            raise UnexpectedAnswer("the result stream sent text that is not UTF-8") from err
        except (ValueError, LineTooLong) as err:
            # aiohttp's readline: "Chunk too big" (older) or LineTooLong (newer).
            raise UnexpectedAnswer(f"the result stream sent an overlong line: {err}") from err
        yield line


async def _raise_for_error(resp: aiohttp.ClientResponse) -> None:
    code, message = "http_error", resp.reason or f"HTTP {resp.status}"
    field: str | None = None
    try:
        error = (await resp.json(content_type=None))["error"]
        code, message = str(error["code"]), str(error["message"])
        field = error.get("field") if isinstance(error.get("field"), str) else None
    except (ValueError, KeyError, TypeError, AttributeError, aiohttp.ClientError):
        pass
    if resp.status == 401:
        raise InvalidAuth(message)
    if code == "no_federation":
        raise NotInFederation(message)
    raise BackendRejected(resp.status, code, message, field)
