"""The relay broker setup against a real mosquitto: accounts, access rules, persistence, TLS.

Every test runs its own broker from the files ``relay init`` writes
(``tests/relay_broker.py``) and talks to it with aiomqtt, as hubs do.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import ssl
import stat
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiomqtt
import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from mpc_backend.relay.broker import ADMIN_FILE_NAME, CONFIG_NAME, DYNSEC_NAME
from mpc_backend.relay.cli import add_relay_commands
from mpc_backend.relay.endpoint import BrokerAccount, inbox_filter, inbox_topic
from mpc_backend.relay.provision import (
    AdminFileError,
    DynsecAdmin,
    InsecureAdminFileError,
    ProvisionError,
    load_admin_file,
    member_role,
)
from tests.backend.nodes import allow_loopback_sockets
from tests.relay_broker import Broker, provision, running_broker

pytestmark = pytest.mark.relay  # against the real broker scripts/setup installs

NOT_AUTHORIZED = 0x87
BAD_CREDENTIALS = 0x86
WAIT_S = 5.0


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    allow_loopback_sockets()
    with running_broker(tmp_path / "relay") as running:
        yield running


def fed() -> str:
    return secrets.token_hex(16)


@asynccontextmanager
async def connect(broker: Broker, account: BrokerAccount | None, *,
                  identifier: str | None = None, persistent: bool = False,
                  tls: ssl.SSLContext | None = None) -> AsyncIterator[aiomqtt.Client]:
    """A hub's connection: client id = username; ``persistent`` keeps the session."""
    properties = None
    if persistent:
        properties = Properties(PacketTypes.CONNECT)
        properties.SessionExpiryInterval = 3600
    if tls is None and broker.endpoint.tls:
        tls = ssl.create_default_context(cadata=broker.endpoint.ca_pem)
    client = aiomqtt.Client(
        broker.endpoint.host, broker.endpoint.port,
        username=account.username if account else None,
        password=account.password if account else None,
        identifier=identifier or (account.username if account else None),
        protocol=aiomqtt.ProtocolVersion.V5, clean_start=not persistent,
        properties=properties, tls_context=tls, timeout=WAIT_S)
    async with client:
        yield client


async def next_message(client: aiomqtt.Client) -> aiomqtt.Message:
    return await asyncio.wait_for(anext(client.messages), WAIT_S)


def code(value: object) -> int:
    return int(getattr(value, "value", value))  # type: ignore[call-overload]


async def subscribe(client: aiomqtt.Client, topic: str) -> int:
    return code((await client.subscribe(topic, qos=1))[0])


async def test_member_gets_what_another_member_sends_to_its_inbox(broker: Broker) -> None:
    federation = fed()
    alice, bob = await provision(broker, federation), await provision(broker, federation)
    async with connect(broker, alice) as a, connect(broker, bob) as b:
        assert await subscribe(a, inbox_topic(federation, alice.username)) == 1  # granted QoS 1
        await b.publish(inbox_topic(federation, alice.username), b"share", qos=1)
        message = await next_message(a)
    assert (message.topic.value, message.payload, message.qos) == (
        inbox_topic(federation, alice.username), b"share", 1)


@pytest.mark.parametrize("default_allow", [False, True], ids=["default-deny", "default-allow"])
async def test_member_reads_only_its_inbox_and_writes_only_its_federation(
        broker: Broker, default_allow: bool) -> None:
    federation, other = fed(), fed()
    alice, bob = await provision(broker, federation), await provision(broker, federation)
    carol, dave = await provision(broker, other), await provision(broker, other)
    if default_allow:
        # The member's own rules must decide even where the broker's default (or
        # another auth plugin) would let everything through.
        async with DynsecAdmin(broker.endpoint, broker.admin) as admin:
            await admin.command("setDefaultACLAccess", acls=[
                {"acltype": t, "allow": True}
                for t in ("publishClientSend", "subscribe", "unsubscribe")])
    async with connect(broker, alice) as a, connect(broker, carol) as c, \
            connect(broker, dave) as d:
        for topic in (inbox_topic(federation, bob.username), inbox_filter(federation), "#",
                      "hearth/#", "$SYS/#", "$CONTROL/dynamic-security/#"):
            assert await subscribe(a, topic) == NOT_AUTHORIZED, topic
        assert await subscribe(c, inbox_topic(other, carol.username)) == 1
        # Alice may not write into another federation's inboxes (nor anywhere else):
        # the broker acknowledges and drops it, so Dave's later message comes first.
        await a.publish(inbox_topic(other, carol.username), b"intruder", qos=1)
        await a.publish(f"hearth/{federation}/{bob.username}/out", b"intruder", qos=1)
        await d.publish(inbox_topic(other, carol.username), b"marker", qos=1)
        assert (await next_message(c)).payload == b"marker"


