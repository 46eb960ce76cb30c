"""Nodes on a relay: what each error path says, what the broker may not do to a node, and a
node that loses its broker and gets it back.

Three real ``mpc-backend serve`` processes federated through a real Mosquitto on loopback,
plus a newcomer that is not in the federation yet. Raw MQTT clients play the broker's other
users: a member's spare account sending hand-made frames, as a modified node could.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiomqtt
import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from mpc_backend.crypto import INVITE_PREFIX, NodeKeys, b64url_decode, b64url_encode, load_keys
from mpc_backend.crypto.encoding import canonical_json
from mpc_backend.crypto.envelope import sign_envelope
from mpc_backend.crypto.sealing import seal_share
from mpc_backend.node.peers import request_headers
from mpc_backend.node.roster import MemberInfo
from mpc_backend.relay.endpoint import BrokerAccount, inbox_topic
from mpc_backend.relay.frames import decode_frame, encode_request
from mpc_backend.relay.provision import DynsecAdmin
from mpc_backend.relay.sealed import answer_aad, request_aad
from tests.backend.nodes import Cluster, NodeProcess, allow_loopback_sockets, wait_for
from tests.relay_broker import Broker, provision, running_broker

pytestmark = [pytest.mark.relay, pytest.mark.slow]

FETCH = "/peer/v1/roster/fetch"
_DEEP = b"[" * 15_000
POISON = b"HRL1" + len(_DEEP).to_bytes(4, "big") + _DEEP


@pytest.fixture(scope="module")
def street(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    allow_loopback_sockets()
    root: Path = tmp_path_factory.mktemp("relay-node")
    with running_broker(root / "relay") as broker:
        cluster = Cluster(root)
        cluster.broker = broker
        try:
            for i in range(3):
                cluster.add(f"house{i}", "--peer-timeout", "1.5", "--peer-attempts", "2",
                            "--takeover", "4")
            for node in cluster.nodes:
                node.start()
            cluster.federate("Relay Row", "--relay-admin", str(broker.admin_file))
            cluster.add("newcomer").start()
            yield cluster
        finally:
            cluster.close()


def federation_id(street: Cluster) -> str:
    return str(street.nodes[0].cli_json("status")["federation"]["id"])


def mailbox_of(street: Cluster, node: NodeProcess) -> str:
    members = street.nodes[0].cli_json("status")["members"]
    return str(next(m["mailbox"] for m in members if m["node_id"] == node.node_id))


def client(broker: Broker, account: BrokerAccount) -> aiomqtt.Client:
    return aiomqtt.Client(broker.endpoint.host, broker.endpoint.port, username=account.username,
                          password=account.password, identifier=account.username,
                          protocol=aiomqtt.ProtocolVersion.V5)


async def exchange(broker: Broker, account: BrokerAccount, fed: str, to: str,
                   frames: list[tuple[bytes, bytes | None]], wait_s: float = 3.0,
                   ) -> list[tuple[int, bytes, bool]]:
    """Publish (frame, correlation) pairs to inbox ``to`` as ``account``; the answers
    (status, body, sealed) that came back within ``wait_s``, in arrival order."""
    answers: list[tuple[int, bytes, bool]] = []
    inbox = inbox_topic(fed, account.username)
    async with client(broker, account) as mqtt:
        await mqtt.subscribe(inbox, qos=1)
        for payload, correlation in frames:
            props = Properties(PacketTypes.PUBLISH)
            if correlation is not None:
                props.ResponseTopic = inbox
                props.CorrelationData = correlation
            await mqtt.publish(inbox_topic(fed, to), payload, qos=1, properties=props)

        async def collect() -> None:
            async for message in mqtt.messages:
                frame = decode_frame(bytes(message.payload))  # type: ignore[arg-type]
                answers.append((frame.status, frame.body, frame.sealed))

        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(collect(), wait_s)
    return answers


def signed_fetch(keys: NodeKeys, fed: str, to: MemberInfo | None = None) -> bytes:
    """A roster fetch signed with ``keys``; sealed to ``to`` as a node would seal it."""
    body = json.dumps(sign_envelope(keys, "roster-fetch", fed, {}, now=time.time()),
                      separators=(",", ":")).encode()
    if to is not None:
        body = seal_share(to.hpke_public, to.hpke_suite, body,
                          request_aad(fed, FETCH, keys.node_id, to.node_id))
    return encode_request(FETCH, request_headers(keys, FETCH, body, time.time()), body,
                          sealed=to is not None)


def opened(answer: tuple[int, bytes, bool], keys: NodeKeys, fed: str, responder: str,
           frame: bytes) -> tuple[int, dict[str, Any]]:
    """An answer sealed to ``keys`` for the request ``frame``, opened: every answer to a
    sealed request from a member is sealed, refusals too (bound to their status)."""
    status, body, sealed = answer
    assert sealed, "an answer to a member's sealed request travels sealed"
    signature = decode_frame(frame).headers["Hearth-Signature"]  # type: ignore[index]
    plain = keys.open_share(body, answer_aad(fed, FETCH, responder, keys.node_id, signature,
                                             status))
    return status, json.loads(plain)


def founder_record(street: Cluster) -> MemberInfo:
    """The founder's roster record: its public keys and mailbox."""
    founder = street.nodes[0]
    return MemberInfo.of_keys(load_keys(founder.data_dir), founder.name, None, 1.0, False,
                              mailbox_of(street, founder))


