"""A neighbourhood of real homes: every household's node in its own network namespace.

The relay broker (Mosquitto, TLS with its own CA) runs in a ``relay`` namespace at
10.99.0.1; each home is joined to it by its own veth pair and the relay namespace
does not forward, so a home reaches the broker and nothing else: no home can
open a connection to another (``tests/netns.py``). Nodes and their CLI run with
``ip netns exec``; each node listens on its own namespace's 127.0.0.1 only.

One federation of four homes is founded over the relay with the CLI; then rounds
release exact statistics (compared with numpy on the plaintext values), the
broker crashes and comes back mid-round, a member is away for a whole round
and catches up, and the broker refuses foreign or missing credentials. Tests run
in file order on the one federation; each restores what it stopped.
"""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from mpc_backend.protocol import Member, select_committee
from mpc_backend.relay.endpoint import inbox_filter, inbox_topic
from mpc_backend.relay.settings import load_relay_settings
from tests.backend.nodes import (
    REPO,
    Cluster,
    NodeProcess,
    allow_loopback_sockets,
    free_port,
    wait_for,
)
from tests.netns import (
    CONNECTED,
    REFUSED,
    TIMEOUT,
    UNREACHABLE,
    Neighbourhood,
    exec_prefix,
    inside,
    listening,
    neighbourhood,
    probe,
)
from tests.relay_broker import Broker

from .conftest import PERIOD, TASK_ARGS, TIMING
from .test_federation import check_statistics, wait_results

# relay: Debian's mosquitto runs on the host, so scripts/test runs this in its host run.
pytestmark = [pytest.mark.slow, pytest.mark.relay]

HOUSEHOLDS = 4
NOT_AUTHORIZED, BAD_CREDENTIALS = 0x87, 0x86
BROKER_DOWN_S = 2.0
VALUES = {
    "street": [21.373, 18.931, 24.617, 19.482],
    "broker_crash": [20.514, 23.106, 17.442, 21.958],
    "away": [22.222, 18.181, 20.202],  # one member is offline for this round
}


@dataclass(eq=False)
class HomeNode(NodeProcess):
    """A node in its home's namespace: ``serve`` and the CLI through ``ip netns exec``,
    the test's own HTTP calls from a thread moved into that namespace."""

    ns: str = ""

    def start(self, timeout: float = 30.0) -> None:
        with inside(self.ns):  # the readiness probe reaches this namespace's 127.0.0.1
            super().start(timeout)

    def api(self, method: str, path: str, body: Any = None, token: str | None = None,
            raw: bytes | None = None) -> tuple[int, Any]:
        with inside(self.ns):
            return super().api(method, path, body, token, raw)

    def status(self) -> dict[str, Any]:
        code, answer = self.api("GET", "/status")
        assert code == 200, answer
        return answer  # type: ignore[no-any-return]

    def mailbox(self) -> str:
        settings = load_relay_settings(self.data_dir)
        assert settings is not None, f"{self.name} has no relay.json"
        return settings.account.username


@dataclass
class Street:
    hood: Neighbourhood
    broker: Broker
    cluster: Cluster

    @property
    def nodes(self) -> list[HomeNode]:
        return self.cluster.nodes  # type: ignore[return-value]


@pytest.fixture(scope="module")
def street(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Street]:
    allow_loopback_sockets()
    root: Path = tmp_path_factory.mktemp("neighbourhood")
    with neighbourhood(HOUSEHOLDS) as hood, ExitStack() as stack:
        broker = Broker(root / "relay", host=hood.broker_address, tls=True, netns=hood.relay_ns)
        broker.start()
        stack.callback(broker.stop)
        cluster = Cluster(root)
        cluster.broker = broker
        stack.callback(cluster.close)
        for i, home in enumerate(hood.homes):
            name = f"home{i}"
            node = HomeNode(name, root / name, free_port(), root / f"{name}.log",
                            wrap=exec_prefix(home.ns), ns=home.ns)
            node.init(*TIMING)
            cluster.nodes.append(node)
        for node in cluster.nodes:
            node.start()
        # The founder's node provisions its own broker account with the admin file,
        # prints an invite (with a fresh account) per newcomer; each joins with it.
        cluster.federate("Rowan Close", "--relay-admin", str(broker.admin_file))
        for i, task in enumerate(VALUES):
            cluster.nodes[i % HOUSEHOLDS].cli("task", "add", "--metric", "indoor temperature",
                                              "--id", task, *TASK_ARGS)
        yield Street(hood, broker, cluster)


