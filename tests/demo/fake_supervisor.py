"""A fake Supervisor on loopback: the discovery API only, in the Supervisor's shapes.

An app announces a service with `POST /discovery` ({"service", "config"}, authenticated with
the app's token, which tells the Supervisor which app is speaking); Home Assistant lists them
with `GET /discovery` and names the app with `GET /addons/<slug>/info`.
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

APP_SLUG = "hearth_node"
APP_NAME = "Hearth node"


@dataclass
class FakeSupervisor:
    app_token: str = field(default_factory=lambda: secrets.token_hex(16))
    core_token: str = field(default_factory=lambda: secrets.token_hex(16))
    discoveries: list[dict[str, Any]] = field(default_factory=list)
    url: str = ""
    _runner: web.AppRunner | None = None

    def _caller(self, request: web.Request) -> str:
        given = request.headers.get("Authorization", "")
        for who, token in (("app", self.app_token), ("core", self.core_token)):
            if secrets.compare_digest(given, f"Bearer {token}"):
                return who
        raise web.HTTPUnauthorized

    @staticmethod
    def _ok(data: dict[str, Any]) -> web.Response:
        return web.json_response({"result": "ok", "data": data})

    async def _post_discovery(self, request: web.Request) -> web.Response:
        if self._caller(request) != "app":
            raise web.HTTPForbidden
        body = await request.json()
        message = {
            "addon": APP_SLUG,
            "service": body["service"],
            "uuid": uuid.uuid4().hex,
            "config": body["config"],
        }
        self.discoveries.append(message)
        return self._ok({"uuid": message["uuid"]})

    async def _list_discovery(self, request: web.Request) -> web.Response:
        if self._caller(request) != "core":
            raise web.HTTPForbidden
        return self._ok({"discovery": self.discoveries, "services": {}})

    async def _addon_info(self, request: web.Request) -> web.Response:
        slug = request.match_info["slug"]
        if slug == "self" and self._caller(request) == "app":
            slug = APP_SLUG
        elif self._caller(request) != "core" or slug != APP_SLUG:
            raise web.HTTPNotFound
        # The app's hostname on the Supervisor's internal network; here all is loopback.
        return self._ok(
            {"name": APP_NAME, "slug": APP_SLUG, "state": "started", "hostname": "127.0.0.1"}
        )

    async def start(self) -> str:
        app = web.Application()
        app.router.add_post("/discovery", self._post_discovery)
        app.router.add_get("/discovery", self._list_discovery)
        app.router.add_get("/addons/{slug}/info", self._addon_info)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}"
        return self.url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
