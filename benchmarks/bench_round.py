"""Round benchmark: K real committee nodes on loopback, N simulated households, M tasks.

    python benchmarks/bench_round.py --households 1000 --tasks 10 [--committee 5]
        [--transport direct|relay|both] [--auth channels|signed|both]
        [--concurrency C] [--in-flight H] [--join-concurrency J] [--json]

The committee is K ``mpc-backend serve`` processes (default 3, threshold t = 1; with
5, t = 2), and every round closes with held statements, verification, partial sums
and t + 1 co-signatures. Households are in-process clients that do exactly what a
household node does: they join through invites (signed join requests to the
founder) and offer each committee member a channel (``--auth channels``, the default:
one signed request with an HPKE-sealed secret per household and member, timed as setup
since a household does it once a day), then per round encode each reading, prove it
valid, Shamir-share it with its proof, seal one share per committee member under the
channel and send one envelope per member carrying all M tasks' shares in a request MAC'd
under it; the member's ack carries the channel's MAC. ``--auth signed`` does what a
household did before channels (and does with a member that has none): HPKE-seal each
share, sign each envelope and request, check signed acks. The benchmark prints:

* client cost per report: encode + prove + share + K seals (+ the envelope signatures
  amortised over the tasks), single core;
* contribution throughput: reports accepted per committee node per second while
  all households send concurrently (every report needs a signature check, an
  HPKE open and a durable SQLite commit before its ack);
* round-close latency: from the end of the round until every node holds all M
  signed results (includes the grace period);
* peak RSS per node (VmHWM);
* what validity proofs cost per report, stage by stage (client: encode, prove, share,
  seal, sign; committee: verifier shares, judgement, partial sum), beside the same
  pipeline without proofs, for histogram tasks with 6 and 32 buckets
  (``benchmarks/proof_costs.py``, measured in this run, one core).

and where the time goes, per report, beside the floor measured in the same run once the
nodes have stopped (``benchmarks/floor.py``: one HPKE open, one Ed25519 verify, a one-row
SQLite WAL commit with ``synchronous=FULL`` and the per-row cost at 48 rows a commit), as
ratios to it:

* client: encode + prove + share + seal + sign, over K seals and the signatures;
* ingest per committee node, wall (the sending window over the reports the node
  accepted) and CPU (the node process's, over the same window), over the floor; split
  into verify, open and commit by the node's own counters (status ``load.ingest``;
  "-" where the node has none) and transport: the wall time left (HTTP, JSON, the event
  loop, and the two cores shared by the nodes and the clients), over the HTTP floor
  measured in the same run (``benchmarks/http_floor.py``: a bare aiohttp server's wall
  per request, driven by the same client at the same concurrency);
* close: latency, and the committee's compute: each node's CPU time from the earliest
  start of the close (round end + grace) until all results are in, less what the
  benchmark's own result polling costs it (measured just before);
* joins (setup): their wall time, and joins per second over the first and the last
  third of the households (equal when a join costs the same however many have joined).

Then it plays a later round the same way, but with every envelope to every committee node
at once (one window; the nodes and the sending client share the cores), as issue 13's table
measured end to end; its clients, window and close compute give "end to end, all nodes at
once". A third round does the same with one upload per household, as a household's node
sends its shares: one request to one committee node, which forwards the others' requests
in batches ("end to end, one upload per household"). A fourth sends one upload per
household again, pipelined: each household seals, sends and checks its acks as it goes, so
the client's work overlaps the nodes' ingest in one window ("end to end, one upload,
pipelined"), ``--in-flight`` households (default 256) at once: the other rounds send
``--concurrency`` requests at once (default 48), as the HTTP floor's client does, but a
street's hubs report at once by the hundred, and with a few dozen in flight a forwarder's
batches hold a few entries each, so nodes pay a batch request's cost for every few.
Released means are checked against the plaintext values in every round; rejected
envelopes are counted over all four, and peak RSS covers them all.

``--transport both`` (the default) runs the whole benchmark twice in one invocation,
over direct HTTP and through a Mosquitto relay on loopback (the setup ``mpc-backend
relay init`` writes), and prints them side by side with their ratio. Through the
relay, households publish their envelopes through ``GATEWAYS`` MQTT connections
(each a household's own broker account; one message per envelope, as each household
would send), and the table adds the broker's CPU time and peak RSS. ``--auth both``
runs channels and signed side by side the same way.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import random
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
import uvloop

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.floor import client_floor_ms, measure_floor, print_floor  # noqa: E402
from benchmarks.http_floor import cpu_seconds, measure_http_floor, print_http_floor  # noqa: E402
from benchmarks.proof_costs import histogram_task, measure, print_table  # noqa: E402
from mpc_backend.arith import FieldRNG  # noqa: E402
from mpc_backend.crypto import NodeKeys, parse_invite, sign_envelope  # noqa: E402
from mpc_backend.crypto.channel import (  # noqa: E402
    Channel,
    aead_open,
    aead_seal,
    derive,
    new_channel_id,
    new_secret,
)
from mpc_backend.crypto.sealing import seal_share  # noqa: E402
from mpc_backend.node.channels import LIFETIME_S, offer_envelope  # noqa: E402
from mpc_backend.node.forwarding import Forward, choose_forwarder  # noqa: E402
from mpc_backend.node.household import (  # noqa: E402
    ack_problem,
    forward_of,
    seal_report,
    shares_envelope,
)
from mpc_backend.node.peers import SIGNATURE_HEADER, request_headers  # noqa: E402
from mpc_backend.node.roster import MemberInfo, verify_roster  # noqa: E402
from mpc_backend.relay.endpoint import BrokerAccount  # noqa: E402
from mpc_backend.relay.sealed import answer_aad, request_aad  # noqa: E402
from mpc_backend.relay.transport import RelayTransport  # noqa: E402
from mpc_backend.storage import ChannelRecord  # noqa: E402
from tests.backend.nodes import NodeProcess, free_port, join_envelope  # noqa: E402
from tests.relay_broker import Broker  # noqa: E402

GRACE_S = 2
GATEWAYS = 16
IN_FLIGHT = 256  # households mid-report at once in the pipelined round (--in-flight)
TASK = {"low": -20.0, "high": 40.0, "resolution": 0.01, "unit": "°C",
        "stats": ["count", "sum", "mean", "variance", "stddev", "histogram", "quantiles"],
        "buckets": [16.0, 18.0, 20.0, 22.0, 24.0]}


def readings(n: int, m: int) -> np.ndarray:
    """N households' readings for M tasks, seeded (bench_mpyc computes over the same ones)."""
    rand = random.Random(7)  # plaintext readings only; nothing secret
    return np.array([[round(rand.uniform(15, 26), 2) for _ in range(m)] for _ in range(n)])


