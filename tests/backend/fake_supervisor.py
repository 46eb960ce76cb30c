"""A stand-in for ``http://supervisor``: an aiohttp server on loopback, in a thread.

It answers the calls the app makes the way the Supervisor does
(``supervisor/api/apps.py`` info, ``supervisor/api/discovery.py`` set_discovery and
del_discovery, ``supervisor/discovery/__init__.py`` send and remove): the app's
bearer token is checked, ``/addons/self/info`` gives ``data.hostname``,
``POST /discovery`` refuses a service the app's config does not list (403) and keeps
one message per app and service: a repeat with the same config returns the stored
message and Home Assistant is not told; a changed config keeps the uuid and Home
Assistant is told again. ``DELETE /discovery/{uuid}`` answers 404 for no such
message, 403 for another app's, else removes it (Home Assistant is told); a POST
after that makes a new uuid. ``events`` records what Home Assistant would be pushed
(``("added", uuid)`` / ``("removed", uuid)``). Every request is recorded;
``fail_next`` makes the next requests answer 503, as a Supervisor that is still
starting would.

``messages`` is keyed by service: another app's message (for a 403) goes under a
service this app does not use, with its own ``addon``.

Home Assistant's side (``core_token``): ``GET /discovery`` lists the messages and
``GET /addons/<slug>/info`` names the app, as the hassio integration reads them.
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.backend.nodes import free_port


@dataclass
class Seen:
    method: str
    path: str
    authorization: str | None
    status: int
    body: Any = None


APP_SLUG = "hearth_node"
APP_NAME = "Hearth node"


@dataclass
class FakeSupervisor:
    token: str
    core_token: str = ""
    hostname: str = "127.0.0.1"
    discovery: tuple[str, ...] = ("hearth",)
    port: int = field(default_factory=free_port)
    requests: list[Seen] = field(default_factory=list)
    messages: dict[str, dict[str, Any]] = field(default_factory=dict)  # service -> message
    announcements: list[dict[str, Any]] = field(default_factory=list)  # every accepted POST
    events: list[tuple[str, str]] = field(default_factory=list)  # pushed to Home Assistant
    fail_next: int = 0

    def __post_init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._runner: web.AppRunner | None = None
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> FakeSupervisor:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(timeout=10)
        return self

    def __exit__(self, *_exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_get("/addons/self/info", self._info)
        app.router.add_post("/discovery", self._discovery)
        app.router.add_delete("/discovery/{uuid}", self._delete)
        app.router.add_get("/discovery", self._list)
        app.router.add_get("/addons/{slug}/info", self._app_info)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def _stop(self) -> None:
        assert self._runner is not None
        await self._runner.cleanup()

    def _gate(self, request: web.Request, body: Any = None) -> tuple[web.Response | None, Seen]:
        """Record the request; an answer here ends it (failure or bad token). A handler's
        own refusal corrects the recorded status (``_refuse``)."""
        auth = request.headers.get("Authorization")
        with self._lock:
            if self.fail_next > 0:
                self.fail_next -= 1
                status = 503
            elif auth != f"Bearer {self.token}":
                status = 401
            else:
                status = 200
            seen = Seen(request.method, request.path, auth, status, body)
            self.requests.append(seen)
        if status == 503:
            return web.json_response({"result": "error", "message": "System is not ready"},
                                     status=503), seen
        if status == 401:
            return web.json_response({"result": "error", "message": "Unauthorized"},
                                     status=401), seen
        return None, seen

    async def _info(self, request: web.Request) -> web.Response:
        refused, _seen = self._gate(request)
        if refused is not None:
            return refused
        return web.json_response({"result": "ok", "data": {
            "name": APP_NAME, "slug": APP_SLUG, "hostname": self.hostname,
            "state": "started", "ip_address": "172.30.33.5",
        }})

    def _core(self, request: web.Request) -> web.Response | None:
        if not self.core_token or request.headers.get("Authorization") != (
                f"Bearer {self.core_token}"):
            return web.json_response({"result": "error", "message": "Unauthorized"}, status=401)
        return None

    async def _list(self, request: web.Request) -> web.Response:
        if (refused := self._core(request)) is not None:
            return refused
        with self._lock:
            messages = list(self.messages.values())
        return web.json_response({"result": "ok", "data": {"discovery": messages}})

    async def _app_info(self, request: web.Request) -> web.Response:
        if (refused := self._core(request)) is not None:
            return refused
        if request.match_info["slug"] != APP_SLUG:
            return web.json_response({"result": "error", "message": "App does not exist"},
                                     status=404)
        return web.json_response({"result": "ok", "data": {"name": APP_NAME, "slug": APP_SLUG}})

    async def _discovery(self, request: web.Request) -> web.Response:
        body = await request.json()
        refused, seen = self._gate(request, body)
        if refused is not None:
            return refused
        if not isinstance(body, dict) or set(body) != {"service", "config"} or not isinstance(
                body["config"], dict):
            return self._refuse(seen, 400, "bad body")
        if body["service"] not in self.discovery:
            return self._refuse(seen, 403, "Apps must list services they provide via "
                                "discovery in their config!")
        with self._lock:
            old = self.messages.get(body["service"])
            if old is None:
                old = {"addon": APP_SLUG, "uuid": uuid.uuid4().hex, "service": body["service"]}
            message = {**old, "config": body["config"]}
            if old.get("config") != body["config"]:  # the Supervisor pushes only news
                self.events.append(("added", message["uuid"]))
            self.messages[body["service"]] = message
            self.announcements.append(message)
        return web.json_response({"result": "ok", "data": {"uuid": message["uuid"]}})

    async def _delete(self, request: web.Request) -> web.Response:
        refused, seen = self._gate(request)
        if refused is not None:
            return refused
        wanted = request.match_info["uuid"]
        with self._lock:
            found = [(service, message) for service, message in self.messages.items()
                     if message["uuid"] == wanted]
            if not found:
                return self._refuse(seen, 404, "Discovery message not found")
            [(service, message)] = found
            if message["addon"] != APP_SLUG:
                return self._refuse(seen, 403, "Can't remove discovery message")
            del self.messages[service]
            self.events.append(("removed", wanted))
        return web.json_response({"result": "ok", "data": {}})

    @staticmethod
    def _refuse(seen: Seen, status: int, message: str) -> web.Response:
        seen.status = status
        return web.json_response({"result": "error", "message": message}, status=status)

    def paths(self) -> list[tuple[str, str, int]]:
        with self._lock:
            return [(seen.method, seen.path, seen.status) for seen in self.requests]
