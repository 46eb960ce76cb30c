"""A test double of the backend's local API at the HTTP boundary, for fast HA tests.

It speaks the same routes, status codes, error bodies and JSON shapes as
mpc_backend/api/local.py (health, status, results, results/stream as
server-sent events, readings), on a real loopback port so Home Assistant's own
aiohttp session talks to it. It does no cryptography and no rounds: the test
publishes results with ``publish``, computing their statistics itself from
plaintext values, and records misbehaviour with ``report_misbehaviour``; a result
that leaves reports out (``excluded``) names them with their verdicts and records its
"invalid" ones (only those) as misbehaviour, as the real node does when it stores a
co-signed result.
``test_real_backend.py`` checks the same integration code against real
``mpc-backend serve`` processes, and its ``test_fake_backend_matches_the_real_api``
compares this double's answers with a real node's, field by field.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import math
import statistics
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

TOKEN = "fake-token-0123456789"
NODE_ID = "0123456789abcdef0123456789abcdef"
OTHER_IDS = ("1" * 32, "2" * 32)
SUITE_HYBRID = "MLKEM768-X25519"
SUITE_CLASSICAL = "X25519"
# A co-signed result's verdicts on the reports it leaves out (mpc_backend.protocol.validity).
# Only "invalid" is pinned on the household; the others may be a committee member's lie,
# and a round leaves out at most MAX_UNATTRIBUTED of them (more, and it is not released).
VERDICT_INVALID = "invalid"
VERDICTS = (VERDICT_INVALID, "inconsistent", "unchecked")
MAX_UNATTRIBUTED = 1
# What the node logs an "invalid" verdict as (mpc_backend.node.results).
INVALID_REPORT_KIND = "invalid_report"
INVALID_REPORT_DETAIL = ("its report failed its validity proof and was left out of the result "
                         "(a verdict co-signed by the round's committee)")

TEMP_TASK: dict[str, Any] = {
    "task_id": "indoor_temperature",
    "metric": "indoor_temperature",
    "unit": "°C",
    "low": -20.0,
    "high": 40.0,
    "resolution": 0.1,
    "stats": ["count", "mean", "stddev", "histogram", "quantiles"],
    "buckets": [18.0, 20.0, 22.0, 24.0],
    "period_s": 60,
    "min_contributors": 3,
    "dp_epsilon": None,
    "k": 3,
    "t": 1,
}
POWER_TASK: dict[str, Any] = {
    "task_id": "power",
    "metric": "household power",
    "unit": "W",
    "low": 0.0,
    "high": 20000.0,
    "resolution": 1.0,
    "stats": ["count", "sum", "mean"],
    "buckets": [],
    "period_s": 300,
    "min_contributors": 4,
    "dp_epsilon": None,
    "k": 3,
    "t": 1,
}


def iso(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).isoformat(timespec="seconds").replace(
        "+00:00", "Z"
    )


def plain_statistics(spec: dict[str, Any], values: list[float]) -> dict[str, Any]:
    """What the backend releases for these readings, computed in the clear.

    Population variance, histogram over the task's bucket edges, quantiles by
    linear interpolation inside the histogram bin (as mpc_backend's decoder does).
    """
    stats: dict[str, Any] = {"count": len(values)}
    if "sum" in spec["stats"]:
        stats["sum"] = math.fsum(values)
    if "mean" in spec["stats"]:
        stats["mean"] = statistics.fmean(values)
    if "variance" in spec["stats"]:
        stats["variance"] = statistics.pvariance(values)
    if "stddev" in spec["stats"]:
        stats["stddev"] = statistics.pstdev(values)
    if "histogram" in spec["stats"] or "quantiles" in spec["stats"]:
        edges = [spec["low"], *spec["buckets"], spec["high"]]
        counts = [
            sum(1 for v in values if (j == 0 or v >= edges[j]) and
                (j == len(edges) - 2 or v < edges[j + 1]))
            for j in range(len(edges) - 1)
        ]
        if "histogram" in spec["stats"]:
            stats["histogram"] = [
                {"low": edges[j], "high": edges[j + 1], "count": c} for j, c in enumerate(counts)
            ]
        if "quantiles" in spec["stats"]:
            quantiles = {}
            for name, p in (("p10", 0.1), ("p25", 0.25), ("p50", 0.5), ("p75", 0.75),
                            ("p90", 0.9)):
                rank, below = p * len(values), 0
                for j, c in enumerate(counts):
                    if c and below < rank <= below + c:
                        quantiles[name] = edges[j] + (rank - below) / c * (edges[j + 1] - edges[j])
                        break
                    below += c
            stats["quantiles"] = quantiles
    return stats


def relay_block(
    connected: bool = True,
    *,
    url: str = "mqtts://relay.example.net:8883",
    mailbox: str = "h-3f9a0c1d2e",
    since: float | None = 1_767_225_600.0,
    last_error: str | None = None,
    reconnects: int = 0,
) -> dict[str, Any]:
    """A node's /status "relay" block: its link to the federation's MQTT broker."""
    return {"url": url, "mailbox": mailbox, "connected": connected,
            "since": None if since is None else iso(since), "last_error": last_error,
            "reconnects": reconnects}


def committee_in_words(spec: dict[str, Any]) -> str:
    """The task's "privacy" line in /status: what k and t mean, as the node words it."""
    k, t = spec["k"], spec["t"]
    return (f"each reading is split among {k} committee hubs: {t + 1} of them colluding "
            f"could see it, {t} or fewer learn nothing; {k - t - 1} may be offline at the close")


@dataclass
class FakeBackend:
    """One household node's local API; ``federation=None`` is a node that joined nothing."""

    tasks: list[dict[str, Any]] = field(default_factory=lambda: [dict(TEMP_TASK)])
    token: str = TOKEN
    node_id: str = NODE_ID
    name: str = "house0"
    federation: str | None = "Elm Street"
    members: int = 3
    members_online: int = 3
    # Admitted households that only contribute, known to this (computing) node; /status
    # lists them only with ?households=1, as the real node does.
    households: int = 0
    committee_seats: int = 1
    results: list[dict[str, Any]] = field(default_factory=list)
    readings: list[dict[str, Any]] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    broken: bool = False  # /status fails as the real node does on an unhandled error
    # /status "misbehaviour"; None answers as a backend from before misbehaviour reports.
    misbehaviour: dict[str, Any] | None = field(
        default_factory=lambda: {"total": 0, "members": []}
    )
    classical: set[str] = field(default_factory=set)  # names of members without ML-KEM keys
    # /status "relay": None while the federation uses direct HTTP; else the node's link to
    # the MQTT relay, as ``relay_block`` builds it.
    relay: dict[str, Any] | None = None
    # The next answer of a route ("invites", "tasks"): (status, code, message, field).
    refuse: dict[str, tuple[int, str, str, str | None]] = field(default_factory=dict)
    invites: list[dict[str, Any]] = field(default_factory=list)
    # identity.relay_admin: the broker configured in the app's options ({"url"}), or None.
    relay_admin: dict[str, Any] | None = None
    # Bodies of POST /federation and /join; "federation" and "join" in ``refuse`` refuse
    # them (a join is otherwise accepted for any token, into federation "Oak Lane").
    setup_requests: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    port: int = 0
    _runner: web.AppRunner | None = None
    _streams: set[asyncio.Queue[dict[str, Any] | None]] = field(default_factory=set)
    _contributed: dict[tuple[str, int], float] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def open_streams(self) -> int:
        return len(self._streams)

    def spec(self, task: str) -> dict[str, Any]:
        return next(t for t in self.tasks if t["task_id"] == task)

    def member_ids(self) -> tuple[str, ...]:
        return (self.node_id, *OTHER_IDS)[: self.members]

    def suite(self, name: str) -> str:
        return SUITE_CLASSICAL if name in self.classical else SUITE_HYBRID

    # -- control ---------------------------------------------------------------------
    async def start(self) -> None:
        """Listen (again) on 127.0.0.1; a restart keeps the port."""
        app = web.Application(middlewares=[self._auth])
        app.router.add_get("/api/v1/health", self._health)
        app.router.add_get("/api/v1/status", self._status)
        app.router.add_get("/api/v1/results", self._results)
        app.router.add_get("/api/v1/results/stream", self._stream)
        app.router.add_post("/api/v1/readings", self._reading)
        app.router.add_post("/api/v1/invites", self._invite)
        app.router.add_post("/api/v1/tasks", self._propose)
        app.router.add_post("/api/v1/federation", self._create_federation)
        app.router.add_post("/api/v1/join", self._join)
        self._runner = web.AppRunner(app, shutdown_timeout=0.1)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self.port)
        await site.start()
        self.port = self._runner.addresses[0][1]

    async def stop(self) -> None:
        """Stop answering: connections are refused until ``start``."""
        for queue in list(self._streams):
            queue.put_nowait(None)
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def publish(
        self,
        task: str,
        round_id: int,
        values: list[float] | None = None,
        *,
        status: str = "released",
        reason: str | None = None,
        excluded: dict[int, str] | None = None,
    ) -> dict[str, Any]:
        """Store a round outcome and push it to open streams; statistics from ``values``.

        ``excluded`` maps member indexes (house{index}) to the committee's verdict on their
        left-out report, one of ``VERDICTS``; ``values`` are the counted readings.
        """
        spec = self.spec(task)
        released = status == "released"
        # As the real node: never released below the task's minimum.
        assert not released or len(values or ()) >= spec["min_contributors"], values
        # As the real node: known verdicts only, and at most MAX_UNATTRIBUTED that are not
        # "invalid" (a node refuses to release more, so no result names more).
        verdicts = list((excluded or {}).values())
        assert set(verdicts) <= set(VERDICTS), verdicts
        assert sum(v != VERDICT_INVALID for v in verdicts) <= MAX_UNATTRIBUTED, verdicts
        committee = [self.node_id, *OTHER_IDS][: spec["k"]]
        result = {
            "task": task,
            "metric": spec["metric"],
            "unit": spec["unit"],
            "round": round_id,
            "round_start": iso(round_id * spec["period_s"]),
            "round_end": iso((round_id + 1) * spec["period_s"]),
            "status": status,
            "reason": reason,
            "contributors": len(values) if values is not None else None,
            "statistics": plain_statistics(spec, values) if released and values else None,
            "dp_epsilon": None,
            "committee": committee,
            "excluded": sorted(
                ({"household": self.member_ids()[i], "verdict": verdict}
                 for i, verdict in (excluded or {}).items()),
                key=lambda entry: entry["household"],
            ),
            "released_at": iso((round_id + 1) * spec["period_s"] + 2),
            # Co-signed by t + 1 of the committee; a failure at the deadline by one member.
            "signed_by": sorted(committee[: 1 if status == "failed" else spec["t"] + 1]),
            "seq": len(self.results) + 1,
        }
        self.results.append(result)
        # As the node stores a co-signed result: its "invalid" verdicts (only those) go to
        # the misbehaviour log; a failed round's verdicts are not trusted.
        if status != "failed" and self.misbehaviour is not None:
            for i, verdict in sorted((excluded or {}).items()):
                if verdict != VERDICT_INVALID:
                    continue
                self.report_misbehaviour(
                    i, INVALID_REPORT_KIND,
                    f"{task} round {round_id}: {INVALID_REPORT_DETAIL}",
                    (round_id + 1) * spec["period_s"] + 2,
                )
        for queue in list(self._streams):
            queue.put_nowait(result)
        return result

    def report_misbehaviour(
        self, index: int, kind: str, detail: str = "", at: float = 1_767_225_600.0
    ) -> None:
        """Record what member ``house{index}`` did, as the node's status then counts it."""
        assert self.misbehaviour is not None
        node_id = self.member_ids()[index]
        members = self.misbehaviour["members"]
        entry = next((m for m in members if m["node_id"] == node_id), None)
        if entry is None:
            entry = {"node_id": node_id, "name": f"house{index}", "count": 0, "kinds": {}}
            members.append(entry)
        entry["count"] += 1
        entry["kinds"][kind] = entry["kinds"].get(kind, 0) + 1
        entry |= {"last_kind": kind, "last_detail": detail, "last_at": iso(at)}
        self.misbehaviour["total"] += 1

    # -- API -------------------------------------------------------------------------
    @staticmethod
    def _error(status: int, code: str, message: str, field_name: str | None = None
               ) -> web.Response:
        error: dict[str, Any] = {"code": code, "message": message}
        if field_name is not None:
            error["field"] = field_name
        return web.json_response({"error": error}, status=status)

    @web.middleware
    async def _auth(self, request: web.Request, handler: Any) -> web.StreamResponse:
        self.requests.append(f"{request.method} {request.path}")
        # As in the real node, auth guards the /api/v1 sub-application only.
        if request.path.startswith("/api/v1/") and request.path != "/api/v1/health" and (
            request.headers.get("Authorization") != f"Bearer {self.token}"
        ):
            return self._error(401, "unauthorized", "missing or wrong bearer token; get it "
                               "with: mpc-backend token --data-dir DIR")
        return await handler(request)

    async def _health(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "ok", "version": "0.1.0"})

    async def _status(self, request: web.Request) -> web.Response:
        if self.broken:
            return self._error(500, "internal", "internal error; see the node's log")
        listed = request.query.get("households", "0")
        if listed not in ("0", "1"):
            return self._error(400, "bad_request", "households must be 0 or 1", "households")
        identity = {"node_id": self.node_id, "name": self.name, "fingerprint": "AAAA-BBBB",
                    "hpke_suite": self.suite(self.name), "url": self.url, "capacity": 1.0,
                    "input_only": False, "version": "0.1.0", "uptime_s": 12.5,
                    "relay_admin": self.relay_admin}
        load = {"shares_accepted": 0, "shares_rejected": 0, "rounds_closed_as_coordinator": 0,
                "contributions_sent": len(self.readings), "rounds_holding_shares": 0,
                "ingest": {"envelopes": 0, "reports": 0, "verify_s": 0.0, "open_s": 0.0,
                           "commit_s": 0.0, "handler_s": 0.0},
                "forwarding": {"forwarded": 0, "batches": 0, "failed": 0},
                "admission_catch_ups": 0}
        if self.federation is None:
            status: dict[str, Any] = {"identity": identity, "federation": None, "members": [],
                                      "tasks": [], "load": load, "relay": self.relay}
            if self.misbehaviour is not None:
                status["misbehaviour"] = self.misbehaviour
            return web.json_response(status)
        now = dt.datetime.now(dt.UTC).timestamp()
        tasks = []
        for spec in self.tasks:
            current = math.floor(now / spec["period_s"])
            latest = [r for r in self.results if r["task"] == spec["task_id"]]
            tasks.append({
                "task": spec["task_id"], "spec": spec, "added_at": 0.0,
                "proposed_by": self.node_id, "first_round": 0, "first_round_starts_at": 0,
                "privacy": committee_in_words(spec),
                "current_round": current,
                "round_ends_at": iso((current + 1) * spec["period_s"]),
                "committee": [self.node_id], "on_committee": True,
                "last_round": None if not latest else {
                    "round": latest[-1]["round"], "status": latest[-1]["status"],
                    "reason": latest[-1]["reason"]},
            })
        load["committee_seats_now"] = self.committee_seats
        status = {
            "identity": identity,
            "federation": {"id": "f" * 32, "name": self.federation, "founder": self.node_id,
                           "is_founder": True, "roster_version": 4,
                           # Members with classical keys are only admitted under "any".
                           "hpke_policy": "any" if self.classical else "hybrid",
                           "members": self.members, "households": self.households,
                           "members_online": self.members_online},
            "members": [
                {"node_id": node_id, "name": f"house{i}", "url": f"http://127.0.0.1:{9000 + i}",
                 "mailbox": None, "capacity": 1.0, "input_only": False, "founder": i == 0,
                 "online": i < self.members_online, "hpke_suite": self.suite(f"house{i}"),
                 "post_quantum": self.suite(f"house{i}") == SUITE_HYBRID}
                for i, node_id in enumerate(self.member_ids())
            ] + [
                {"node_id": f"{i:032x}", "name": f"household{i}", "url": None, "mailbox": None,
                 "capacity": 1.0, "input_only": True, "founder": False, "online": None,
                 "hpke_suite": SUITE_HYBRID, "post_quantum": True}
                for i in range(self.households if listed == "1" else 0)
            ],
            "tasks": tasks, "load": load, "relay": self.relay,
        }
        if self.misbehaviour is not None:
            status["misbehaviour"] = self.misbehaviour
        return web.json_response(status)

    def _task_param(self, request: web.Request) -> tuple[str | None, web.Response | None]:
        task = request.query.get("task")
        if task is not None and not any(t["task_id"] == task for t in self.tasks):
            return None, self._error(404, "unknown_task", f"unknown task {task!r}", "task")
        return task, None

    async def _results(self, request: web.Request) -> web.Response:
        task, error = self._task_param(request)
        if error is not None:
            return error
        since = int(request.query.get("since", 0))
        limit = int(request.query.get("limit", 20))
        found = [r for r in reversed(self.results)
                 if r["seq"] > since and (task is None or r["task"] == task)]
        return web.json_response({"results": found[:limit]})

    async def _stream(self, request: web.Request) -> web.StreamResponse:
        task, error = self._task_param(request)
        if error is not None:
            return error
        since = int(request.query.get("since", 0))
        queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
        self._streams.add(queue)
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream",
                                               "Cache-Control": "no-cache"})
        await response.prepare(request)
        try:
            backlog = [r for r in self.results if r["seq"] > since] if since else []
            for result in backlog:
                queue.put_nowait(result)
            await response.write(b": keepalive\n\n")
            while (result := await queue.get()) is not None:
                if task is None or result["task"] == task:
                    data = json.dumps(result, separators=(",", ":"))
                    await response.write(
                        f"id: {result['seq']}\nevent: result\ndata: {data}\n\n".encode()
                    )
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            self._streams.discard(queue)
        return response

    async def _reading(self, request: web.Request) -> web.Response:
        body = await request.json()
        for name in ("task", "value"):
            if name not in body:
                return self._error(400, "bad_request", f"missing field {name!r}", name)
        task, value = body["task"], body["value"]
        if not any(t["task_id"] == task for t in self.tasks):
            return self._error(404, "unknown_task",
                               f"unknown task {task!r}; list tasks with mpc-backend status",
                               "task")
        spec = self.spec(task)
        if not spec["low"] <= value <= spec["high"]:
            return self._error(422, "out_of_range", f"value {value} is outside the task range "
                               f"[{spec['low']}, {spec['high']}]", "value")
        now = dt.datetime.now(dt.UTC).timestamp()
        round_id = math.floor(now / spec["period_s"])
        previous = self._contributed.get((task, round_id))
        if previous is not None and previous != value:
            return self._error(409, "duplicate_contribution",
                               f"this household already contributed a different value to "
                               f"{task!r} round {round_id}; one contribution per round")
        self._contributed[(task, round_id)] = value
        self.readings.append({"task": task, "value": value, "round": round_id})
        return web.json_response({
            "task": task, "round": round_id, "status": "accepted",
            "duplicate": previous is not None, "acknowledged_by": 3, "committee_size": 3,
            "round_ends_at": (round_id + 1) * spec["period_s"],
        })

    def _refusal(self, route: str) -> web.Response | None:
        if (refusal := self.refuse.pop(route, None)) is None:
            return None
        return self._error(*refusal)

    async def _invite(self, request: web.Request) -> web.Response:
        if (refused := self._refusal("invites")) is not None:
            return refused
        expires = (await request.json()).get("expires_s", 24 * 3600)
        if not isinstance(expires, int) or not 0 < expires <= 30 * 24 * 3600:
            return self._error(400, "bad_request", "expires_s must be a whole number of "
                               "seconds in 1..2592000", "expires_s")
        invite = {"token": f"invite-{len(self.invites)}-token",
                  "expires_at": dt.datetime.now(dt.UTC).timestamp() + expires}
        self.invites.append(invite)
        return web.json_response(invite, status=201)

    async def _propose(self, request: web.Request) -> web.Response:
        """Stores the task as given (k/t defaulted as the node does); no other checks."""
        if (refused := self._refusal("tasks")) is not None:
            return refused
        body = await request.json()
        spec = {"task_id": body["metric"].lower().replace(" ", "_"), "unit": "",
                "buckets": [], "dp_epsilon": None, "k": 3, "t": 1, **body}
        self.tasks.append(spec)
        return web.json_response({"task": {"task": spec["task_id"], "spec": spec},
                                  "roster_version": 5}, status=201)

    async def _setup(self, route: str, request: web.Request, name: str) -> web.Response:
        """Found or join (as the real node answers, without the roster or the relay)."""
        body = await request.json()
        self.setup_requests.append((route, body))
        if (refused := self._refusal(route)) is not None:
            return refused
        if self.federation is not None:
            return self._error(409, "already_member",
                               f"this node is already in federation {self.federation!r}")
        self.federation = name
        if route == "federation":
            return web.json_response({"federation": "f" * 32, "name": name, "roster_version": 1,
                                      "hpke_policy": "hybrid", "relay": None}, status=201)
        return web.json_response({"federation": "f" * 32, "name": name, "roster_version": 2,
                                  "members": 2, "founder": "founder"})

    async def _create_federation(self, request: web.Request) -> web.Response:
        return await self._setup("federation", request, (await request.json())["name"])

    async def _join(self, request: web.Request) -> web.Response:
        return await self._setup("join", request, "Oak Lane")