async def api(session: aiohttp.ClientSession, node: NodeProcess, method: str, path: str,
              body: Any = None) -> Any:
    token = (node.data_dir / "api_token").read_text().strip()
    async with session.request(method, f"{node.url}/api/v1{path}", json=body,
                               headers={"Authorization": f"Bearer {token}"}) as resp:
        data = await resp.json()
        if resp.status >= 400:
            raise RuntimeError(f"{method} {path}: {data}")
        return data


async def join_household(session: aiohttp.ClientSession, founder: NodeProcess,
                         keys: NodeKeys, index: int) -> BrokerAccount | None:
    """Join (setup, untimed: over HTTP to the founder either way); the household's broker
    account in a relay federation."""
    invite = await api(session, founder, "POST", "/invites", {"expires_s": 3600})
    relay = parse_invite(invite["token"]).relay
    account = None if relay is None else BrokerAccount(relay["username"], relay["password"])
    envelope = join_envelope(invite["token"], keys, f"household {index}")
    async with session.post(f"{founder.url}/peer/v1/join", json=envelope) as resp:
        if resp.status != 200:
            raise RuntimeError(f"join failed: {await resp.text()}")
        answer = await resp.json()
    # A household is admitted by one founder-signed record beside the unchanged roster.
    admitted = (answer.get("admission") or {}).get("admission") or {}
    if (admitted.get("member") or {}).get("node_id") != keys.node_id:
        raise RuntimeError(f"household {index}: the founder's answer holds no admission for it")
    return account


async def offer_channels(session: aiohttp.ClientSession, households: list[NodeKeys],
                         members: list[MemberInfo], url_of: dict[str, str], federation: str,
                         sem: asyncio.Semaphore) -> dict[tuple[int, str], Channel]:
    """Each household offers each member a channel, as ``ChannelService.outbound`` does."""
    path = "/peer/v1/channel"
    expires = int(time.time() + LIFETIME_S)

    async def offer(h: int, keys: NodeKeys, member: MemberInfo) -> tuple[tuple[int, str], Channel]:
        cid, secret = new_channel_id(), new_secret()
        record = ChannelRecord("out", member.node_id, cid, secret, expires)
        body = json.dumps(offer_envelope(keys, federation, member, record, time.time())).encode()
        headers = request_headers(keys, path, body, time.time())
        async with sem, session.post(f"{url_of[member.node_id]}{path}", data=body,
                                     headers=headers) as resp:
            if resp.status != 200:
                raise RuntimeError(f"channel offer refused: {await resp.text()}")
        return (h, member.node_id), derive(secret, federation, keys.node_id, member.node_id,
                                           cid, expires)

    return dict(await asyncio.gather(*(offer(h, keys, mm) for h, keys in enumerate(households)
                                       for mm in members)))


async def run(args: argparse.Namespace, transport: str,
              auth: str = "channels") -> dict[str, Any]:
    root = Path(tempfile.mkdtemp(prefix=f"bench-round-{transport}-"))
    nodes = [NodeProcess(f"committee{i}", root / f"c{i}", free_port(), root / f"c{i}.log")
             for i in range(args.committee)]
    broker = Broker(root / "relay") if transport == "relay" else None
    try:
        if broker is not None:
            broker.start()
        for node in nodes:
            node.init("--grace", str(GRACE_S), "--takeover", "20")
            node.start()
        return {"transport": transport, **await _bench(args, nodes, broker, auth)}
    finally:
        for node in nodes:
            node.stop()
        if broker is not None:
            broker.stop()
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)


