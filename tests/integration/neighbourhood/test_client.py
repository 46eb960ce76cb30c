"""The client's handling of answers a real backend should never give (the real one is
exercised in test_real_backend.py): each becomes a clear exception, never a crash."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Awaitable, Callable

import aiohttp
import pytest
from aiohttp import web

from custom_components.hearth.neighbourhood.client import BackendClient, normalize_url
from custom_components.hearth.neighbourhood.errors import (
    BackendRejected,
    NotInFederation,
    UnexpectedAnswer,
)

from .fake_backend import TEMP_TASK, FakeBackend

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@pytest.fixture
async def serve(socket_enabled: None) -> AsyncIterator[Callable[..., Awaitable[BackendClient]]]:
    """Serve one handler at /api/v1/{path}; returns a client for it."""
    runners: list[web.AppRunner] = []
    sessions: list[aiohttp.ClientSession] = []

    async def start(path: str, handler: Handler, method: str = "GET") -> BackendClient:
        app = web.Application()
        app.router.add_route(method, f"/api/v1/{path}", handler)
        runner = web.AppRunner(app)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        runners.append(runner)
        session = aiohttp.ClientSession()
        sessions.append(session)
        return BackendClient(session, f"http://127.0.0.1:{runner.addresses[0][1]}", "t")

    yield start
    for session in sessions:
        await session.close()
    for runner in runners:
        await runner.cleanup()


def _reply(body: str, status: int = 200, content_type: str = "application/json") -> Handler:
    async def handler(request: web.Request) -> web.Response:
        return web.Response(text=body, status=status, content_type=content_type)

    return handler


@pytest.mark.parametrize(
    "body",
    ["<html>router login</html>", "[1, 2]", '{"status": "starting"}'],
)
async def test_health_of_something_else(serve: Callable, body: str) -> None:
    client = await serve("health", _reply(body, content_type="text/html"))
    with pytest.raises(UnexpectedAnswer):
        await client.health()


async def test_status_missing_fields(serve: Callable) -> None:
    client = await serve("status", _reply('{"identity": {"node_id": "x"}, "load": {}}'))
    with pytest.raises(UnexpectedAnswer, match="name"):
        await client.status()


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"round_end": "yesterday"}, "round_end"),
        ({"statistics": {"count": 2, "histogram": [{"low": 0}]}}, "malformed result"),
        ({"seq": "7"}, "seq"),
        ({"statistics": {"count": 2, "mean": "warm"}}, "mean"),
    ],
)
async def test_malformed_results(serve: Callable, change: dict, match: str) -> None:
    fake = FakeBackend()
    good = fake.publish("indoor_temperature", 3, [20.0, 21.0, 20.5])
    client = await serve("results", _reply(json.dumps({"results": [good | change]})))
    with pytest.raises(UnexpectedAnswer, match=match):
        await client.results()
    client = await serve("results", _reply('{"items": []}'))
    with pytest.raises(UnexpectedAnswer, match="results list"):
        await client.results()


async def test_refusals_keep_the_backends_reason(serve: Callable) -> None:
    no_federation = json.dumps({"error": {"code": "no_federation", "message": "join first"}})
    client = await serve("readings", _reply(no_federation, 404), method="POST")
    with pytest.raises(NotInFederation, match="join first"):
        await client.contribute("t", 1.0)
    client = await serve("readings", _reply("Internal Server Error", 500, "text/plain"),
                         method="POST")
    with pytest.raises(BackendRejected) as refused:
        await client.contribute("t", 1.0)
    assert (refused.value.status, refused.value.code) == (500, "http_error")


async def test_stream_skips_what_it_does_not_know(serve: Callable) -> None:
    """Comments, other events and multi-line data are SSE; a broken payload is an error."""
    fake = FakeBackend()
    result = fake.publish("indoor_temperature", 3, [20.0, 21.0, 20.5])
    text = json.dumps(result, indent=1)  # several data: lines, joined by newlines

    async def stream(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        lines = "".join(f"data: {line}\n" for line in text.splitlines())
        await response.write(
            (": keepalive\n\nevent: ping\ndata: {}\n\nretry: 5000\n\n"
             f"id: 1\nevent: result\n{lines}\n"
             "event: result\ndata: {not json\n\n").encode()
        )
        return response

    client = await serve("results/stream", stream)
    seen = []
    with pytest.raises(UnexpectedAnswer, match="malformed JSON"):
        async for item in client.stream_results(0):
            seen.append(item)
    assert [(r.task, r.round, r.contributors) for r in seen] == [("indoor_temperature", 3, 3)]
    assert seen[0].statistics is not None
    assert seen[0].statistics.mean == pytest.approx(20.5)


IDENTITY = {"node_id": "n" * 32, "name": "house0", "version": "0.1.0"}


@pytest.mark.parametrize(
    ("body", "match"),
    [
        ({"identity": IDENTITY, "load": {"committee_seats_now": "many"}}, "malformed status"),
        ({"identity": IDENTITY, "load": {}, "tasks": 5}, "malformed status"),
        ({"identity": IDENTITY, "load": {}, "tasks": ["task"]}, "malformed status"),
    ],
)
async def test_status_of_the_wrong_shape(serve: Callable, body: dict, match: str) -> None:
    client = await serve("status", _reply(json.dumps(body)))
    with pytest.raises(UnexpectedAnswer, match=match):
        await client.status()


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"resolution": 0}, "(got 0.0, 60, -20.0..40.0)"),
        ({"resolution": -0.1}, "(got -0.1, 60, -20.0..40.0)"),
        ({"period_s": -60}, "(got 0.1, -60, -20.0..40.0)"),
        ({"low": 40.0}, "(got 0.1, 60, 40.0..40.0)"),
        ({"low": 50.0}, "(got 0.1, 60, 50.0..40.0)"),
        ({"buckets": ["warm"]}, "malformed task"),
        ({"buckets": 5}, "malformed task"),
    ],
)
async def test_status_with_an_unusable_task(
    serve: Callable, backend: FakeBackend, change: dict, match: str
) -> None:
    """A task Home Assistant could not compute rounds or clip values for is refused."""
    backend.tasks = [TEMP_TASK | change]
    async with aiohttp.ClientSession() as session:
        client = BackendClient(session, backend.url, backend.token)
        with pytest.raises(UnexpectedAnswer, match=re.escape(match)):
            await client.status()
    backend.tasks = [dict(TEMP_TASK)]  # the same node with a sound task is accepted
    async with aiohttp.ClientSession() as session:
        status = await BackendClient(session, backend.url, backend.token).status()
    assert [t.spec.resolution for t in status.tasks] == [TEMP_TASK["resolution"]]


@pytest.mark.parametrize(
    ("line", "match"),
    [
        (b"data: caf\xe9\n", "not UTF-8"),  # Latin-1, not UTF-8
        (b"data: " + b"x" * (1 << 20) + b"\n", "overlong line"),  # past aiohttp's line limit
    ],
    ids=["latin-1", "overlong"],
)
async def test_stream_of_bytes_no_backend_sends(serve: Callable, line: bytes, match: str) -> None:
    async def stream(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        await response.write(b": keepalive\n\n" + line + b"\n")
        return response

    client = await serve("results/stream", stream)
    with pytest.raises(UnexpectedAnswer, match=match):
        async for _ in client.stream_results(0):
            pass


def test_normalize_url() -> None:
    assert normalize_url(" http://127.0.0.1:8731/ ") == "http://127.0.0.1:8731"
    assert normalize_url("https://hub.local:8731/api/v1") == "https://hub.local:8731"
    for bad in ("127.0.0.1:8731", "ftp://hub", "http://"):
        with pytest.raises(ValueError, match="not an http"):
            normalize_url(bad)
