"""The peer API authenticates a request before it reads, hashes or parses its body.

Uploads here stall after their first chunk until the answer has arrived: a node
that read the body before refusing would never answer, and the test times out.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import pytest

from mpc_backend.api import errors, peer
from mpc_backend.crypto import NodeKeys, b64url_encode, sign_envelope
from mpc_backend.node.errors import BadRequest
from mpc_backend.node.peers import (
    DIGEST_HEADER,
    SIGNATURE_HEADER,
    PeerClient,
    PeerRejected,
    request_headers,
)
from tests.backend.conftest import TIMING, FakeClock, LiveNode

MiB = 1024 * 1024


class Calls:
    """Counts calls of the peer API's body reader and parser (wrapping the real ones)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.read = self.parsed = 0
        real_read, real_decode = peer.read_body, peer.decode_json

        async def read_body(*args: Any, **kwargs: Any) -> bytes:
            self.read += 1
            return await real_read(*args, **kwargs)

        async def decode_json(raw: bytes) -> Any:
            self.parsed += 1
            return await real_decode(raw)

        monkeypatch.setattr(peer, "read_body", read_body)
        monkeypatch.setattr(peer, "decode_json", decode_json)


async def stalled_post(
    http: aiohttp.ClientSession, url: str, headers: dict[str, str], size: int = 16 * MiB
) -> tuple[int, dict[str, Any]]:
    """Declare ``size`` bytes, send the first 64 KiB and wait for the answer before the rest."""
    answered = asyncio.Event()

    async def body() -> AsyncIterator[bytes]:
        yield b"[" + b"0," * 32 * 1024
        await answered.wait()  # the rest would follow here; the node must not wait for it

    async with asyncio.timeout(5):
        async with http.post(url, data=body(),
                             headers={**headers, "Content-Length": str(size)}) as resp:
            answered.set()
            return resp.status, await resp.json()


def member_headers(live: LiveNode, clock: Callable[[], float], path: str,
                   body: bytes) -> dict[str, str]:
    return request_headers(live.node.ctx.keys, f"/peer/v1{path}", body, clock())


@pytest.mark.parametrize("path", ["/results", "/roster"])
@pytest.mark.parametrize("who", ["unsigned", "stranger", "forged", "stale"])
async def test_unauthenticated_big_posts_are_refused_unread(
    trio: list[LiveNode], clock: FakeClock, http: aiohttp.ClientSession,
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, path: str, who: str,
) -> None:
    caplog.set_level(logging.WARNING)
    target, member = trio[1], trio[0]
    # An unknown sender makes a member catch up on admissions from the founder, at most
    # once per interval; that fetch (a body the founder reads) is spent here, not counted.
    await target.node.ctx.resolve(NodeKeys.generate().node_id)
    calls = Calls(monkeypatch)
    body = b"0" * (16 * MiB)  # what the headers claim; never sent in full
    headers = {
        "unsigned": {},
        "stranger": request_headers(NodeKeys.generate(), f"/peer/v1{path}", body, clock()),
        # A member's id with another body's signature: the sender is known, the proof wrong.
        "forged": {**member_headers(member, clock, path, body),
                   SIGNATURE_HEADER: member_headers(member, clock, path, b"x")[SIGNATURE_HEADER]},
        "stale": member_headers(member, lambda: clock() - 3600, path, body),
    }[who]
    status, answer = await stalled_post(http, f"{target.url}/peer/v1{path}", headers)
    assert status == 403, answer
    assert answer["error"]["code"] == "auth_failed"
    assert (calls.read, calls.parsed) == (0, 0)
    assert f"refused a request to /peer/v1{path} from " in caplog.text
    assert "00000" not in caplog.text  # nothing of the body in the log