def test_members_have_mailboxes_and_no_urls(street: Cluster) -> None:
    status = street.nodes[1].cli_json("status")
    assert status["relay"]["connected"] is True and status["relay"]["last_error"] is None
    assert status["relay"]["url"] == street.broker.endpoint.url
    assert all(m["url"] is None and m["mailbox"].startswith("h-") for m in status["members"])
    assert len({m["mailbox"] for m in status["members"]}) == 3
    text = street.nodes[1].cli("status").stdout
    assert f"relay {street.broker.endpoint.url}: connected since " in text
    relay_file = street.nodes[1].data_dir / "relay.json"
    assert relay_file.stat().st_mode & 0o777 == 0o600  # it holds the broker password


async def test_a_redelivered_request_is_answered_again_without_running_twice(
    street: Cluster,
) -> None:
    """QoS 1 may deliver a request twice: the same answer, no replay refusal; a second
    attempt that reuses the signature under new correlation data is still a replay."""
    fed = federation_id(street)
    spare = await provision(street.broker, fed)
    keys = load_keys(street.nodes[1].data_dir)
    founder = founder_record(street)
    frame = signed_fetch(keys, fed, founder)
    answers = await exchange(street.broker, spare, fed, founder.mailbox or "",
                             [(frame, b"c" * 16), (frame, b"c" * 16), (frame, b"d" * 16)])
    assert len(answers) == 3, answers
    by_status = sorted((opened(a, keys, fed, founder.node_id, frame) for a in answers),
                       key=lambda a: a[0])
    assert by_status[0][0] == by_status[1][0] == 200
    assert by_status[0][1] == by_status[1][1]  # the same answer, not a second run
    assert by_status[0][1]["roster"]["roster"]["federation"] == fed
    assert by_status[2][0] == 409 and by_status[2][1]["error"]["code"] == "replay"


async def test_the_broker_reads_no_relayed_body_and_unsealed_ones_are_refused(
    street: Cluster,
) -> None:
    """What a member sends is sealed to its recipient, and the answer to it; a member
    request sent unsealed (a modified node, or a broker stripping the seal) is refused
    after authentication, with a bare refusal."""
    fed = federation_id(street)
    spare = await provision(street.broker, fed)
    keys = load_keys(street.nodes[2].data_dir)
    founder = founder_record(street)
    sealed, plain = signed_fetch(keys, fed, founder), signed_fetch(keys, fed)
    assert b"roster-fetch" not in sealed and b"roster-fetch" in plain
    answers = await exchange(street.broker, spare, fed, founder.mailbox or "",
                             [(sealed, b"s" * 16), (plain, b"p" * 16)])
    assert all(b"roster\"" not in body for _, body, _ in answers)  # no roster on the way
    by_status = {a[0]: a for a in answers}
    assert opened(by_status[200], keys, fed, founder.node_id, sealed)[1]["roster"]["roster"][
        "federation"] == fed
    _, body, was_sealed = by_status[400]  # unsealed in, unsealed out: a bare refusal
    assert not was_sealed and json.loads(body)["error"]["code"] == "unsealed"