async def _bench(args: argparse.Namespace, nodes: list[NodeProcess],
                 broker: Broker | None, auth: str) -> dict[str, Any]:
    n, m = args.households, args.tasks
    connector = aiohttp.TCPConnector(limit=max(args.concurrency, args.in_flight))
    timeout = aiohttp.ClientTimeout(total=120)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        founder = nodes[0]
        create: dict[str, Any] = {"name": "bench"}
        if broker is not None:
            create["relay"] = {**broker.endpoint.to_dict(), "admin": broker.admin.to_dict()}
        await api(session, founder, "POST", "/federation", create)
        for node in nodes[1:]:
            invite = await api(session, founder, "POST", "/invites", {"expires_s": 600})
            await api(session, node, "POST", "/join", {"token": invite["token"]})
        t0 = time.perf_counter()
        households = [NodeKeys.generate() for _ in range(n)]
        # Through the relay every invite provisions a broker account, and the broker rewrites
        # its whole accounts file for each: fewer at a time.
        sem = asyncio.Semaphore(args.join_concurrency or (32 if broker is None else 4))
        joined: list[float] = []  # when each join completed, in completion order

        async def join(i: int, keys: NodeKeys) -> BrokerAccount | None:
            async with sem:
                account = await join_household(session, founder, keys, i)
            joined.append(time.perf_counter())
            return account

        j0 = time.perf_counter()
        accounts = await asyncio.gather(*(join(i, k) for i, k in enumerate(households)))
        joins = _join_figures(j0, joined)
        # Sealing costs about 1 ms per report and ingest a few ms per envelope (one per
        # household and member, the members one after the other): the round must hold both.
        period = args.period or max(20, math.ceil(15 + n * (0.002 * m + 0.006)))
        task_ids = [f"metric_{j}" for j in range(m)]
        for task_id in task_ids:
            await api(session, founder, "POST", "/tasks", {
                **TASK, "task_id": task_id, "metric": task_id, "period_s": period,
                "min_contributors": 3, "k": args.committee, "t": (args.committee - 1) // 2})
        setup_s = time.perf_counter() - t0
        # Wait until every node has the final roster, then for the tasks' first round.
        for node in nodes:
            for _ in range(600):
                tasks = await api(session, node, "GET", "/tasks")
                if len(tasks["tasks"]) == m:
                    break
                await asyncio.sleep(0.1)
        federation_id = (await api(session, founder, "GET", "/status"))["federation"]["id"]
        fetch = json.dumps(sign_envelope(households[0], "roster-fetch", federation_id, {})).encode()
        headers = request_headers(households[0], "/peer/v1/roster/fetch", fetch, time.time())
        # Setup: the founder still listens on loopback, whichever way members talk.
        async with session.post(f"{founder.url}/peer/v1/roster/fetch", data=fetch,
                                headers=headers) as resp:
            roster = verify_roster((await resp.json())["roster"]).roster
        member_of = {mm.node_id: mm for mm in roster.members}
        url_of = {nd.node_id: nd.url for nd in nodes}
        # Setup, as each household's node does before its first report to a member: offer
        # it a channel (a signed request carrying the HPKE-sealed secret), then seal shares
        # and MAC requests under it for a day. Over HTTP either way, like the joins.
        channel_of: dict[tuple[int, str], Channel] = {}
        o0 = time.perf_counter()
        if auth == "channels":
            channel_of = await offer_channels(session, households, [member_of[i] for i in url_of],
                                              url_of, roster.federation_id,
                                              asyncio.Semaphore(args.concurrency))
        channels_s = time.perf_counter() - o0
        first = max(t["first_round"] for t in tasks["tasks"])
        await asyncio.sleep(max(0.0, first * period - time.time() + 0.2))
        game = _Game(args, session, nodes, broker, accounts, households, channel_of, roster,
                     url_of, task_ids, period)
        apart = await _play_round(game, int(time.time() // period), mode="apart")
        # The same again in a later round with every envelope to every node at once, as the
        # issue's table measured end to end: the nodes share both cores with the client.
        # Then once more with one upload per household, as a household's node sends them.
        together = await _play_round(game, await _young_round(period), mode="together")
        upload = await _play_round(game, await _young_round(period), mode="upload")
        # And pipelined: one upload per household again, each household sealing, sending and
        # checking its acks as it goes, all in one window: the client's work overlaps the
        # nodes' ingest on this one machine.
        pipelined = await _play_round(game, await _young_round(period), mode="pipelined")
    rss = {nd.name: _peak_rss_mb(nd.proc.pid if nd.proc else None) for nd in nodes}
    reports = n * m
    relay: dict[str, Any] = {}
    if broker is not None:
        relay = {"broker_cpu_s": apart["broker_cpu_s"],
                 "broker_peak_rss_mb": _peak_rss_mb(broker.pid)}
    windows = apart["windows"]
    stages = {nd.name: _node_stages(apart["accepted"][nd.node_id], windows[nd.name],
                                    apart["send_cpu"][nd.name], apart["ingest0"][nd.name],
                                    apart["ingest1"][nd.name]) for nd in nodes}
    close_total = sum(apart["close_cpu"].values())
    return {
        "households": n,
        "tasks": m,
        "committee": args.committee,
        "in_flight": args.in_flight,
        "period_s": period,
        "hpke_suite": households[0].hpke_suite,
        "setup_s": round(setup_s, 2),
        "auth": auth,
        "channels_s": round(channels_s, 2),
        "client_ms_per_report": round(apart["client_cpu"] / reports * 1000, 3),
        "client_wall_s": round(apart["client_wall"], 4),
        "client_one_household_s": round(apart["client_wall"] / n, 6),
        "ingest_windows_s": {name: round(w, 4) for name, w in windows.items()},
        "send_wall_s": round(sum(windows.values()), 4),
        "end_to_end_s": round(apart["client_wall"] + sum(windows.values()) + close_total, 4),
        "hubs_in_parallel_s": round(apart["client_wall"] / n + max(windows.values())
                                    + close_total, 4),
        "together": _at_once(together, reports),
        "upload": _at_once(upload, reports),
        "pipelined": _at_once(pipelined, reports),
        "end_to_end_together_s": _end_to_end(together),
        "end_to_end_upload_s": _end_to_end(upload),
        "end_to_end_pipelined_s": _end_to_end(pipelined),
        # What that round cost the machine: the client's sealing, signing and ack checks,
        # its sending, the nodes' ingest and their close, per report.
        "together_cpu_ms_per_report": _cpu_per_report(together, reports),
        "upload_cpu_ms_per_report": _cpu_per_report(upload, reports),
        "pipelined_cpu_ms_per_report": _cpu_per_report(pipelined, reports),
        "reports_per_s_per_node": {nd.name: round(apart["accepted"][nd.node_id]
                                                  / windows[nd.name]) for nd in nodes},
        "rejected_envelopes": sum(r["failures"] for r in (apart, together, upload, pipelined)),
        "round_close_latency_s": round(apart["close_s"], 2),
        "close_compute_s": {name: round(v, 4) for name, v in apart["close_cpu"].items()},
        "close_compute_total_s": round(close_total, 4),
        "stages_ms_per_report": stages,
        "stages_ms_per_report_mean": _mean_stages(stages),
        **joins,
        "peak_rss_mb": rss,
        "results_correct": all(r["correct"] for r in (apart, together, upload, pipelined)),
        **relay,
    }


# One household's request to a committee member: (household, items, request body, request
# headers, and the items of the requests it is to forward, by member).
_Request = tuple[int, list[Any], bytes, dict[str, str], dict[str, list[Any]]]


@dataclass
class _Game:
    """What every round of one benchmark run plays with, once setup is done."""

    args: argparse.Namespace
    session: aiohttp.ClientSession
    nodes: list[NodeProcess]
    broker: Broker | None
    accounts: list[BrokerAccount | None]
    households: list[NodeKeys]
    channel_of: dict[tuple[int, str], Channel]
    roster: Any
    url_of: dict[str, str]
    task_ids: list[str]
    period: int


async def _play_round(game: _Game, round_id: int, *, mode: str) -> dict[str, Any]:
    """Every household reports in ``round_id``; its envelopes go to one node at a time
    (``mode`` "apart": each node's own window, keyed by name), to all nodes at once
    ("together": one window, "all"), or in one upload per household to one node, which
    forwards the others' in bulk ("upload", all nodes at once too; "pipelined": the same,
    each household sealing, sending and checking its acks in the window); then the close.
    Client work, windows, close compute, and correctness."""
    args, session, nodes, broker = game.args, game.session, game.nodes, game.broker
    roster, url_of, households, channel_of = (game.roster, game.url_of, game.households,
                                              game.channel_of)
    n, m, period = len(households), len(game.task_ids), game.period
    member_of = {mm.node_id: mm for mm in roster.members}
    # Client side (measured, one core): seal every report and sign each envelope's
    # request, before any is sent, as each household does on its own hub (pipelined: each
    # household as it goes, in the window). The request timestamps stay fresh: every window
    # below ends well within the nodes' 300 s.
    rng = FieldRNG()
    values = readings(n, m)
    specs = [roster.task(t).spec for t in game.task_ids]
    committees = [roster.committee(t, round_id) for t in game.task_ids]
    path = "/peer/v1/shares"
    requests: dict[str, list[_Request]] = {node_id: [] for node_id in url_of}

    def seal(h: int) -> list[tuple[str, _Request]]:
        """Household h's requests, each with the member it goes to."""
        keys = households[h]
        sealed_requests: list[tuple[str, _Request]] = []
        per_member: dict[str, list[tuple[str, int, bytes]]] = {}
        for j, spec in enumerate(specs):
            seats = [channel_of.get((h, mm.node_id)) for mm in committees[j]]
            sealed = seal_report(keys, roster.federation_id, spec, round_id, committees[j],
                                 float(values[h, j]), rng, seats)
            for member, ct in zip(committees[j], sealed, strict=True):
                per_member.setdefault(member.node_id, []).append((spec.task_id, round_id, ct))
        uploads: list[tuple[str, list[Any], list[Forward], dict[str, list[Any]]]] = [
            (member_id, items, [], {}) for member_id, items in per_member.items()]
        # One upload, as a household's node does (ContributionService._upload).
        if mode in ("upload", "pipelined"):
            head = choose_forwarder(keys.node_id, game.task_ids[0], round_id, list(per_member))
            now = time.time()
            others = {mid: items for mid, items in per_member.items() if mid != head}
            uploads = [(head, per_member[head],
                        [forward_of(keys, roster.federation_id, mid, items,
                                    channel_of.get((h, mid)), now)
                         for mid, items in others.items()], others)]
        for member_id, items, forwards, forwarded in uploads:
            channel = channel_of.get((h, member_id))
            body = json.dumps(shares_envelope(keys, roster.federation_id, items,
                                              signed=channel is None,
                                              forward=forwards)).encode()
            if broker is not None:
                # As a household's node does it through the relay: seal to the member
                # (under the channel where there is one).
                target = member_of[member_id]
                aad = request_aad(roster.federation_id, path, keys.node_id, member_id)
                body = (aead_seal(channel.relay_request_key, body, aad) if channel
                        else seal_share(target.hpke_public, target.hpke_suite, body, aad))
            headers = request_headers(keys, path, body, time.time(), channel)
            sealed_requests.append((member_id, (h, items, body, headers, forwarded)))
        return sealed_requests

    accepted = dict.fromkeys(url_of, 0)

    def check(member_id: str, request: _Request, status: int, body: bytes | None) -> int:
        """Count the items of each valid ack in one answer (the member's own, and those it
        passed on); the failures (client work)."""
        member = member_of[member_id]
        h, items, _, headers, to_others = request
        failures = 0
        keys = households[h]
        # Through the relay, open the sealed answer as a household's node does.
        channel = channel_of.get((h, member_id))
        plain = body
        if broker is not None and body is not None:
            aad = answer_aad(roster.federation_id, path, member_id, keys.node_id,
                             headers[SIGNATURE_HEADER], status)
            plain = (aead_open(channel.relay_answer_key, body, aad) if channel
                     else keys.open_share(body, aad))
        answer = json.loads(plain) if status == 200 and plain is not None else {}
        if answer and ack_problem(answer, member, roster.federation_id, keys.node_id,
                                  items, channel=channel) is None:
            accepted[member_id] += len(items)
        else:
            failures += 1
        passed_on = {f.get("to"): f for f in answer.get("forwarded", [])}
        for to, to_items in to_others.items():
            item = passed_on.get(to, {})
            if item.get("status") == 200 and ack_problem(
                    item.get("answer", {}), member_of[to], roster.federation_id,
                    keys.node_id, to_items, channel=channel_of.get((h, to))) is None:
                accepted[to] += len(to_items)
            else:
                failures += 1
        return failures

    c0 = time.process_time()
    w0 = time.perf_counter()
    if mode != "pipelined":
        for h in range(n):
            for member_id, request in seal(h):
                requests[member_id].append(request)
    client_cpu = time.process_time() - c0
    client_wall = time.perf_counter() - w0
    if time.time() > (round_id + 1) * period:
        raise RuntimeError("sealing took longer than the round; raise --period")

    # Ingest: one committee node at a time, all of its envelopes concurrently, so each
    # node's window is its own (one core for it, the other for the sending client); or
    # all at once. Answers are recorded in the window and checked after it (client work;
    # pipelined, checked in it).
    gateways: list[RelayTransport] = []
    broker_cpu0 = 0.0
    if broker is not None:
        for g in range(min(GATEWAYS, n)):
            gateway = RelayTransport(broker.endpoint, game.accounts[g], roster.federation_id)
            await gateway.start(wait_s=10)
            gateways.append(gateway)
        broker_cpu0 = broker.cpu_seconds()

    async def post(member: str, h: int, body: bytes,
                   headers: dict[str, str]) -> tuple[int, bytes | None]:
        if not gateways:
            async with session.post(f"{url_of[member]}{path}",
                                    data=body, headers=headers) as resp:
                return resp.status, await resp.read()
        answer = await gateways[h % len(gateways)].request(
            member_of[member].mailbox, path, body, headers, timeout_s=60, sealed=True)
        if answer is None or not answer.sealed:
            return 504, None
        return answer.status, answer.body

    sem_send = asyncio.Semaphore(args.concurrency)
    sem_household = asyncio.Semaphore(args.in_flight)

    async def send(member: str, h: int, body: bytes,
                   headers: dict[str, str]) -> tuple[str, tuple[int, bytes | None]]:
        async with sem_send:
            return member, await post(member, h, body, headers)

    # Pipelined: each household seals, sends and checks its answer as it goes, --in-flight
    # of them at once; its work overlaps the nodes' ingest.
    failures = 0

    async def household(h: int) -> None:
        nonlocal failures
        async with sem_household:
            for member_id, request in seal(h):
                status, body = await post(member_id, h, request[2], request[3])
                failures += check(member_id, request, status, body)

    pids = {nd.name: nd.proc.pid if nd.proc else 0 for nd in nodes}
    windows: dict[str, float] = {}
    send_cpu: dict[str, float] = {}
    client_send_cpu = 0.0  # all at once: this process's CPU in the window
    ingest0: dict[str, dict[str, float] | None] = {}
    ingest1: dict[str, dict[str, float] | None] = {}
    answers: dict[str, list[tuple[int, bytes | None]]] = {node_id: [] for node_id in url_of}
    # Each batch is a window: one node's envelopes, or every node's interleaved by household
    # (pipelined: every household's, sealed in the window).
    batches = ([("all", [(member, r) for i in range(n) for member, sent in requests.items()
                         for r in sent[i:i + 1]])] if mode != "apart"
               else [(nd.name, [(nd.node_id, r) for r in requests[nd.node_id]]) for nd in nodes])
    forwarded0 = await _forwarded(session, nodes)
    for name, batch in batches:
        node = next((nd for nd in nodes if nd.name == name), None)
        if node is not None:
            ingest0[name] = await _ingest_counters(session, node)
        # The window's CPU: its node's (every node's, all at once) and this process's
        # sending (read inside the node reads, so they are not counted as sending).
        measured = [node.name] if node is not None else list(pids)
        cpu0 = sum(cpu_seconds(pids[nm]) for nm in measured)
        own0 = time.process_time()
        s0 = time.perf_counter()
        if mode == "pipelined":
            await asyncio.gather(*(household(h) for h in range(n)))
        for member, answer in await asyncio.gather(
                *(send(member, h, body, hd) for member, (h, _, body, hd, _) in batch)):
            answers[member].append(answer)
        windows[name] = time.perf_counter() - s0
        sending_cpu = time.process_time() - own0
        send_cpu[name] = sum(cpu_seconds(pids[nm]) for nm in measured) - cpu0
        if node is None:
            client_send_cpu = sending_cpu
        else:
            ingest1[name] = await _ingest_counters(session, node)
    forwarded = await _forwarded(session, nodes) - forwarded0
    if time.time() > (round_id + 1) * period:
        raise RuntimeError("sending took longer than the round; raise --period")
    for gateway in gateways:
        await gateway.close()

    # Client side again (measured): check every answer is the member's valid ack.
    c0 = time.process_time()
    w0 = time.perf_counter()
    for member_id, sent in requests.items():
        for request, (status, body) in zip(sent, answers[member_id], strict=True):
            failures += check(member_id, request, status, body)
    client_cpu += time.process_time() - c0
    client_wall += time.perf_counter() - w0
    if mode == "pipelined":  # no client work outside the window: it is all in the window's
        client_cpu = client_wall = 0.0
    if time.time() > (round_id + 1) * period + GRACE_S - 0.2:
        raise RuntimeError("checking the acks took past the close; raise --period")

    # Round close latency: from the round's end until all nodes hold all results. The
    # committee's compute at close: each node's CPU time from just before the close can
    # start (end + grace) until all results are in, less what our polling costs it.
    end = (round_id + 1) * period
    results_path = f"/results?since=0&limit={m * 4}"
    poll_cpu = await _poll_cost(session, nodes, pids, results_path)
    await asyncio.sleep(max(0.0, end + GRACE_S - 0.2 - time.time()))
    cpu1 = {name: cpu_seconds(pid) for name, pid in pids.items()}
    polls = 0
    pending = {(nd.name, t) for nd in nodes for t in game.task_ids}
    results: dict[str, Any] = {}
    while pending:
        await asyncio.sleep(0.1)
        polls += 1
        for nd in nodes:
            listed = await api(session, nd, "GET", results_path)
            for r in listed["results"]:
                if r["round"] == round_id and (nd.name, r["task"]) in pending:
                    pending.discard((nd.name, r["task"]))
                    results[r["task"]] = r
        if time.time() > end + 120:
            raise RuntimeError(f"results missing after 120 s: {sorted(pending)}")
    close_s = time.time() - end
    close_cpu = {name: cpu_seconds(pid) - cpu1[name] - polls * poll_cpu[name]
                 for name, pid in pids.items()}
    correct = all(
        results[t]["status"] == "released"
        and results[t]["contributors"] == n
        and abs(results[t]["statistics"]["mean"] - values[:, j].mean()) <= 0.005 + 1e-9
        for j, t in enumerate(game.task_ids)
    )
    return {"client_cpu": client_cpu, "client_wall": client_wall, "windows": windows,
            "send_cpu": send_cpu, "client_send_cpu": client_send_cpu, "ingest0": ingest0,
            "ingest1": ingest1,
            "accepted": accepted, "failures": failures, "close_s": close_s,
            "close_cpu": close_cpu, "correct": correct,
            "broker_cpu_s": round(broker.cpu_seconds() - broker_cpu0, 2) if broker else 0.0,
            "forwarded": forwarded}


INGEST_COUNTERS = ("verify_s", "open_s", "commit_s", "handler_s")


def _at_once(played: dict[str, Any], reports: int) -> dict[str, Any]:
    """A round with every node's envelopes in one window: its parts, per report where CPU."""
    window = played["windows"]["all"]
    # CPU in that window: all nodes' ingest (and forwarding), and the sending client's
    # (through the relay, the broker's is not in it), and the cores that kept busy.
    nodes, client = played["send_cpu"]["all"], played["client_send_cpu"]
    return {
        "client_wall_s": round(played["client_wall"], 4),
        "send_wall_s": round(window, 4),
        "client_ms_per_report": round(played["client_cpu"] / reports * 1000, 3),
        "send_node_cpu_ms_per_report": round(nodes / reports * 1000, 3),
        "send_client_cpu_ms_per_report": round(client / reports * 1000, 3),
        "send_cores_busy": round((nodes + client) / window, 2),
        "close_compute_total_s": round(sum(played["close_cpu"].values()), 4),
        "round_close_latency_s": round(played["close_s"], 2),
        "rejected_envelopes": played["failures"],
        "results_correct": played["correct"],
        "forwarded_requests": played["forwarded"],
    }


def _end_to_end(played: dict[str, Any]) -> float:
    return round(played["client_wall"] + played["windows"]["all"]
                 + sum(played["close_cpu"].values()), 4)


def _cpu_per_report(played: dict[str, Any], reports: int) -> float:
    """What a round cost the machine: the client's sealing, signing and ack checks, its
    sending, the nodes' ingest and their close, per report."""
    return round((played["client_cpu"] + played["send_cpu"]["all"] + played["client_send_cpu"]
                  + sum(played["close_cpu"].values())) / reports * 1000, 3)


async def _young_round(period: int) -> int:
    """A round that has just begun: the one under way if under a third has passed (the
    round after the last has begun during its close), else the next, once it starts."""
    round_id = int(time.time() // period)
    if time.time() - round_id * period > period / 3:
        round_id += 1
        await asyncio.sleep(max(0.0, round_id * period - time.time() + 0.2))
    return round_id


async def _forwarded(session: aiohttp.ClientSession, nodes: list[NodeProcess]) -> int:
    """Households' requests the nodes have passed on to each other (status
    ``load.forwarding``), all together."""
    total = 0
    for nd in nodes:
        total += (await api(session, nd, "GET", "/status"))["load"]["forwarding"]["forwarded"]
    return total


async def _ingest_counters(session: aiohttp.ClientSession,
                           node: NodeProcess) -> dict[str, float] | None:
    """The node's cumulative ingest counters (status ``load.ingest``); None if it has none."""
    ingest = (await api(session, node, "GET", "/status")).get("load", {}).get("ingest")
    if not isinstance(ingest, dict) or not all(k in ingest for k in INGEST_COUNTERS):
        return None
    return {k: float(ingest[k]) for k in INGEST_COUNTERS}


def _node_stages(reports: int, send_s: float, cpu_s: float, before: dict[str, float] | None,
                 after: dict[str, float] | None) -> dict[str, float | None]:
    """One node's ingest per report (ms): wall (its own sending window over the reports it
    accepted), CPU, the node's own verify/open/commit/handler seconds, and transport: the
    wall time not spent in verify, open or commit."""
    if reports == 0:
        return {"wall": None, "cpu": None, "transport": None,
                **{k.removesuffix("_s"): None for k in INGEST_COUNTERS}}
    stages: dict[str, float | None] = {"wall": send_s / reports * 1000,
                                       "cpu": cpu_s / reports * 1000}
    for key in INGEST_COUNTERS:
        stages[key.removesuffix("_s")] = (None if before is None or after is None
                                          else (after[key] - before[key]) / reports * 1000)
    parts = [stages["verify"], stages["open"], stages["commit"]]
    stages["transport"] = (None if None in parts
                           else stages["wall"] - sum(p for p in parts if p is not None))
    return {k: None if v is None else round(v, 4) for k, v in stages.items()}


def _mean_stages(stages: dict[str, dict[str, float | None]]) -> dict[str, float | None]:
    keys = next(iter(stages.values())).keys()
    mean: dict[str, float | None] = {}
    for key in keys:
        values = [s[key] for s in stages.values()]
        mean[key] = (None if any(v is None for v in values)
                     else round(float(np.mean([v for v in values if v is not None])), 4))
    return mean


def _join_figures(start: float, completed: list[float]) -> dict[str, Any]:
    """Joins' wall time, and joins per second over the first and the last third of them
    (equal rates: joins cost the same however many have joined). Each third's rate is
    completions over the time between its own first and last, so the first third does not
    carry the first joins' latency; meaningful when N is well above the joins in flight."""
    n = len(completed)
    third = n // 3
    figures: dict[str, Any] = {"joins_s": round(completed[-1] - start, 2) if n else 0.0,
                               "joins_per_s_first_third": None, "joins_per_s_last_third": None}
    if third >= 2:
        for name, span in (("first", completed[:third]), ("last", completed[-third:])):
            elapsed = span[-1] - span[0]
            figures[f"joins_per_s_{name}_third"] = (round((third - 1) / elapsed, 1)
                                                    if elapsed > 0 else None)
    return figures


async def _poll_cost(session: aiohttp.ClientSession, nodes: list[NodeProcess],
                     pids: dict[str, int], path: str, polls: int = 10) -> dict[str, float]:
    """CPU seconds one results poll costs each node (measured now, before the close)."""
    cost = {}
    for nd in nodes:
        c0 = cpu_seconds(pids[nd.name])
        for _ in range(polls):
            await api(session, nd, "GET", path)
        cost[nd.name] = (cpu_seconds(pids[nd.name]) - c0) / polls
    return cost


def _peak_rss_mb(pid: int | None) -> float | None:
    if pid is None:
        return None
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        return None
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--households", type=int, default=1000)
    parser.add_argument("--tasks", type=int, default=10)
    parser.add_argument("--committee", type=int, default=3, choices=(3, 5),
                        help="committee nodes k (threshold t = 1 for 3, 2 for 5)")
    parser.add_argument("--period", type=int, help="round length (default: sized to the load)")
    parser.add_argument("--concurrency", type=int, default=48, help="requests in flight")
    parser.add_argument("--in-flight", type=int, default=IN_FLIGHT,
                        help="households mid-report at once in the pipelined round")
    parser.add_argument("--join-concurrency", type=int,
                        help="joins in flight (default 32 direct, 4 through the relay)")
    parser.add_argument("--transport", choices=("direct", "relay", "both"), default="both",
                        help="how hubs talk: direct HTTP, a Mosquitto relay on loopback, or "
                             "both side by side (default)")
    parser.add_argument("--auth", choices=("channels", "signed", "both"), default="channels",
                        help="how households seal and authenticate reports: over channels "
                             "(default), HPKE + Ed25519 per report as before channels, or both "
                             "side by side")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--keep", action="store_true", help="keep the nodes' data dirs and logs")
    args = parser.parse_args()
    transports = ["direct", "relay"] if args.transport == "both" else [args.transport]
    auths = ["channels", "signed"] if args.auth == "both" else [args.auth]
    # The households are nodes: on serve's event loop (MPyC, too, runs on uvloop when it is
    # installed, as it is here: a backend dependency).
    runs = [uvloop.run(run(args, transport, auth)) for transport in transports
            for auth in auths]
    # The floor once the nodes are gone, so nothing else competes for the cores.
    floor = {**measure_floor(TASK, args.committee),
             **measure_http_floor(TASK, concurrency=args.concurrency)}
    for r in runs:
        r["floor_ratios"] = floor_ratios(r, floor)
        r["wall_over_floor_per_node"] = node_floor_ratios(r, floor)
    proof_costs = [measure(histogram_task(b), 1000, args.committee) for b in (6, 32)]
    if args.json:
        print(json.dumps({"runs": runs, "floor": floor, "proof_costs": proof_costs}, indent=2))
        return
    print_report(runs, floor, proof_costs)


def print_report(runs: list[dict[str, Any]], floor: dict[str, Any],
                 proof_costs: list[dict[str, Any]]) -> None:
    first = runs[0]
    print(f"{first['households']} households x {first['tasks']} tasks, period "
          f"{first['period_s']} s, {first['hpke_suite']}, k = {first['committee']}")
    rows: list[tuple[str, list[str], str]] = [
        ("client cost per report", [f"{r['client_ms_per_report']} ms" for r in runs], ""),
        ("accepted reports/s per committee node",
         [", ".join(str(v) for v in r["reports_per_s_per_node"].values()) for r in runs],
         _ratio(runs, lambda r: float(np.mean(list(r["reports_per_s_per_node"].values()))))),
        ("rejected envelopes", [str(r["rejected_envelopes"]) for r in runs], ""),
        ("round-close latency after period end",
         [f"{r['round_close_latency_s']} s" for r in runs],
         _ratio(runs, lambda r: r["round_close_latency_s"])),
        ("peak RSS per node",
         [", ".join(f"{v}" for v in r["peak_rss_mb"].values()) + " MiB" for r in runs], ""),
        ("broker CPU, sending + close", [f"{r['broker_cpu_s']} s" if "broker_cpu_s" in r
                                         else "-" for r in runs], ""),
        ("broker peak RSS", [f"{r['broker_peak_rss_mb']} MiB" if "broker_peak_rss_mb" in r
                             else "-" for r in runs], ""),
        ("released means match plaintext", [str(r["results_correct"]) for r in runs], ""),
        ("setup (joins + tasks, not timed)", [f"{r['setup_s']} s" for r in runs], ""),
        ("channel offers (setup, once a day)",
         [f"{r['channels_s']} s" if r["auth"] == "channels" else "-" for r in runs], ""),
    ]
    labels = [label(r, runs) for r in runs]
    header = ("", labels, f"{labels[1]}/{labels[0]}" if len(runs) == 2 else "")
    _print_rows([header, *rows])
    print()
    print(f"where the time goes, per report (ingest: mean of the {first['committee']} "
          "committee nodes); (ratio to the floor below)")
    _print_rows([("", labels, ""),
                 *[(name, [stage_cell(r, key) for r in runs], "") for name, key in STAGE_ROWS]])
    print()
    print_floor(floor)
    print_http_floor(floor)
    print(INGEST)
    print(END_TO_END.format(in_flight=first["in_flight"]))
    print()
    print_table(proof_costs)


def label(run: dict[str, Any], runs: list[dict[str, Any]]) -> str:
    """A run's column: its transport, and how it authenticates where the runs differ."""
    if len({r["auth"] for r in runs}) == 1:
        return str(run["transport"])
    if len({r["transport"] for r in runs}) == 1:
        return str(run["auth"])
    return f"{run['transport']}, {run['auth']}"


def _print_rows(rows: list[tuple[str, list[str], str]]) -> None:
    width = max(len(name) for name, _, _ in rows)
    cells = max(len(c) for _, values, _ in rows for c in values)
    for name, values, ratio in rows:
        print(f"{name:<{width}}  " + "  ".join(f"{v:<{cells}}" for v in values) + f"  {ratio}")


# (label, key): keys are stages_ms_per_report_mean entries, or the run's own figures.
STAGE_ROWS = [
    ("client: encode+prove+share+seal+sign+check ack", "client"),
    ("ingest windows, one node at a time", "windows"),
    ("ingest wall per report, each node", "wall_nodes"),
    ("ingest wall per report per node", "wall"),
    ("  transport", "transport"),
    ("  verify", "verify"),
    ("  open", "open"),
    ("  commit", "commit"),
    ("ingest CPU per report per node", "cpu"),
    ("close: latency after period end", "close"),
    ("close: committee compute, all nodes", "close_compute"),
    ("end to end: clients + ingest + close compute", "end_to_end"),
    ("end to end, all nodes at once (a later round)", "end_to_end_together"),
    ("  its window's CPU per report: nodes + sending", "together_cpu"),
    ("  CPU per report, all parts, that round", "together_cpu_all"),
    ("end to end, one upload per household (a third round)", "end_to_end_upload"),
    ("  its window's CPU per report: nodes + sending", "upload_cpu"),
    ("  CPU per report, all parts, that round", "upload_cpu_all"),
    ("end to end, one upload, pipelined (a fourth round)", "end_to_end_pipelined"),
    ("  its window's CPU per report: nodes + client", "pipelined_cpu"),
    ("  CPU per report, all parts, that round", "pipelined_cpu_all"),
    ("end to end, hubs in parallel (model)", "hubs_in_parallel"),
    ("joins (setup)", "joins"),
    ("joins/s, first third -> last third", "join_rates"),
]

INGEST = """\
ingest: the envelopes go to one node at a time (all of its envelopes concurrently), so each
  node has a core of its own and the sending client the other; ingest wall = the node's own
  window / the reports it accepted; the client signs the requests before the windows and
  checks the acks after them (client work, as each household does on its own hub)
transport = ingest wall - verify - open - commit (HTTP, JSON, the event loop, the core it
  shares with the client); its ratio is to the HTTP floor: a bare aiohttp server's wall per
  request; verify, open, commit: the node's own counters (status load.ingest), "-" where it
  has none; close compute = CPU time of each node from the close's earliest start until all
  results are in, less the benchmark's polling"""

END_TO_END = """\
end to end = clients + ingest + close compute, on this one machine: clients = all N
  households' client work one after the other on one core (seal, sign, check the acks);
  ingest = the sum of the nodes' windows; close compute = all nodes' CPU at close
end to end, all nodes at once = the same sum over a later round, whose envelopes go to
  every node at once (one window; the nodes and the sending client share both cores), as
  issue 13's table measured it; its window's CPU: all nodes' and the sending client's, per
  report (through the relay, not the broker's), and how many of the cores that kept busy
  (CPU over wall); all parts: that, the client's work before and after the window and the
  close compute: the CPU one value costs this machine
end to end, one upload per household = the same over a third round in which each household
  sends one request, to the committee node its hash picks, carrying its share for that
  node and its requests to the other two, which that node passes on in batches (what a
  household's node does: mpc_backend.node.forwarding); every node at once, as above
end to end, one upload, pipelined = one window + close compute, over a fourth round: one
  upload per household again, but each household seals its report, sends it and checks
  its acks as it goes ({in_flight} households in flight), so the client's work overlaps
  the nodes' ingest, as it does on a street of hubs and as MPyC's parties' input and
  compute share the cores; its window's CPU: all nodes' and all the client's work
hubs in parallel (model) = one household's client work + the slowest node's window + close
  compute: each hub on its own machine, modelled from per-node measurements on this one"""


def floor_ratios(r: dict[str, Any], floor: dict[str, Any]) -> dict[str, float | None]:
    """Each stage per report over its floor: client over K seals and its signatures; verify,
    open and commit over one Ed25519 verify, one HPKE open, a one-row commit (and the
    per-row cost at 48 rows a commit); ingest wall and CPU over the whole ingest floor."""
    stages = r["stages_ms_per_report_mean"]
    floors = {
        "client": client_floor_ms(floor, r["committee"], r["tasks"]),
        "verify": floor["ed25519_verify_us"] / 1000,
        "open": floor["hpke_open_us"] / 1000,
        "commit": floor["commit_1_row_us"] / 1000,
        "commit_batched": floor["commit_per_row_48_us"] / 1000,
        "wall": floor["ingest_floor_ms"],
        "wall_batched": floor["ingest_floor_batched_ms"],
        "cpu": floor["ingest_floor_ms"],
        # The HTTP floor is direct HTTP's; relayed reports travel otherwise.
        "transport": floor["http_wall_us"] / 1000 if r["transport"] == "direct" else 0,
    }
    figures = {**stages, "client": r["client_ms_per_report"]}
    return {key: (None if figures[key.removesuffix("_batched")] is None or not value
                  else round(figures[key.removesuffix("_batched")] / value, 2))
            for key, value in floors.items()}


def node_floor_ratios(r: dict[str, Any], floor: dict[str, Any]) -> dict[str, float | None]:
    """Each node's ingest wall per report (in its own window) over the ingest floor."""
    return {name: None if stages["wall"] is None
            else round(stages["wall"] / floor["ingest_floor_ms"], 2)
            for name, stages in r["stages_ms_per_report"].items()}


def stage_cell(r: dict[str, Any], key: str) -> str:
    ratios = r.get("floor_ratios", {})
    if key == "close":
        return f"{r['round_close_latency_s']} s"
    if key == "close_compute":
        nodes = ", ".join(f"{v:.3f}" for v in r["close_compute_s"].values())
        return f"{r['close_compute_total_s']:.3f} s ({nodes})"
    if key == "windows":
        return " + ".join(f"{w:.2f}" for w in r["ingest_windows_s"].values()) + \
            f" = {r['send_wall_s']:.2f} s"
    if key == "wall_nodes":
        over = r.get("wall_over_floor_per_node", {})
        cells = []
        for name, stages in r["stages_ms_per_report"].items():
            wall, x = stages["wall"], over.get(name)
            cells.append("-" if wall is None
                         else f"{wall:.3f}" + (f" ({x}x)" if x is not None else ""))
        return ", ".join(cells) + " ms"
    if key in ("end_to_end", "hubs_in_parallel"):
        return f"{r[key + '_s']:.3f} s"
    for mode in ("together", "upload", "pipelined"):  # the rounds with every node at once
        t = r[mode]
        if key == f"end_to_end_{mode}" and mode == "pipelined":
            return (f"{r[key + '_s']:.3f} s ({t['send_wall_s']:.2f} + "
                    f"{t['close_compute_total_s']:.3f})")
        if key == f"end_to_end_{mode}":
            return (f"{r[key + '_s']:.3f} s ({t['client_wall_s']:.2f} + "
                    f"{t['send_wall_s']:.2f} + {t['close_compute_total_s']:.3f})")
        if key == f"{mode}_cpu":
            return (f"{t['send_node_cpu_ms_per_report']:.3f} + "
                    f"{t['send_client_cpu_ms_per_report']:.3f} ms ({t['send_cores_busy']:.2f} "
                    "cores busy)")
        if key == f"{mode}_cpu_all":
            return f"{r[mode + '_cpu_ms_per_report']:.3f} ms"
    if key == "joins":
        return f"{r['joins_s']} s"
    if key == "join_rates":
        return f"{r['joins_per_s_first_third'] or '-'} -> {r['joins_per_s_last_third'] or '-'}"
    value = r["client_ms_per_report"] if key == "client" else r["stages_ms_per_report_mean"][key]
    if value is None:
        return "-"
    cell = f"{value:.3f} ms"
    ratio, batched = ratios.get(key), ratios.get(f"{key}_batched")
    if ratio is not None:
        cell += f" ({ratio}x" + (f", {batched}x at 48/commit)" if batched is not None else ")")
    return cell


def _ratio(runs: list[dict[str, Any]], figure: Any) -> str:
    if len(runs) != 2:
        return ""
    first, second = figure(runs[0]), figure(runs[1])
    return f"{second / first:.2f}x" if first else ""


if __name__ == "__main__":
    main()