def contribute(nodes: list[HomeNode], task: str, values: list[float],
               round_id: int | None = None) -> tuple[int, list[str]]:
    """Every node's value, all at once, just after round ``round_id`` (default: the next
    one) starts; returns (round, committee)."""
    if round_id is None:
        round_id = current_round() + 1
    wait = round_id * PERIOD + 0.3 - time.time()
    assert wait > 0, f"round {round_id} has begun already"
    time.sleep(wait)
    with ThreadPoolExecutor(len(nodes)) as pool:
        answers = list(pool.map(
            lambda pair: pair[0].cli_json("contribute", "--task", task, "--value", str(pair[1])),
            zip(nodes, values, strict=True)))
    for answer in answers:
        assert answer["status"] == "accepted", answer
        assert answer["acknowledged_by"] == 3, answer
    rounds = {a["round"] for a in answers}
    committees = {tuple(a["committee"]) for a in answers}
    assert len(rounds) == 1 and len(committees) == 1, "contributions straddled a round"
    assert rounds == {round_id}, rounds
    return rounds.pop(), list(committees.pop())


def current_round() -> int:
    return math.floor(time.time() / PERIOD)


# -- 1. the topology -------------------------------------------------------------

def test_homes_reach_the_broker_and_never_each_other(street: Street) -> None:
    hood, homes, nodes = street.hood, street.hood.homes, street.nodes
    probe_port = free_port()
    pairs = [(a, b) for a in range(HOUSEHOLDS) for b in range(HOUSEHOLDS) if a != b]
    with ExitStack() as stack:
        # Every home listens on all its addresses, so a failed connect below is the
        # network refusing the path, not a missing listener.
        for home in homes:
            stack.enter_context(listening(home.ns, probe_port))
        controls = probe(
            [(hood.relay_ns, home.address, probe_port) for home in homes]
            + [(home.ns, hood.broker_address, street.broker.port) for home in homes]
            + [(home.ns, home.address, probe_port) for home in homes])
        assert controls == [CONNECTED] * (3 * HOUSEHOLDS), controls

        across = probe([(homes[a].ns, homes[b].address, probe_port) for a, b in pairs]
                       + [(homes[a].ns, homes[b].address, nodes[b].port) for a, b in pairs])
        for (a, b), outcome in zip(pairs * 2, across, strict=True):
            # Nothing answers at all: no RST (that would be a host), no connection.
            assert outcome in (TIMEOUT, UNREACHABLE), (homes[a].ns, homes[b].address, outcome)
        # A node's 127.0.0.1 is its home's own: home a's loopback has nobody at b's port.
        loopback = probe([(homes[a].ns, "127.0.0.1", nodes[b].port) for a, b in pairs])
        assert loopback == [REFUSED] * len(pairs), loopback

        # The control: with forwarding on, the same connections go through, so it is
        # the relay namespace not forwarding that keeps homes apart.
        assert not hood.forwarding()
        hood.set_forwarding(True)
        try:
            forwarded = probe([(homes[a].ns, homes[b].address, probe_port) for a, b in pairs])
        finally:
            hood.set_forwarding(False)
        assert forwarded == [CONNECTED] * len(pairs), forwarded
        assert not hood.forwarding()


# -- 2. a federation through the broker -------------------------------------------