async def test_what_the_broker_or_a_stranger_sends_is_refused(street: Cluster) -> None:
    fed = federation_id(street)
    spare = await provision(street.broker, fed)
    founder = mailbox_of(street, street.nodes[0])
    stranger = signed_fetch(NodeKeys.generate(), fed)
    forged = bytearray(signed_fetch(load_keys(street.nodes[1].data_dir), fed))
    at = forged.rindex(b'"type"')  # change the body after the member signed its digest
    forged[at + 1] = ord("T")
    answers = await exchange(street.broker, spare, fed, founder, [
        (stranger, b"s" * 16), (bytes(forged), b"f" * 16),
        (b"GET /peer/v1/roster HTTP/1.1\r\n", b"g" * 16),  # not a frame: dropped
        (POISON, b"p" * 16),  # a header nested too deep to parse: dropped, nothing breaks
        (signed_fetch(load_keys(street.nodes[2].data_dir), fed), None),  # nowhere to answer
    ])
    assert sorted((status, sealed, json.loads(body)["error"]["code"])
                  for status, body, sealed in answers) == [
        (403, False, "auth_failed"), (403, False, "auth_failed")], answers
    log = street.nodes[0].log_text()
    assert "is not a member of federation" in log
    assert "does not match its signed digest" in log
    assert "dropped a relay message" in log and "not a Hearth relay frame" in log
    assert "dropped a relay request without correlation data" in log


def _with_relay_account(token: str, account: BrokerAccount) -> str:
    fields = json.loads(b64url_decode(token[len(INVITE_PREFIX):]))
    fields["relay"].update(username=account.username, password=account.password)
    return INVITE_PREFIX + b64url_encode(canonical_json(fields))


async def test_a_join_must_use_the_mailbox_its_invite_provisioned(street: Cluster) -> None:
    """An invite's secret names the joiner's mailbox: joining with another broker account
    (one that can connect, another invitee's) is refused, and the invite stays usable."""
    fed = federation_id(street)
    founder, newcomer = street.nodes[0], street.nodes[3]
    token = founder.cli("invite", "--expires", "10m").stdout.strip()
    other = await provision(street.broker, fed)
    proc = newcomer.cli("join", _with_relay_account(token, other), check=False)
    assert proc.returncode == 1
    assert "relay mailbox other than the one its invite provisioned" in proc.stderr
    assert newcomer.cli_json("status")["relay"] is None  # the attempt left nothing behind


async def test_a_join_whose_broker_account_is_gone_says_so(street: Cluster) -> None:
    founder, newcomer = street.nodes[0], street.nodes[3]
    token = founder.cli("invite", "--expires", "10m").stdout.strip()
    username = json.loads(b64url_decode(token[len(INVITE_PREFIX):]))["relay"]["username"]
    async with DynsecAdmin(street.broker.endpoint, street.broker.admin) as admin:
        await admin.delete_member(username)
    proc = newcomer.cli("join", token, check=False)
    assert proc.returncode == 1
    assert "could not connect to the relay" in proc.stderr
    assert "refused this hub's broker credentials" in proc.stderr
    assert "ask the founder for a new invite" in proc.stderr


def test_creating_on_an_unreachable_or_unreadable_relay_fails_clearly(
    street: Cluster, tmp_path: Path,
) -> None:
    newcomer = street.nodes[3]
    admin = json.loads(street.broker.admin_file.read_text())
    admin["url"] = f"mqtt://127.0.0.1:{_closed_port()}"
    dead = tmp_path / "relay-admin.json"
    dead.write_text(json.dumps(admin))
    dead.chmod(0o600)
    proc = newcomer.cli("federation", "create", "--name", "X", "--relay-admin", str(dead),
                        check=False)
    assert proc.returncode == 1
    assert "could not set up this hub's account on the relay" in proc.stderr
    dead.chmod(0o644)
    proc = newcomer.cli("federation", "create", "--name", "X", "--relay-admin", str(dead),
                        check=False)
    assert proc.returncode == 1 and "chmod 600" in proc.stderr
    proc = newcomer.cli("federation", "create", "--name", "X", "--relay",
                        "mqtts://relay.example:8883", check=False)
    assert proc.returncode == 1 and "--relay needs --relay-admin FILE" in proc.stderr
    proc = newcomer.cli("federation", "create", "--name", "X", "--relay",
                        "mqtt://relay.example:1883", "--relay-admin",
                        str(street.broker.admin_file), check=False)
    assert proc.returncode == 1 and "use mqtts:// (TLS)" in proc.stderr
    assert newcomer.cli_json("status")["federation"] is None