async def test_wrong_or_missing_credentials_and_foreign_client_ids_are_refused(
        broker: Broker) -> None:
    federation = fed()
    alice, bob = await provision(broker, federation), await provision(broker, federation)
    attempts = {
        "wrong password": (BrokerAccount(alice.username, "not-the-password"), None),
        "unknown user": (BrokerAccount("h-nobody", alice.password), None),
        "no credentials": (None, "anonymous-hub"),
        # Bob's client id would resume Bob's session, his inbox and queue included.
        "another member's client id": (alice, bob.username),
    }
    for what, (account, identifier) in attempts.items():
        with pytest.raises(aiomqtt.MqttCodeError) as refused:
            async with connect(broker, account, identifier=identifier):
                pass
        assert code(refused.value.rc) in (BAD_CREDENTIALS, NOT_AUTHORIZED), what
    async with connect(broker, alice):
        pass  # and the right ones are accepted


async def test_offline_member_gets_queued_messages_after_reconnect_and_broker_restart(
        broker: Broker) -> None:
    federation = fed()
    alice, bob = await provision(broker, federation), await provision(broker, federation)
    inbox = inbox_topic(federation, alice.username)
    async with connect(broker, alice, persistent=True) as a:
        assert await subscribe(a, inbox) == 1
    async with connect(broker, bob) as b:
        await b.publish(inbox, b"while away", qos=1)
    broker.restart()  # SIGTERM: the broker saves its store; accounts come from the JSON file
    async with connect(broker, bob) as b:
        await b.publish(inbox, b"after restart", qos=1)
    async with connect(broker, alice, persistent=True) as a:  # no new subscribe
        got = [(await next_message(a)).payload, (await next_message(a)).payload]
    assert got == [b"while away", b"after restart"]


async def test_deleted_member_is_disconnected_and_cannot_come_back(broker: Broker) -> None:
    federation = fed()
    alice = await provision(broker, federation)
    async with connect(broker, alice) as a:
        async with DynsecAdmin(broker.endpoint, broker.admin) as admin:
            await admin.delete_member(alice.username)
            await admin.delete_member(alice.username)  # already gone: not an error
            with pytest.raises(ProvisionError, match="Role not found"):
                await admin.command("getRole", rolename=member_role(alice.username))
        with pytest.raises(aiomqtt.MqttError):
            await next_message(a)  # the broker dropped the connection
    with pytest.raises(aiomqtt.MqttCodeError) as refused:
        async with connect(broker, alice):
            pass
    assert code(refused.value.rc) in (BAD_CREDENTIALS, NOT_AUTHORIZED)


async def test_provisioning_errors_are_clear(broker: Broker) -> None:
    async with DynsecAdmin(broker.endpoint, broker.admin) as admin:
        taken = await admin.create_member(fed(), "h-fixed-mailbox")
        assert taken.username == "h-fixed-mailbox"
        with pytest.raises(ProvisionError, match="already exists"):
            await admin.create_member(fed(), "h-fixed-mailbox")
        with pytest.raises(ProvisionError, match="cannot be part of a topic"):
            await admin.create_member("fed/+")
        # An account that is not the admin (members are bound to their client id,
        # so they are refused even earlier, at CONNECT).
        await admin.command("createClient", username="someone", password="pw")
    with pytest.raises(ProvisionError, match="not the relay's dynamic-security admin"):
        async with DynsecAdmin(broker.endpoint, BrokerAccount("someone", "pw")):
            pass
    with pytest.raises(ProvisionError, match="cannot reach the relay"):
        async with DynsecAdmin(broker.endpoint, taken):
            pass
    with pytest.raises(ProvisionError, match="cannot reach the relay"):
        async with DynsecAdmin(broker.endpoint, BrokerAccount(broker.admin.username, "wrong")):
            pass


async def test_secret_files_are_private_and_a_readable_admin_file_is_refused(
        broker: Broker, tmp_path: Path) -> None:
    await provision(broker, fed())  # the broker has rewritten its accounts file since
    assert stat.S_IMODE(broker.directory.stat().st_mode) == 0o700
    for name in (ADMIN_FILE_NAME, DYNSEC_NAME, CONFIG_NAME):
        assert stat.S_IMODE((broker.directory / name).stat().st_mode) == 0o600, name
    endpoint, admin = load_admin_file(broker.admin_file)
    assert (endpoint, admin) == (broker.endpoint, broker.admin)

    copy = tmp_path / "copy.json"
    copy.write_bytes(broker.admin_file.read_bytes())
    os.chmod(copy, 0o644)
    with pytest.raises(InsecureAdminFileError, match=f"chmod 600 {copy}"):
        load_admin_file(copy)
    os.chmod(copy, 0o600)
    copy.write_text("{not json")
    with pytest.raises(AdminFileError, match="not usable"):
        load_admin_file(copy)
    with pytest.raises(AdminFileError, match="relay init"):
        load_admin_file(tmp_path / "missing.json")
    fifo = tmp_path / "fifo.json"
    os.mkfifo(fifo, 0o600)  # would block a plain open until someone writes
    with pytest.raises(AdminFileError, match="not a regular file"):
        load_admin_file(fifo)


