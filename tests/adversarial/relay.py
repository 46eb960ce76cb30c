"""A keyless HTTP relay on 127.0.0.1 between nodes, as an untrusted network path would be.

It runs its own event loop in a thread, so a synchronous test can drive the CLI
while the relay keeps answering. By default it forwards everything to its
target and records share deliveries and the acks they got (each of a member's
``/shares/batch`` of forwarded ones too, by its household); with ``replay`` set it
answers ``POST /peer/v1/shares`` with that kept answer instead of forwarding, and a
batch with it for every entry, as a relay holding no keys could.
"""

from __future__ import annotations

import asyncio
import json
import threading
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp import web

from tests.backend.nodes import free_port

SHARES = "/peer/v1/shares"
BATCH = "/peer/v1/shares/batch"
_HOP_BY_HOP = {"host", "content-length", "transfer-encoding", "connection", "keep-alive"}


@dataclass(frozen=True)
class Delivery:
    sender: str  # the Hearth-Sender header: the household
    replayed: bool
    status: int
    answer: dict[str, Any] | None


class Relay:
    def __init__(self, target_port: int) -> None:
        self.port = free_port()
        self.target = f"http://127.0.0.1:{target_port}"
        self.replay: dict[str, Any] | None = None
        self.deliveries: list[Delivery] = []
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._session: aiohttp.ClientSession | None = None
        self._thread = threading.Thread(target=self._loop.run_until_complete,
                                        args=(self._serve(),), daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self._thread.start()
        if not self._ready.wait(10):
            raise AssertionError("relay did not start")

    def close(self) -> None:
        if self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)

    def from_sender(self, sender: str, *, replayed: bool) -> list[Delivery]:
        return [d for d in list(self.deliveries) if d.sender == sender and d.replayed == replayed]

    async def _serve(self) -> None:
        self._stop = asyncio.Event()
        app = web.Application(client_max_size=32 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", self.port).start()
        async with aiohttp.ClientSession() as self._session:
            self._ready.set()
            await self._stop.wait()
        await runner.cleanup()

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        sender = request.headers.get("Hearth-Sender", "?")
        is_share = request.method == "POST" and request.path == SHARES
        # A member's batch of households' forwarded share requests: each entry is a
        # household's delivery, recorded (and replayed) as if it had come on its own.
        senders = _batch_senders(body) if request.path == BATCH else []
        kept = self.replay
        if kept is not None and (is_share or senders):
            if is_share:
                self.deliveries.append(Delivery(sender, True, 200, kept))
                return web.json_response(kept)
            self.deliveries.extend(Delivery(s, True, 200, kept) for s in senders)
            return web.json_response({"answers": [{"status": 200, "answer": kept}
                                                  for _ in senders]})
        assert self._session is not None
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP}
        async with self._session.request(request.method, self.target + request.path_qs,
                                         data=body, headers=headers) as resp:
            data = await resp.read()
            status, content_type = resp.status, resp.content_type
        if is_share:
            answer = json.loads(data) if status == 200 else None
            self.deliveries.append(Delivery(sender, False, status, answer))
        elif senders and status == 200:
            answers = json.loads(data)["answers"]
            self.deliveries.extend(Delivery(s, False, a["status"], a["answer"])
                                   for s, a in zip(senders, answers, strict=True))
        return web.Response(status=status, body=data, content_type=content_type)


def _batch_senders(body: bytes) -> list[str]:
    """The household of each request in a ``/shares/batch`` body, in order."""
    requests = json.loads(body)["body"]["requests"]
    return [r["headers"].get("Hearth-Sender", "?") for r in requests]
