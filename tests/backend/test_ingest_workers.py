"""Ingest workers (``serve --ingest-workers N``): real node processes, one of them on
PostgreSQL with two workers sharing its address, and what stays true with them."""

from __future__ import annotations

import asyncio
import json
import math
import os
import signal
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mpc_backend.arith import FieldRNG
from mpc_backend.crypto import (
    b64url_decode,
    load_keys,
    verify_envelope,
)
from mpc_backend.crypto import channel as ch
from mpc_backend.node.channels import offer_envelope
from mpc_backend.node.config import Timing
from mpc_backend.node.errors import Unprocessable
from mpc_backend.node.household import seal_report, shares_envelope
from mpc_backend.node.peers import PeerClient
from mpc_backend.node.roster import Roster, verify_roster
from mpc_backend.storage import ChannelRecord, PostgresStorage
from tests.backend.conftest import PERIOD as IN_PROCESS_PERIOD
from tests.backend.conftest import FakeClock, LiveNode
from tests.backend.nodes import Cluster, NodeProcess, allow_loopback_sockets, cli, wait_for
from tests.e2e.conftest import PERIOD, TASK_ARGS, TIMING
from tests.postgres import PostgresServer, postgres_server  # noqa: F401 - a fixture

VALUES = [20.5, 21.25, 19.75, 22.0, 18.5]  # the founder's, then the other four's
SENDS_TO_WORKERS = 4  # per household: a share, then resends (duplicates), each a new connection


def test_ingest_workers_need_postgresql(tmp_path: Path) -> None:
    node = NodeProcess("solo", tmp_path / "solo", 1, tmp_path / "solo.log")
    node.init()
    proc = cli("serve", "--data-dir", str(node.data_dir), "--ingest-workers", "2", check=False)
    assert proc.returncode == 1
    assert "--ingest-workers needs PostgreSQL storage" in proc.stderr
    assert not (node.data_dir / "node.lock").exists(), "refused before anything started"


