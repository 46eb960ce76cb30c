"""A relay founder removes the broker accounts of invites nobody used, once they expire."""

from __future__ import annotations

from pathlib import Path

import aiomqtt
import pytest

from mpc_backend.crypto import parse_invite
from mpc_backend.relay.endpoint import BrokerAccount
from tests.backend.conftest import FakeClock, start_node, stop_node
from tests.relay_broker import running_broker

pytestmark = pytest.mark.relay


async def connects(endpoint_host: str, port: int, account: BrokerAccount) -> bool:
    try:
        async with aiomqtt.Client(endpoint_host, port, username=account.username,
                                  password=account.password, identifier=account.username,
                                  protocol=aiomqtt.ProtocolVersion.V5):
            return True
    except aiomqtt.MqttError:
        return False


async def test_an_unused_invites_broker_account_goes_when_it_expires(tmp_path: Path) -> None:
    clock = FakeClock(1_800_000_000.0)
    with running_broker(tmp_path / "relay") as broker:
        live = await start_node(tmp_path / "founder", "founder", clock)
        try:
            await live.node.federation.create("Street", relay={
                **broker.endpoint.to_dict(), "admin": broker.admin.to_dict()})

            async def invited(ttl_s: int) -> BrokerAccount:
                token = (await live.node.federation.invite(ttl_s))["token"]
                relay = parse_invite(token, now=clock()).relay
                assert relay is not None
                return BrokerAccount(relay["username"], relay["password"])

            short, long = await invited(60), await invited(3600)
            host, port = broker.endpoint.host, broker.endpoint.port
            assert await connects(host, port, short) and await connects(host, port, long)
            await live.node.housekeep()  # nothing has expired yet
            assert await connects(host, port, short)
            clock.advance(120)
            await live.node.housekeep()
            assert not await connects(host, port, short)  # expired unused: gone
            assert await connects(host, port, long)  # still valid: kept
            assert await live.node.ctx.storage.lapsed_invite_mailboxes(clock()) == []
            await live.node.housekeep()  # and nothing left to retire
        finally:
            await stop_node(live)