def test_federation_over_the_relay_releases_exact_statistics(street: Street) -> None:
    nodes, broker = street.nodes, street.broker
    for node in nodes:
        status = node.status()
        assert status["federation"]["members"] == HOUSEHOLDS
        assert status["relay"]["connected"] is True, status["relay"]
        assert status["relay"]["url"] == broker.endpoint.url == f"mqtts://10.99.0.1:{broker.port}"
        assert status["relay"]["mailbox"] == node.mailbox()
        # Nobody has an address another hub could connect to: the roster names mailboxes.
        assert all(m["url"] is None and m["mailbox"] for m in status["members"])
    # The broker saw each member's account connect from that member's own home.
    log = broker.log_path.read_text(errors="replace")
    for node, home in zip(nodes, street.hood.homes, strict=True):
        assert re.search(rf"New client connected from {re.escape(home.address)}:\d+ as "
                         rf"{re.escape(node.mailbox())} ", log), (node.name, home.address)

    values = VALUES["street"]
    round_id, committee = contribute(nodes, "street", values)
    assert len(committee) == 3
    results = wait_results(nodes, "street", round_id)
    for result in results:
        check_statistics(result, values)
    signers = {tuple(r["signed_by"]) for r in results}
    assert len(signers) == 1, "every member holds the same co-signed result"
    assert len(signers.pop()) >= 2, "signed by t + 1 committee members"


# -- 3. the broker crashes mid-round ----------------------------------------------

def test_round_survives_the_broker_killed_and_restarted_mid_round(street: Street) -> None:
    nodes, broker = street.nodes, street.broker
    values = VALUES["broker_crash"]
    round_id, _ = contribute(nodes, "broker_crash", values)
    before = {n.name: n.status()["relay"]["reconnects"] for n in nodes}
    broker.kill()  # SIGKILL: no goodbye, nothing saved since the last autosave
    time.sleep(BROKER_DOWN_S)  # every node loses its connection; first retries fail
    broker.start()
    assert time.time() < (round_id + 1) * PERIOD, "the broker came back after the round ended"
    for result in wait_results(nodes, "broker_crash", round_id):
        check_statistics(result, values)
    for node in nodes:
        relay = wait_for(lambda n=node: (r := n.status()["relay"])["connected"] and r, 10,
                         what=f"{node.name} back on the relay")
        assert relay["reconnects"] > before[node.name]
    starts = re.findall(r"mosquitto version \S+ running", broker.log_path.read_text())
    assert len(starts) == 2, "one broker, started at setup and again after the crash"


# -- 4. a member away for a whole round -------------------------------------------

def test_member_offline_for_a_round_gets_its_result_on_return(street: Street) -> None:
    nodes = street.nodes
    members = [Member(m["node_id"], m["capacity"], m["input_only"])
               for m in nodes[0].status()["members"]]
    # The round ahead, with time to stop the member before it starts.
    round_id = current_round() + (1 if (current_round() + 1) * PERIOD - time.time() > 3 else 2)
    committee = select_committee(members, "away", round_id, 3)
    away = next(n for n in nodes if n.node_id not in committee)  # it cannot close the round
    present = [n for n in nodes if n is not away]
    assert away.stop() == 0
    try:
        _, got_committee = contribute(present, "away", VALUES["away"], round_id)
        assert got_committee == committee
        results = wait_results(present, "away", round_id)
        for result in results:
            check_statistics(result, VALUES["away"])
        signed_by = results[0]["signed_by"]
        online = {m["node_id"]: m["online"] for m in present[0].status()["members"]}
        assert online[away.node_id] is False
        assert current_round() > round_id, "the member was away for the whole round"
    finally:
        away.start()
    caught_up = wait_results([away], "away", round_id)[0]
    check_statistics(caught_up, VALUES["away"])
    assert caught_up["signed_by"] == signed_by, "the committee's co-signed result, as sent"
    assert away.node_id not in caught_up["signed_by"]


# -- 5. the broker refuses what is not a member's own -----------------------------