async def test_a_share_of_a_round_marked_closing_elsewhere_is_refused(
        trio: list[LiveNode], clock: FakeClock) -> None:
    """Another process (a worker, or the main process seen from a worker) marked the round
    closing in the shared storage: this process refuses the share as outside its window
    (and so never acknowledges it), though its own memory knows nothing of the close."""
    household, member = trio[0].node.ctx, trio[1].node
    round_id = int(clock() // IN_PROCESS_PERIOD)
    spec = household.roster.task("temp").spec  # type: ignore[union-attr]
    committee = household.roster.committee("temp", round_id)
    sealed = seal_report(household.keys, household.federation_id, spec, round_id, committee,
                         20.0, FieldRNG())
    ct = sealed[[m.node_id for m in committee].index(member.ctx.node_id)]
    await member.ctx.storage.mark_closing("temp", round_id, clock())
    assert ("temp", round_id) not in member.rounds.closing
    envelope = shares_envelope(household.keys, household.federation_id,
                               [("temp", round_id, ct)], now=clock())
    with pytest.raises(Unprocessable) as err:
        await member.ingest.handle_shares(envelope, "test")
    assert err.value.code == "outside_round_window"
    assert await member.ctx.storage.held_senders("temp", round_id) == []


# -- a committee whose founder takes shares in two worker processes -------------------------
@pytest.fixture(scope="module")
def street(tmp_path_factory: pytest.TempPathFactory,
           postgres_server: PostgresServer) -> Iterator[Cluster]:  # noqa: F811
    """The founder (PostgreSQL, two ingest workers) and two members compute; two households
    only contribute. Every join reaches the founder through a worker's forwarding."""
    allow_loopback_sockets()
    cluster = Cluster(tmp_path_factory.mktemp("workers"))
    try:
        founder = cluster.add("founder", *TIMING, "--database-url",
                              postgres_server.database("workers"))
        founder.serve_args = ("--ingest-workers", "2")
        for name in ("member1", "member2"):
            cluster.add(name, *TIMING)
        for name in ("household1", "household2"):
            cluster.add(name, "--input-only", *TIMING)
        for node in cluster.nodes:
            node.start()
        cluster.federate("Worker Street")
        founder.cli("task", "add", "--metric", "indoor temperature", "--id", "temp", *TASK_ARGS)
        yield cluster
    finally:
        cluster.close()


def workers_of(node: NodeProcess) -> list[dict[str, Any]]:
    workers: list[dict[str, Any]] = node.api("GET", "/status")[1]["load"]["ingest_workers"]
    return workers


def next_round() -> int:
    now = time.time()
    time.sleep((math.floor(now / PERIOD) + 1) * PERIOD - now + 0.3)
    return int(time.time() // PERIOD)


def released(node: NodeProcess, round_id: int) -> dict[str, Any]:
    def result() -> dict[str, Any] | None:
        results = node.cli_json("results", "--task", "temp", "--limit", "5")["results"]
        return next((r for r in results if r["round"] == round_id), None)

    found: dict[str, Any] = wait_for(result, (round_id + 1) * PERIOD - time.time() + 25,
                                     what=f"round {round_id} on {node.name}")
    return found


async def stored_roster(url: str) -> Roster:
    storage = PostgresStorage(url)
    await storage.open()
    try:
        return verify_roster(await storage.get_roster()).roster
    finally:
        await storage.close()


async def send_as(household: NodeProcess, roster: Roster, round_id: int, value: float,
                  founder_id: str) -> None:
    """``household``'s share of ``value`` to each seat (its keys, read from its data dir),
    to the founder several times, each time on a new connection: the kernel picks a worker
    per connection. To the founder over a channel the household offers it first (the offer
    goes through a worker to the main process, which stores it in the shared database; the
    workers find it there)."""
    keys = load_keys(household.data_dir)
    spec = roster.tasks_by_id["temp"].spec
    committee = roster.committee("temp", round_id)
    timing = Timing(peer_timeout_s=5.0, peer_attempts=1)
    founder = roster.member(founder_id)
    assert founder is not None
    cid, secret, expires = ch.new_channel_id(), ch.new_secret(), int(time.time()) + 3600
    record = ChannelRecord("out", founder_id, cid, secret, expires)
    client = PeerClient(timing, keys)
    await client.start()
    try:
        accepted = await client.post(founder.url or "", "/peer/v1/channel", lambda: (
            offer_envelope(keys, roster.federation_id, founder, record, time.time())))
    finally:
        await client.close()
    assert accepted == {"channel": cid, "expires": expires}
    channel = ch.derive(secret, roster.federation_id, keys.node_id, founder_id, cid, expires)
    sealed = seal_report(keys, roster.federation_id, spec, round_id, committee, value,
                         FieldRNG(), [channel if m.node_id == founder_id else None
                                      for m in committee])
    for member, ct in zip(committee, sealed, strict=True):
        over = channel if member.node_id == founder_id else None
        for _ in range(SENDS_TO_WORKERS if over else 1):
            client = PeerClient(timing, keys)
            await client.start()
            try:
                answer = await client.post(
                    member.url or "", "/peer/v1/shares", lambda c=ct, o=over: shares_envelope(
                        keys, roster.federation_id, [("temp", round_id, c)], signed=o is None),
                    channel=over)
            finally:
                await client.close()
            if over is not None:
                assert ch.check_ack_mac(over, answer["ack"], b64url_decode(answer["mac"]))
                ack = answer["ack"]
            else:
                ack = verify_envelope(answer["ack"], lambda _id, m=member: m.signing_public,
                                      "shares-ack", roster.federation_id, 60)
            assert ack["household"] == keys.node_id


@pytest.mark.slow
@pytest.mark.postgres
def test_slow_bodies_hold_no_upstream_slot_and_the_callers_address_reaches_the_log(
        street: Cluster) -> None:
    """An outsider declares bodies on 300 connections (more than a worker once had upstream
    connections) and never sends them: the workers hold those themselves, so a normal
    request still goes through to the main process at once. The main process logs the
    caller's address (here 127.0.0.5) as the worker passed it on, never one the caller
    claims in the same header. Shares from an unknown sender without signature headers are
    refused by the worker itself (from memory: no lookup, nothing forwarded)."""
    founder = street.nodes[0]
    host, port = founder.url.removeprefix("http://").rsplit(":", 1)

    async def post(request: bytes) -> bytes:
        reader, writer = await asyncio.open_connection(host, int(port),
                                                       local_addr=("127.0.0.5", 0))
        writer.write(request)
        answer = await asyncio.wait_for(reader.read(), 10)
        writer.close()
        return answer

    async def scenario() -> tuple[float, int, bytes, bytes]:
        held = []
        for _ in range(300):
            _reader, writer = await asyncio.open_connection(host, int(port))
            writer.write(b"POST /peer/v1/join HTTP/1.1\r\nHost: x\r\nContent-Type: "
                         b"application/json\r\nContent-Length: 50000\r\n\r\n{")
            held.append(writer)
        await asyncio.sleep(0.5)  # every request is in a worker, waiting for its body
        try:
            started = time.monotonic()
            status = await asyncio.to_thread(founder.api, "GET", "/status")
            elapsed = time.monotonic() - started
            # A made-up member from another loopback address, claiming to be elsewhere.
            forwarded = await post(
                b"POST /peer/v1/roster/fetch HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                b"Hearth-Sender: made-up-sender\r\nHearth-Time: "
                + str(int(time.time())).encode() + b"\r\nHearth-Digest: AAAA\r\n"
                b"Hearth-Signature: AAAA\r\nHearth-Forwarded-For: guess 10.9.9.9\r\n"
                b"Content-Length: 2\r\n\r\n{}")
            unsigned = await post(
                b"POST /peer/v1/shares HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                b"Hearth-Sender: unsigned-sender\r\nContent-Length: 2\r\n\r\n{}")
            return elapsed, status[0], forwarded, unsigned
        finally:
            for writer in held:
                writer.close()

    elapsed, code, forwarded, unsigned = asyncio.run(scenario())
    assert code == 200 and elapsed < 5, (code, elapsed)
    assert forwarded.startswith(b"HTTP/1.1 403"), forwarded[:200]
    assert unsigned.startswith(b"HTTP/1.1 403"), unsigned[:200]
    log_text = wait_for(lambda: founder.log_text() if "made-up-sender (127.0.0.5)"
                        in founder.log_text() else None, 5, what="the refusal's log line")
    assert "10.9.9.9" not in log_text
    refusals = [line for line in log_text.splitlines() if "unsigned-sender" in line]
    assert len(refusals) == 1 and "[ingest worker" in refusals[0], refusals


@pytest.mark.slow
@pytest.mark.postgres
def test_workers_take_shares_forward_the_rest_and_come_back(
        street: Cluster, postgres_server: PostgresServer) -> None:  # noqa: F811
    founder, *others = street.nodes
    workers = workers_of(founder)
    assert [w["worker"] for w in workers] == [1, 2] and all(w["restarts"] == 0 for w in workers)
    # The joins above and the status calls here went through a worker to the main process.
    status = founder.cli_json("status")
    assert status["federation"]["members"] == 3 and status["federation"]["households"] == 2

    database = json.loads((founder.data_dir / "config.json").read_text())["database_url"]
    roster = asyncio.run(stored_roster(database))
    round_id = next_round()
    token = (founder.data_dir / "api_token").read_text().strip()
    stream = urllib.request.urlopen(  # loopback, through a worker
        urllib.request.Request(f"{founder.url}/api/v1/results/stream?task=temp",
                               headers={"Authorization": f"Bearer {token}"}),
        timeout=PERIOD + 30)
    answer = founder.cli_json("contribute", "--task", "temp", "--value", str(VALUES[0]))
    assert answer["round"] == round_id and answer["acknowledged_by"] == 3

    async def send_all() -> None:
        await asyncio.gather(*(send_as(node, roster, round_id, value, founder.node_id)
                               for node, value in zip(others, VALUES[1:], strict=True)))

    asyncio.run(send_all())
    # Every envelope to the founder was taken by a worker, both workers took some of the 16
    # connections (a 2 ** -15 chance that one took all); counters come once a second.
    served = wait_for(lambda: [w["ingest"]["envelopes"] for w in workers_of(founder)]
                      if sum(w["ingest"]["envelopes"] for w in workers_of(founder))
                      == len(others) * SENDS_TO_WORKERS else None, 5, what="workers' counters")
    assert all(served), served

    # Closing ran through the workers too: members asked the founder for its statement.
    for node in (founder, others[0]):
        result = released(node, round_id)
        assert result["status"] == "released", result
        assert result["contributors"] == len(VALUES)
        assert result["statistics"]["mean"] == pytest.approx(sum(VALUES) / len(VALUES),
                                                             abs=0.01)
    event = b""
    while b"event: result" not in event:  # streamed through the worker as it landed
        event += stream.readline()
    stream.close()

    # A worker that dies is started again, and ingest goes on.
    victim = workers_of(founder)[0]
    os.kill(victim["pid"], signal.SIGKILL)

    def restarted() -> bool:
        try:
            return workers_of(founder)[0]["restarts"] == 1
        except ConnectionResetError:  # queued at the killed worker's socket as it died
            return False

    wait_for(restarted, 10, what="the worker's restart")
    assert workers_of(founder)[0]["pid"] != victim["pid"]
    assert "ingest worker 1 (pid" in founder.log_text()
    round_id = next_round()
    for node, value in zip(street.nodes, VALUES, strict=True):
        answer = node.cli_json("contribute", "--task", "temp", "--value", str(value))
        assert answer["round"] == round_id and answer["acknowledged_by"] == 3, answer
    assert released(others[1], round_id)["contributors"] == len(VALUES)

    pids = [w["pid"] for w in workers_of(founder)]
    assert founder.stop() == 0
    assert not any(Path(f"/proc/{pid}").exists() for pid in pids), "workers stop with the node"
