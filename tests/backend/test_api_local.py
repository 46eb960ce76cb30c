"""The local API (Home Assistant's side) over real HTTP: auth, errors, readings, results."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from mpc_backend.api.local import make_local_app
from mpc_backend.api.openapi import openapi_document
from mpc_backend.crypto import b64url_decode, b64url_encode
from mpc_backend.crypto.tokens import INVITE_PREFIX
from tests.backend.conftest import PERIOD, FakeClock, LiveNode, start_node, stop_node


async def call(
    http: aiohttp.ClientSession, live: LiveNode, method: str, path: str, body: Any = None, *,
    raw: bytes | None = None, token: str | None = "default",
) -> tuple[int, dict[str, Any]]:
    headers = {}
    if token is not None:
        headers["Authorization"] = f"Bearer {live.token if token == 'default' else token}"
    kwargs: dict[str, Any] = {"data": raw} if raw is not None else (
        {"json": body} if body is not None else {})
    async with http.request(method, f"{live.url}/api/v1{path}", headers=headers,
                            **kwargs) as resp:
        return resp.status, await resp.json()


async def test_auth(trio: list[LiveNode], http: aiohttp.ClientSession) -> None:
    live = trio[0]
    assert (await call(http, live, "GET", "/health", token=None))[0] == 200
    assert (await call(http, live, "GET", "/openapi.json", token=None))[0] == 200
    status, body = await call(http, live, "GET", "/status", token=None)
    assert status == 401 and body["error"]["code"] == "unauthorized"
    status, _ = await call(http, live, "GET", "/status", token=live.token[:-1] + "x")
    assert status == 401
    status, _ = await call(http, live, "POST", "/readings", {"task": "temp", "value": 1},
                           token=trio[1].token)  # another node's token
    assert status == 401
    status, body = await call(http, live, "GET", "/status")
    assert status == 200 and body["federation"]["members"] == 3
    status, body = await call(http, live, "GET", "/status?households=1")
    assert status == 200 and len(body["members"]) == 3  # no households in this federation
    status, body = await call(http, live, "GET", "/status?households=yes")
    assert status == 400 and body["error"]["field"] == "households"


@pytest.mark.parametrize(
    ("body", "raw", "status", "field", "code"),
    [
        (None, b"{not json", 400, "body", "bad_request"),
        (None, b"[1, 2]", 400, "body", "bad_request"),
        ({"value": 20.0}, None, 400, "task", "bad_request"),
        ({"task": "temp"}, None, 400, "value", "bad_request"),
        ({"task": "temp", "value": "warm"}, None, 400, "value", "bad_request"),
        ({"task": "humidity", "value": 20.0}, None, 404, "task", "unknown_task"),
        ({"task": "temp", "value": 41.0}, None, 422, "value", "out_of_range"),
        (None, json.dumps({"task": "temp", "value": 1, "pad": "x" * 70_000}).encode(), 413,
         None, "payload_too_large"),
        (None, json.dumps({"task": "temp", "value": 10**400}).encode(), 400, "value",
         "bad_request"),
        (None, b"[" * 50_000, 400, "body", "bad_request"),
    ],
)
async def test_bad_readings(
    trio: list[LiveNode], http: aiohttp.ClientSession, body: Any, raw: bytes | None,
    status: int, field: str | None, code: str,
) -> None:
    got, answer = await call(http, trio[0], "POST", "/readings", body, raw=raw)
    assert got == status
    assert answer["error"]["code"] == code
    assert answer["error"].get("field") == field
    if code == "out_of_range":
        assert "[-20.0, 40.0]" in answer["error"]["message"]


async def test_reading_outside_the_round_window(
    trio: list[LiveNode], http: aiohttp.ClientSession, clock: FakeClock
) -> None:
    clock.advance(-PERIOD)  # before the task's first round
    status, body = await call(http, trio[0], "POST", "/readings", {"task": "temp", "value": 20})
    assert status == 422 and body["error"]["code"] == "outside_round_window"


async def test_readings_are_once_per_round_and_idempotent(
    trio: list[LiveNode], http: aiohttp.ClientSession
) -> None:
    status, first = await call(http, trio[0], "POST", "/readings", {"task": "temp", "value": 20.5})
    assert status == 200 and first["acknowledged_by"] == 3 and first["duplicate"] is False
    status, again = await call(http, trio[0], "POST", "/readings", {"task": "temp", "value": 20.5})
    assert status == 200 and again["duplicate"] is True and again["round"] == first["round"]
    status, body = await call(http, trio[0], "POST", "/readings", {"task": "temp", "value": 21.0})
    assert status == 409 and body["error"]["code"] == "duplicate_contribution"


async def test_results_list_and_stream(
    trio: list[LiveNode], http: aiohttp.ClientSession, clock: FakeClock
) -> None:
    live = trio[2]
    headers = {"Authorization": f"Bearer {live.token}"}
    async with http.get(f"{live.url}/api/v1/results/stream?task=temp", headers=headers) as stream:
        assert stream.headers["Content-Type"].startswith("text/event-stream")
        for node, value in zip(trio, [19.5, 20.5, 21.5], strict=True):
            await node.node.household.contribute("temp", value)
        clock.advance(PERIOD + 2)
        event: dict[str, str] = {}
        async with asyncio.timeout(15):
            while "data" not in event:
                line = (await stream.content.readline()).decode().rstrip("\n")
                if ":" in line and not line.startswith(":"):
                    key, _, value = line.partition(": ")
                    event[key] = value
    result = json.loads(event["data"])
    assert event["event"] == "result" and result["status"] == "released"
    assert result["statistics"]["mean"] == pytest.approx(20.5)
    status, listed = await call(http, live, "GET", "/results?task=temp")
    assert status == 200 and listed["results"][0]["signed_by"] == result["signed_by"]
    assert len(result["signed_by"]) >= 2 and listed["results"][0]["seq"] == result["seq"]
    status, body = await call(http, live, "GET", f"/results?task=temp&since={result['seq']}")
    assert status == 200 and body["results"] == []
    status, body = await call(http, live, "GET", "/results?task=nope")
    assert status == 404 and body["error"]["field"] == "task"
    status, body = await call(http, live, "GET", "/results?since=-1")
    assert status == 400 and body["error"]["field"] == "since"


async def test_tasks_and_federation_errors(
    trio: list[LiveNode], http: aiohttp.ClientSession
) -> None:
    member = trio[1]
    status, body = await call(http, member, "GET", "/tasks")
    assert status == 200 and [t["task"] for t in body["tasks"]] == ["temp"]
    # Proposed without k and t: three compute members give 3 seats, threshold 1, in words.
    assert (body["tasks"][0]["spec"]["k"], body["tasks"][0]["spec"]["t"]) == (3, 1)
    assert body["tasks"][0]["privacy"] == (
        "each reading is split among 3 committee hubs: 2 of them colluding could see it, 1 or "
        "fewer learn nothing; 1 may be offline at the close")
    bad = {"metric": "co2", "low": 400, "high": 300, "resolution": 1, "stats": ["mean"],
           "period_s": 60, "min_contributors": 3}
    status, body = await call(http, member, "POST", "/tasks", bad)
    assert status == 400 and body["error"]["field"] == "low"
    status, body = await call(http, member, "POST", "/tasks", {**bad, "low": 10**400})
    assert status == 400 and body["error"]["field"] == "low"
    assert "too large" in body["error"]["message"]
    dup = {"task_id": "temp", "metric": "other", "low": 0, "high": 10, "resolution": 1,
           "stats": ["mean"], "period_s": 60, "min_contributors": 3}
    status, body = await call(http, member, "POST", "/tasks", dup)
    assert status == 409 and body["error"]["code"] == "task_exists"
    status, body = await call(http, member, "POST", "/federation", {"name": "Again"})
    assert status == 409 and body["error"]["code"] == "already_member"
    status, body = await call(http, member, "POST", "/invites", {"expires_s": 60})
    assert status == 403 and body["error"]["code"] == "not_founder"
    status, body = await call(http, trio[0], "POST", "/invites", {"expires_s": -5})
    assert status == 400 and body["error"]["field"] == "expires_s"
    status, body = await call(http, member, "POST", "/join", {"token": "hearth-invite-v1.xx"})
    assert status == 409  # already in a federation


def _pointed_at(token: str, url: str) -> str:
    """The invite with its founder address replaced (the founder moved, or a wrong paste)."""
    fields = json.loads(b64url_decode(token.removeprefix(INVITE_PREFIX)))
    return INVITE_PREFIX + b64url_encode(json.dumps({**fields, "url": url}).encode())


async def test_join_errors_tell_the_cases_apart(
    trio: list[LiveNode], http: aiohttp.ClientSession, tmp_path: Path, clock: FakeClock
) -> None:
    """Each way a join fails has its own code, so Home Assistant can say what to do; every
    refusal leaves the node in no federation, free to try again."""
    founder = trio[0].node.federation
    nodes = [await start_node(tmp_path / name, name, clock)
             for name in ("loner", "newcomer", "other", "blank")]
    loner, newcomer, other, blank = nodes
    try:
        await other.node.federation.create("Other Street")

        async def join(live: LiveNode, token: str) -> tuple[int, str, str]:
            status, body = await call(http, live, "POST", "/join", {"token": token})
            return status, body["error"]["code"], body["error"]["message"]

        status, code, message = await join(loner, "hearth-invite-v1.xx")
        assert (status, code) == (422, "invalid_invite")
        assert "damaged" in message
        token = (await founder.invite(60))["token"]
        clock.advance(60)
        status, code, message = await join(loner, token)
        assert (status, code) == (422, "invite_expired")
        assert message.startswith("invite expired at ")
        token = (await founder.invite(600))["token"]
        assert (await call(http, newcomer, "POST", "/join", {"token": token}))[0] == 200
        status, code, message = await join(loner, token)
        assert (status, code) == (403, "invite_used")
        assert "already used" in message
        # The address in the invite reaches a founder of another federation, or a node in
        # none: neither learns the joiner anything about its own federation.
        token = (await founder.invite(600))["token"]
        for wrong in (other, blank):
            status, code, message = await join(loner, _pointed_at(token, wrong.url))
            assert (status, code) == (403, "wrong_federation")
            assert other.node.ctx.federation_id not in message
        status, code, _ = await join(newcomer, token)
        assert (status, code) == (409, "already_member")
        # After all that, the loner is still free, and the unused invite still works.
        status, body = await call(http, loner, "GET", "/status")
        assert status == 200 and body["federation"] is None
        assert (await call(http, loner, "POST", "/join", {"token": token}))[0] == 200
        assert len(founder.ctx.roster.members) == 5
    finally:
        for live in nodes:
            await stop_node(live)


async def test_a_hub_without_an_address_needs_a_relay(
    trio: list[LiveNode], http: aiohttp.ClientSession, tmp_path: Path, clock: FakeClock
) -> None:
    """The app's node listens on every interface with no public URL: neighbours could not
    call it, so founding or joining a neighbourhood without a relay is refused, and the
    node stays free to found or join one with a relay."""
    hub = await start_node(tmp_path / "app", "app", clock)
    try:
        hub.node.ctx.config = replace(hub.node.ctx.config, listen_host="0.0.0.0",
                                      insecure_listen=True)
        status, body = await call(http, hub, "POST", "/federation", {"name": "Nowhere"})
        assert (status, body["error"]["code"]) == (422, "no_public_url")
        assert "relay" in body["error"]["message"]
        token = (await trio[0].node.federation.invite(600))["token"]
        status, body = await call(http, hub, "POST", "/join", {"token": token})
        assert (status, body["error"]["code"]) == (422, "no_public_url")
        assert hub.node.ctx.signed_roster is None
        assert len(trio[0].node.ctx.roster.members) == 3
    finally:
        await stop_node(hub)


async def test_internal_errors_show_no_internals(
    trio: list[LiveNode], http: aiohttp.ClientSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(households: bool = False) -> None:
        raise RuntimeError("secret internal detail")

    monkeypatch.setattr(trio[0].node, "status", broken)
    status, body = await call(http, trio[0], "GET", "/status")
    assert status == 500
    assert body == {"error": {"code": "internal", "message": "internal error; see the node's log"}}
    status, body = await call(http, trio[0], "GET", "/no/such/route")
    assert status == 404 and body["error"]["code"] == "not_found"


def test_openapi_describes_exactly_the_local_routes(trio: list[LiveNode]) -> None:
    app = make_local_app(trio[0].node, "t")
    routes = {(r.method.lower(), "/api/v1" + r.resource.canonical) for r in app.router.routes()
              if r.method != "HEAD"}
    documented = {(m, path) for path, ops in openapi_document()["paths"].items() for m in ops}
    assert routes == documented