async def test_tls_broker_needs_its_ca(tmp_path: Path) -> None:
    allow_loopback_sockets()
    with running_broker(tmp_path / "relay", tls=True) as broker:
        assert broker.endpoint.url.startswith("mqtts://127.0.0.1:")
        assert broker.endpoint.ca_pem is not None
        federation = fed()
        alice = await provision(broker, federation)  # the admin connects over TLS too
        strict = ssl.create_default_context(cadata=broker.endpoint.ca_pem)
        strict.verify_flags |= ssl.VERIFY_X509_STRICT  # Python 3.13+'s default
        async with connect(broker, alice, tls=strict) as a:
            assert await subscribe(a, inbox_topic(federation, alice.username)) == 1
        with pytest.raises(aiomqtt.MqttError, match="CERTIFICATE_VERIFY_FAILED"):
            async with connect(broker, alice, tls=ssl.create_default_context()):
                pass


# -- relay init ----------------------------------------------------------------------------
def relay_init(*words: str) -> int:
    parser = argparse.ArgumentParser(prog="mpc-backend")
    add_relay_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["relay", "init", *words])
    return int(args.func(args))


def test_relay_init_writes_a_setup_and_says_what_to_do_next(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    directory = tmp_path / "relay"
    assert relay_init("--dir", str(directory), "--public-host", "relay.example.org") == 0
    out = capsys.readouterr().out
    assert f"mosquitto -c {directory / CONFIG_NAME}" in out
    assert f"give {directory / ADMIN_FILE_NAME} to the founder" in out
    assert "federation create" in out and f"--relay-admin {ADMIN_FILE_NAME}" in out
    assert "forward TCP port 8883" in out
    assert "Home Assistant" in out
    endpoint, admin = load_admin_file(directory / ADMIN_FILE_NAME)
    assert endpoint.url == "mqtts://relay.example.org:8883"  # self-signed by default
    assert endpoint.ca_pem is not None and admin.username.startswith("hearth-admin-")
    conf = (directory / CONFIG_NAME).read_text()
    assert "listener 8883 0.0.0.0" in conf and f"certfile {directory}/relay-cert.pem" in conf
    assert stat.S_IMODE((directory / "relay-key.pem").stat().st_mode) == 0o600
    dynsec = json.loads((directory / DYNSEC_NAME).read_text())
    assert [c["username"] for c in dynsec["clients"]] == [admin.username]

    # Never over an existing setup.
    assert relay_init("--dir", str(directory), "--public-host", "relay.example.org") == 1
    assert "already holds" in capsys.readouterr().err


def test_relay_init_on_loopback_defaults_to_plain(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert relay_init("--dir", str(tmp_path / "r"), "--public-host", "127.0.0.1") == 0
    endpoint, _ = load_admin_file(tmp_path / "r" / ADMIN_FILE_NAME)
    assert endpoint.url == "mqtt://127.0.0.1:1883" and endpoint.ca_pem is None
    assert "forward" not in capsys.readouterr().out


@pytest.mark.parametrize(("words", "message"), [
    (["--public-host", "relay.example.org", "--port", "0"], "port 0 must be between"),
    (["--public-host", "relay.example.org", "--tls-cert", "cert.pem"], "go together"),
    (["--public-host", "relay.example.org", "--plain"], "only for a relay on this machine"),
    (["--public-host", "relay.example.org", "--plain", "--self-signed"], "choose one"),
    (["--public-host", "relay.example.org", "--tls-cert", "nope.pem", "--tls-key", "nope.key"],
     "No such file"),
    (["--public-host", "user@relay.example.org"], "must be a host name"),
], ids=["port-0", "cert-without-key", "plain-remote", "plain-and-self-signed", "missing-cert",
        "bad-host"])
def test_relay_init_refuses_bad_input_and_writes_nothing(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], words: list[str],
        message: str) -> None:
    directory = tmp_path / "relay"
    assert relay_init("--dir", str(directory), *words) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and err.count("\n") == 1
    assert not directory.exists()