async def test_a_members_oversize_body_is_refused_unread(
    trio: list[LiveNode], clock: FakeClock, http: aiohttp.ClientSession,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls = Calls(monkeypatch)
    body = b"0" * (peer.ROUND_BODY_LIMIT + 1)
    headers = member_headers(trio[0], clock, "/results", body)
    status, answer = await stalled_post(http, f"{trio[1].url}/peer/v1/results", headers,
                                        size=len(body))
    assert status == 413 and answer["error"]["code"] == "payload_too_large"
    assert str(peer.ROUND_BODY_LIMIT) in answer["error"]["message"]
    assert calls.parsed == 0


async def test_a_body_other_than_the_signed_one_is_refused_unparsed(
    trio: list[LiveNode], clock: FakeClock, http: aiohttp.ClientSession,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls = Calls(monkeypatch)
    signed, sent = b'{"a": 1}', b'{"a": 2}'
    headers = member_headers(trio[0], clock, "/results", signed)
    async with http.post(f"{trio[1].url}/peer/v1/results", data=sent, headers=headers) as resp:
        assert resp.status == 403
        assert "does not match its signed digest" in (await resp.json())["error"]["message"]
    # The digest header cannot simply be swapped for the sent body's either.
    headers[DIGEST_HEADER] = b64url_encode(hashlib.sha256(sent).digest())
    async with http.post(f"{trio[1].url}/peer/v1/results", data=sent, headers=headers) as resp:
        assert resp.status == 403
    assert calls.parsed == 0


async def test_only_a_client_holding_a_members_keys_is_served(
    trio: list[LiveNode], clock: FakeClock
) -> None:
    """The same call through a PeerClient without keys is refused; the node's own works."""
    founder, member = trio[0], trio[1]
    ctx = member.node.ctx

    def fetch() -> dict[str, Any]:
        return sign_envelope(ctx.keys, "roster-fetch", ctx.federation_id, {}, now=clock())

    keyless = PeerClient(TIMING, clock=clock)
    await keyless.start()
    try:
        with pytest.raises(PeerRejected) as err:
            await keyless.post(founder.url, "/peer/v1/roster/fetch", fetch)
        assert err.value.status == 403 and "Hearth-Sender" in err.value.peer_message
    finally:
        await keyless.close()
    assert ctx.peers.keys is ctx.keys  # wired by NodeContext
    answer = await ctx.peers.post(ctx.roster.founder_member, "/peer/v1/roster/fetch", fetch)
    assert answer["roster"]["roster"]["version"] == founder.node.ctx.roster.version


async def test_health_answers_while_big_bodies_are_parsed(
    trio: list[LiveNode], clock: FakeClock, http: aiohttp.ClientSession,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Two members' 16 MiB bodies and two unsigned ones in flight; /health keeps answering.

    The parser is slowed down by a blocking sleep: on the event loop it would hold
    /health for 1.5 s, in a worker thread not at all.
    """
    parsed: list[int] = []
    real = errors._loads_yielding

    def slow_loads(raw: bytes) -> Any:
        time.sleep(1.5)
        parsed.append(len(raw))
        return real(raw)

    monkeypatch.setattr(errors, "_loads_yielding", slow_loads)
    target = trio[1]
    big = json.dumps({"type": "roster", "padding": "x" * (16 * MiB - 100)}).encode()
    url = f"{target.url}/peer/v1/roster"

    async def upload(headers: dict[str, str]) -> int:
        async with http.post(url, data=big, headers=headers) as resp:
            return resp.status

    uploads = [asyncio.create_task(upload(member_headers(trio[i], clock, "/roster", big)))
               for i in (0, 2)]
    uploads += [asyncio.create_task(upload({})) for _ in range(2)]
    worst = 0.0
    async with aiohttp.ClientSession() as health:  # a connection of its own
        while not all(task.done() for task in uploads):
            started = time.perf_counter()
            async with asyncio.timeout(5), health.get(f"{target.url}/peer/v1/health") as resp:
                assert resp.status == 200
            worst = max(worst, time.perf_counter() - started)
            await asyncio.sleep(0.05)
    assert [task.result() for task in uploads] == [403, 403, 403, 403]  # not an envelope
    assert len(parsed) == 2, "both members' bodies were parsed"
    assert worst < 1.0, f"/health took {worst:.2f} s while bodies were parsed"


async def test_large_bodies_parse_like_json_loads_without_stalling_the_loop() -> None:
    samples = [b'{"a": [1, 2.5, -3e4, true, null, "\\u00e9\\ud83d\\ude00"], "b": NaN}',
               '{"é": "ü"}'.encode("utf-16"), b"[" + b"[" * 50 + b"]" * 51]
    for raw in samples:
        assert json.dumps(errors._loads_yielding(raw)) == json.dumps(json.loads(raw))
    for bad in (b'{"a": }', b"\xff\xfe\xfd", b"[" * 100_000):
        with pytest.raises(BadRequest):
            errors._decode(bad, errors._loads_yielding)
    # A million tokens: the C parser holds the loop throughout (the control); the yielding
    # parser lets it tick on. Judged by the longest stretch without a tick, as a share of
    # the parse: how many ticks fit depends on how loaded the machine's cores are.
    doc = b"[" + b"0," * 1_000_000 + b"0]"
    value, parse_s, longest = await _longest_stall(errors.decode_json(doc))
    assert len(value) == 1_000_001
    assert longest < parse_s / 2, f"the loop stood still {longest:.3f} s of a {parse_s:.3f} s parse"
    held, c_parse_s, c_longest = await _longest_stall(asyncio.to_thread(json.loads, doc))
    assert held == value
    assert c_longest >= c_parse_s / 2, "the control did not hold the loop: the check is blind"


async def _longest_stall(parse: Awaitable[Any]) -> tuple[Any, float, float]:
    """(what ``parse`` gave, how long it took, the longest time the loop went without a tick
    of a 2 ms ticker meanwhile)."""
    stamps: list[float] = []

    async def ticker() -> None:
        while True:
            await asyncio.sleep(0.002)
            stamps.append(time.perf_counter())

    task = asyncio.create_task(ticker())
    try:
        await asyncio.sleep(0.01)
        started = time.perf_counter()
        value = await parse
        ended = time.perf_counter()
    finally:
        task.cancel()
    marks = [started, *(s for s in stamps if started < s < ended), ended]
    return value, ended - started, max(b - a for a, b in itertools.pairwise(marks))


async def test_a_refused_upload_is_cut_off_not_drained(trio: list[LiveNode]) -> None:
    """After refusing an unread body the node closes the connection at once, instead of
    reading and discarding the rest of an attacker's 16 MiB for seconds."""
    target = trio[1]
    reader, writer = await asyncio.open_connection("127.0.0.1", target.port)
    writer.write(b"POST /peer/v1/results HTTP/1.1\r\nHost: x\r\nContent-Type: application/json"
                 b"\r\nContent-Length: %d\r\n\r\n" % (16 * MiB) + b"0" * 65536)
    await writer.drain()
    async with asyncio.timeout(2):
        answer = await reader.read()  # everything up to the node's close
    writer.close()
    assert answer.startswith(b"HTTP/1.1 403"), answer[:80]
    assert b"auth_failed" in answer


@pytest.mark.parametrize("who", ["unsigned", "stale"])
async def test_a_made_up_sender_costs_no_lookup_before_its_headers_pass(
    trio: list[LiveNode], clock: FakeClock, http: aiohttp.ClientSession,
    monkeypatch: pytest.MonkeyPatch, who: str,
) -> None:
    """A member that keeps the admission log would ask the founder about a sender it does
    not know: only for requests whose four headers are there and fresh, and never storage
    (it holds every admission it stored)."""
    target = trio[1].node
    queries = 0
    real_get = target.ctx.storage.get_admission

    async def get_admission(node_id: str) -> Any:
        nonlocal queries
        queries += 1
        return await real_get(node_id)

    monkeypatch.setattr(target.ctx.storage, "get_admission", get_admission)
    path = "/peer/v1/shares"
    for _ in range(20):
        stranger = NodeKeys.generate()
        headers = {
            "unsigned": {"Hearth-Sender": stranger.node_id},
            "stale": request_headers(stranger, path, b"{}", clock() - 3600),
        }[who]
        async with http.post(f"{trio[1].url}{path}", data=b"{}", headers=headers) as resp:
            assert resp.status == 403
    assert (target.ctx.directory.catch_ups, queries) == (0, 0)
    # Signed and fresh, an unknown sender makes it catch up (once per interval), still
    # without a storage query.
    headers = request_headers(NodeKeys.generate(), path, b"{}", clock())
    async with http.post(f"{trio[1].url}{path}", data=b"{}", headers=headers) as resp:
        assert resp.status == 403
    assert (target.ctx.directory.catch_ups, queries) == (1, 0)