def test_a_relay_configured_beside_the_node_founds_without_credentials_in_the_request(
    street: Cluster, tmp_path: Path,
) -> None:
    """The app writes the broker admin account into the data dir from its options; creating
    a federation then needs only the relay's URL, or nothing, and never shows the password."""
    node = street.add("app-founder")
    node.start()
    admin_file = node.data_dir / "relay-admin.json"
    assert node.cli_json("status")["identity"]["relay_admin"] is None
    status, answer = node.api("POST", "/federation", {"name": "App Row", "relay": {}})
    assert (status, answer["error"]["code"]) == (422, "no_relay_admin")
    assert "app's options" in answer["error"]["message"]

    admin_file.write_text("{not json")
    admin_file.chmod(0o600)
    problem = node.cli_json("status")["identity"]["relay_admin"]
    assert problem["url"] is None and "not usable" in problem["problem"]
    status, answer = node.api("POST", "/federation", {"name": "App Row", "relay": {}})
    assert (status, answer["error"]["code"]) == (422, "bad_relay")

    configured = json.loads(street.broker.admin_file.read_text())
    admin_file.write_text(json.dumps(configured))
    shown = node.cli_json("status")["identity"]["relay_admin"]
    assert shown == {"url": configured["url"]}
    assert configured["admin"]["password"] not in json.dumps(node.cli_json("status"))
    status, answer = node.api("POST", "/federation", {
        "name": "App Row", "relay": {"url": "mqtts://elsewhere.example:8883"}})
    assert (status, answer["error"]["code"]) == (422, "bad_relay")
    assert configured["url"] in answer["error"]["message"]
    assert node.cli_json("status")["federation"] is None

    # A CA of the caller's choosing would decide who receives the admin password.
    other_ca = _a_ca_pem(tmp_path)
    status, answer = node.api("POST", "/federation", {
        "name": "App Row", "relay": {"url": configured["url"], "ca": other_ca + "\n"}})
    assert (status, answer["error"]["code"]) == (422, "bad_relay")
    assert "leave the CA out" in answer["error"]["message"]
    status, answer = node.api("POST", "/federation",
                              {"name": "App Row", "relay": {"url": configured["url"]}})
    assert status == 201 and answer["relay"] == configured["url"]
    relay = wait_for(lambda: (s := node.cli_json("status")["relay"])["connected"] and s, 15,
                     what="the app founder on its relay")
    assert relay["url"] == configured["url"] and relay["mailbox"]
    assert configured["admin"]["password"] not in node.log_text()

    # Invites use the admin account configured now: a changed password takes effect at
    # once (here a wrong one, so the broker refuses), without touching the founding copy.
    admin_file.write_text(json.dumps({**configured, "admin": {**configured["admin"],
                                                              "password": "rotated-wrongly"}}))
    status, answer = node.api("POST", "/invites", {"expires_s": 600})
    assert (status, answer["error"]["code"]) == (502, "relay_unavailable")
    admin_file.write_text(json.dumps(configured))
    status, answer = node.api("POST", "/invites", {"expires_s": 600})
    assert status == 201 and answer["token"]


def _a_ca_pem(directory: Path) -> str:
    from mpc_backend.relay.broker import make_self_signed_tls  # noqa: PLC0415
    return make_self_signed_tls(directory, ["127.0.0.1"])[0]


def _closed_port() -> int:
    from tests.backend.nodes import free_port  # noqa: PLC0415
    return free_port()