_MQTT_ATTEMPTS = r"""
import asyncio, json, ssl, sys
import aiomqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

args = json.loads(sys.argv[1])
tls = ssl.create_default_context(cadata=args["ca"])

def code(value):
    return int(getattr(value, "value", value))

async def attempt(username, password, identifier, topics):
    properties = Properties(PacketTypes.CONNECT)
    properties.SessionExpiryInterval = 7 * 24 * 3600  # keeps the member's queued session
    client = aiomqtt.Client(args["host"], args["port"], username=username, password=password,
                            identifier=identifier, protocol=aiomqtt.ProtocolVersion.V5,
                            clean_start=False, properties=properties, tls_context=tls,
                            timeout=5)
    try:
        async with client:
            return {"connected": True,
                    "subscribe": [code((await client.subscribe(t, qos=1))[0]) for t in topics]}
    except aiomqtt.MqttCodeError as err:
        return {"connected": False, "rc": code(err.rc) if err.rc is not None else None,
                "error": str(err)}

async def main():
    out = {}
    for name, (username, password, identifier, topics) in args["attempts"].items():
        out[name] = await attempt(username, password, identifier, topics)
    print(json.dumps(out))

asyncio.run(main())
"""


def mqtt_attempts(ns: str, street: Street,
                  attempts: dict[str, tuple[str | None, str | None, str, list[str]]]
                  ) -> dict[str, Any]:
    """MQTT connections from inside namespace ``ns``, as a hub there would make them."""
    endpoint = street.broker.endpoint
    arg = json.dumps({"host": endpoint.host, "port": endpoint.port, "ca": endpoint.ca_pem,
                      "attempts": attempts})
    proc = subprocess.run([*exec_prefix(ns), sys.executable, "-c", _MQTT_ATTEMPTS, arg],
                          capture_output=True, text=True, timeout=60, cwd=REPO,
                          env={**os.environ, "PYTHONPATH": str(REPO)}, check=False)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)  # type: ignore[no-any-return]


def test_broker_refuses_missing_wrong_and_foreign_credentials(street: Street) -> None:
    nodes = street.nodes
    me, other = nodes[3], nodes[2]
    mine = load_relay_settings(me.data_dir)
    theirs = load_relay_settings(other.data_dir)
    assert mine is not None and theirs is not None
    federation = me.status()["federation"]["id"]
    own, foreign = mine.account, theirs.account
    assert own.username != foreign.username
    # Its node is stopped, so the test's own valid connection takes over no live session.
    assert me.stop() == 0
    try:
        outcome = mqtt_attempts(me.ns, street, {
            "no credentials": (None, None, "a-stranger", []),
            "wrong password": (own.username, "not-the-password", own.username, []),
            "another member's name": (foreign.username, own.password, foreign.username, []),
            "another member's client id": (own.username, own.password, foreign.username, []),
            "its own account": (own.username, own.password, own.username, [
                inbox_topic(federation, foreign.username), inbox_filter(federation),
                f"hearth/{federation}/#", "#", inbox_topic(federation, own.username)]),
        })
    finally:
        me.start()
    for what in ("no credentials", "wrong password", "another member's name",
                 "another member's client id"):
        refused = outcome[what]
        assert refused["connected"] is False, (what, refused)
        # A CONNACK refusal from the broker (mosquitto 2.0 says "not authorised" to all).
        assert refused["rc"] in (NOT_AUTHORIZED, BAD_CREDENTIALS), (what, refused)
    accepted = outcome["its own account"]
    assert accepted["connected"] is True, accepted
    # Another member's inbox, every inbox, the federation, everything: refused; its own: QoS 1.
    assert accepted["subscribe"] == [NOT_AUTHORIZED] * 4 + [1], accepted
    log = street.broker.log_tail(400)
    assert log.count("disconnected, not authorised") >= 4
    wait_for(lambda: me.status()["relay"]["connected"], 10, what=f"{me.name} back on the relay")