def test_a_node_shows_a_lost_broker_and_reconnects(street: Cluster) -> None:
    node = street.nodes[2]
    street.broker.stop()
    try:
        down = wait_for(lambda: (s := node.cli_json("status")["relay"])["connected"] is False
                        and s, 15, what="the relay shown as disconnected")
        assert down["last_error"]
        assert "DISCONNECTED" in node.cli("status").stdout
    finally:
        street.broker.start()
    up = wait_for(lambda: (s := node.cli_json("status")["relay"])["connected"] and s, 30,
                  what="the relay reconnected")
    assert up["last_error"] is None and up["reconnects"] >= 1
    # Work goes on through it: a task proposed by a member reaches the founder and back.
    node.cli("task", "add", "--metric", "after the outage", "--id", "after", "--unit", "x",
             "--min", "0", "--max", "10", "--resolution", "1", "--stats", "count",
             "--period", "60", "--min-contributors", "3", "--k", "3", "--t", "1")
    assert any(t["spec"]["task_id"] == "after"
               for t in street.nodes[0].cli_json("task", "list")["tasks"])


def test_no_broker_password_in_any_log(street: Cluster) -> None:
    passwords = [json.loads((n.data_dir / "relay.json").read_text())["account"]["password"]
                 for n in street.nodes[:3]]
    admin = json.loads(street.broker.admin_file.read_text())["admin"]["password"]
    logs = "".join(n.log_text() for n in street.nodes) + street.broker.log_tail(10_000)
    for secret in [*passwords, admin]:
        assert secret not in logs
    assert os.path.exists(street.broker.admin_file)


async def test_a_joiner_replaces_the_password_its_invite_carried(street: Cluster) -> None:
    """The invite token holds a broker password; once in, the joiner has the founder set
    one only it knows, so a token found later opens nothing."""
    founder, newcomer = street.nodes[0], street.nodes[3]
    token = founder.cli("invite", "--expires", "10m").stdout.strip()
    invited = json.loads(b64url_decode(token[len(INVITE_PREFIX):]))["relay"]
    newcomer.cli("join", token)
    settings = json.loads((newcomer.data_dir / "relay.json").read_text())
    assert settings["account"]["username"] == invited["username"]
    assert settings["account"]["password"] != invited["password"]
    assert "fallback" not in settings  # the change is confirmed
    assert "replaced the invite's broker password" in newcomer.log_text()
    status = wait_for(lambda: (s := newcomer.cli_json("status"))["relay"]["connected"] and s,
                      15, what="the newcomer connected with its own password")
    assert status["federation"]["members"] == 4
    with pytest.raises(aiomqtt.MqttError):
        async with client(street.broker, BrokerAccount(invited["username"],
                                                       invited["password"])):
            pass
    # ... and the member goes on working: it proposes a task through the relay.
    newcomer.cli("task", "add", "--metric", "joined", "--id", "joined", "--unit", "x",
                 "--min", "0", "--max", "10", "--resolution", "1", "--stats", "count",
                 "--period", "60", "--min-contributors", "3", "--k", "3", "--t", "1")
    assert any(t["spec"]["task_id"] == "joined"
               for t in founder.cli_json("task", "list")["tasks"])

    # The poison frame earlier cut nothing: the founder answered all along (the task above).
    assert street.nodes[0].cli_json("status")["relay"]["connected"] is True


def test_a_node_without_its_relay_account_says_so_at_start(street: Cluster) -> None:
    newcomer = street.nodes[3]
    settings = newcomer.data_dir / "relay.json"
    kept = settings.read_bytes()
    newcomer.stop()
    try:
        settings.write_text("{not json")
        proc = newcomer.cli("serve", check=False)
        assert proc.returncode == 1
        assert proc.stderr.startswith("error: ") and "relay.json is unreadable" in proc.stderr
        assert "Traceback" not in proc.stderr
        settings.unlink()
        proc = newcomer.cli("serve", check=False)
        assert proc.returncode == 1
        assert "relay.json is missing, and this node is reached through" in proc.stderr
    finally:
        settings.write_bytes(kept)
        settings.chmod(0o600)
        newcomer.start()
    wait_for(lambda: newcomer.cli_json("status")["relay"]["connected"], 15,
             what="the newcomer back on the relay")
