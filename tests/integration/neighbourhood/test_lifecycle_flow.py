"""Founding and joining a neighbourhood from the config flow, against real nodes.

Real ``mpc-backend serve`` processes on 127.0.0.1 (no doubles): "founder" founds Elm
Street through the flow and "joiner" joins it through the flow with an invite the founder
made. The other tests use "elm", which founded another Elm Street on the command line (so
each test runs alone too): "spare" meets every bad invite and an unreachable relay broker
first, each an error on the form it can retry from, and then joins ("user" uses up one
invite on the way); "late" is joined to another federation ("Oak Lane", founded by
"other" on the command line) behind the flow's back; "app" listens as the app does, with
no address for neighbours; "impostor" is a modified node that claims elm's node id.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from homeassistant.config_entries import SOURCE_USER, ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType

from custom_components.hearth.const import CONF_KIND, DOMAIN
from custom_components.hearth.neighbourhood.const import (
    CONF_TOKEN,
    CONF_URL,
    KIND_NEIGHBOURHOOD,
)
from mpc_backend.crypto import b64url_decode, b64url_encode
from mpc_backend.crypto.tokens import INVITE_PREFIX
from tests.backend.nodes import Cluster, NodeProcess, free_port

from .conftest import sockets_while_building, token
from .test_discovery_flow import discover

pytestmark = pytest.mark.slow

NAMES = ("elm", "founder", "joiner", "spare", "user", "late", "other")


@pytest.fixture(scope="module")
def street(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, NodeProcess]]:
    """Nodes in no federation, except "other" (Oak Lane) and "elm" (Elm Street), founders."""
    cluster = Cluster(tmp_path_factory.mktemp("lifecycle"))
    try:
        with sockets_while_building():
            for name in NAMES:
                cluster.add(name)
            # As the app runs it: every interface, no public URL (loopback reaches it too).
            app = NodeProcess("app", cluster.root / "app", free_port(), cluster.root / "app.log")
            app.init("--listen", f"0.0.0.0:{app.port}", "--insecure-listen")
            cluster.nodes.append(app)
            # A modified node whose status claims the founder's node id.
            impostor = cluster.add("impostor")
            impostor.patch, impostor.patch_args = "claim_node_id", {
                "node_id": cluster.nodes[0].node_id}
            for node in cluster.nodes:
                node.start()
            nodes = dict(zip((*NAMES, "app", "impostor"), cluster.nodes, strict=True))
            nodes["other"].cli("federation", "create", "--name", "Oak Lane")
            nodes["elm"].cli("federation", "create", "--name", "Elm Street")
        yield nodes
    finally:
        cluster.close()


async def status(hass: HomeAssistant, node: NodeProcess) -> dict[str, Any]:
    code, answer = await hass.async_add_executor_job(node.api, "GET", "/status")
    assert code == 200, answer
    return answer


async def invite(hass: HomeAssistant, founder: NodeProcess, expires_s: int = 600) -> str:
    code, answer = await hass.async_add_executor_job(
        founder.api, "POST", "/invites", {"expires_s": expires_s}
    )
    assert code == 201, answer
    return answer["token"]


def pointed_at(token: str, url: str) -> str:
    """The invite with another founder address (the founder moved, or it was tampered)."""
    fields = json.loads(b64url_decode(token.removeprefix(INVITE_PREFIX)))
    return INVITE_PREFIX + b64url_encode(json.dumps({**fields, "url": url}).encode())


async def to_step(hass: HomeAssistant, node: NodeProcess, step: str) -> dict[str, Any]:
    """The node's discovery, confirmed: the setup menu, then ``step``'s form."""
    result = await discover(hass, node.url, token(node))
    assert result["step_id"] == "hassio_confirm"
    result = await hass.config_entries.flow.async_configure(result["flow_id"], {})
    assert (result["type"], result["step_id"]) == (FlowResultType.MENU, "neighbourhood_setup")
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"next_step_id": step}
    )
    assert (result["type"], result["step_id"]) == (FlowResultType.FORM, step)
    return result


def suggested(result: dict[str, Any], key: str) -> Any:
    marker = next(k for k in result["data_schema"].schema if k == key)
    return (marker.description or {}).get("suggested_value")


async def test_found_and_join_from_the_flow(
    hass: HomeAssistant, street: dict[str, NodeProcess], socket_enabled: None
) -> None:
    founder, joiner = street["founder"], street["joiner"]
    # The founder through the manual step (URL + token typed in), direct HTTP.
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"next_step_id": "neighbourhood"}
    )
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_URL: founder.url, CONF_TOKEN: token(founder)}
    )
    assert (result["type"], result["step_id"]) == (FlowResultType.MENU, "neighbourhood_setup")
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"next_step_id": "neighbourhood_create"}
    )
    assert suggested(result, "relay_url") is None  # no broker configured for this node
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"name": "Elm Street"}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["title"] == "Elm Street (founder)"
    assert result["data"] == {CONF_KIND: KIND_NEIGHBOURHOOD, CONF_URL: founder.url,
                              CONF_TOKEN: token(founder)}
    assert result["result"].unique_id == founder.node_id
    federation = (await status(hass, founder))["federation"]
    assert (federation["name"], federation["is_founder"], federation["members"]) == (
        "Elm Street", True, 1)
    assert (await status(hass, founder))["relay"] is None  # direct HTTP

    # The joiner through discovery, with an invite the founder made.
    result = await to_step(hass, joiner, "neighbourhood_join")
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"invite": await invite(hass, founder) + "\n"}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["title"] == "Elm Street (joiner)"
    assert result["result"].unique_id == joiner.node_id
    roster = {m["name"] for m in (await status(hass, founder))["members"]}
    assert roster == {"founder", "joiner"}
    joined = (await status(hass, joiner))["federation"]
    assert (joined["id"], joined["name"]) == (federation["id"], "Elm Street")
    await hass.async_block_till_done()
    entries = hass.config_entries.async_entries(DOMAIN)
    assert [e.state for e in entries] == [ConfigEntryState.LOADED] * 2
    for entry in entries:
        assert await hass.config_entries.async_unload(entry.entry_id)


async def test_a_hub_without_an_address_is_told_to_use_a_relay(
    hass: HomeAssistant, street: dict[str, NodeProcess], socket_enabled: None
) -> None:
    """The app's node has no address neighbours could call: founding or joining without a
    relay says to use one, and nothing is used up (the invite still admits another hub)."""
    app = street["app"]
    result = await to_step(hass, app, "neighbourhood_create")
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"name": "Nowhere Street"})
    assert (result["type"], result["errors"]) == (
        FlowResultType.FORM, {"relay_url": "create_needs_relay"})
    assert suggested(result, "name") == "Nowhere Street"
    hass.config_entries.flow.async_abort(result["flow_id"])  # the user closes the dialog
    result = await to_step(hass, app, "neighbourhood_join")
    direct_invite = await invite(hass, street["elm"])
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"invite": direct_invite})
    assert (result["type"], result["errors"]) == (
        FlowResultType.FORM, {"invite": "join_needs_relay"})
    hass.config_entries.flow.async_abort(result["flow_id"])
    assert (await status(hass, app))["federation"] is None
    members = {m["name"] for m in (await status(hass, street["elm"]))["members"]}
    assert "app" not in members


async def test_an_impostor_announced_by_another_app_cannot_take_the_entry(
    hass: HomeAssistant, street: dict[str, NodeProcess], socket_enabled: None
) -> None:
    """A real node patched to claim a founder's node id, announced by an app other than
    the one whose discovery made the founder's entry: the entry stays with the founder, so
    no reading of this home goes to the impostor."""
    founder, impostor = street["elm"], street["impostor"]
    result = await discover(hass, founder.url, token(founder))
    result = await hass.config_entries.flow.async_configure(result["flow_id"], {})
    assert result["type"] is FlowResultType.CREATE_ENTRY  # the founder is in Elm Street
    entry = result["result"]
    await hass.async_block_till_done()
    before = dict(entry.data)
    claimed = (await status(hass, impostor))["identity"]["node_id"]
    assert claimed == founder.node_id
    assert "EVIL claim_node_id" in impostor.log_text()  # the attack was really made
    result = await discover(hass, impostor.url, token(impostor), slug="e1e1e1e1_lookalike")
    assert (result["type"], result["reason"]) == (FlowResultType.ABORT, "already_configured")
    assert dict(entry.data) == before and before[CONF_URL] == founder.url
    assert entry.state is ConfigEntryState.LOADED
    assert await hass.config_entries.async_unload(entry.entry_id)


async def test_unreachable_relay_broker(
    hass: HomeAssistant, street: dict[str, NodeProcess], socket_enabled: None
) -> None:
    """A broker address where nothing listens: the form says the relay is unavailable,
    keeps what was typed, and the node stays in no federation."""
    spare = street["spare"]
    result = await to_step(hass, spare, "neighbourhood_create")
    form = {"name": "Relay Row", "relay_url": f"mqtt://127.0.0.1:{free_port()}",
            "relay_username": "hearth-admin", "relay_password": "not-reachable-anyway"}
    result = await hass.config_entries.flow.async_configure(result["flow_id"], form)
    assert (result["type"], result["errors"]) == (
        FlowResultType.FORM, {"base": "relay_unavailable"})
    assert "Connection refused" in result["description_placeholders"]["message"]
    assert all(suggested(result, key) == value for key, value in form.items())
    # A broker URL the node refuses outright.
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {**form, "relay_url": "http://relay.example"}
    )
    assert result["errors"] == {"base": "bad_relay"}
    # No credentials and none configured beside the node.
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"name": "Relay Row", "relay_url": "mqtt://127.0.0.1:1883"}
    )
    assert result["errors"] == {"base": "no_relay_admin"}
    assert (await status(hass, spare))["federation"] is None
    hass.config_entries.flow.async_abort(result["flow_id"])


async def test_bad_invites_stay_on_the_form(
    hass: HomeAssistant, street: dict[str, NodeProcess], socket_enabled: None
) -> None:
    """Malformed, expired, used, another neighbourhood's: each its own error, the token
    kept on the form; the node stays free and a good invite then works."""
    founder, spare, other = street["elm"], street["spare"], street["other"]
    short = await invite(hass, founder, expires_s=1)
    short_expires = time.time() + 1
    used = await invite(hass, founder)
    code, answer = await hass.async_add_executor_job(
        street["user"].api, "POST", "/join", {"token": used})
    assert code == 200, answer
    members = len((await status(hass, founder))["members"])
    result = await to_step(hass, spare, "neighbourhood_join")
    await asyncio.sleep(max(0.0, short_expires + 0.2 - time.time()))
    other_url = (await status(hass, other))["identity"]["url"]
    cases = [
        ("hearth-invite-v1.damaged", "invalid_invite", "damaged"),
        ("an invite? no", "invalid_invite", "should start with"),
        (short, "invite_expired", "expired at"),
        (used, "invite_used", "already used"),
        (pointed_at(await invite(hass, founder), other_url), "wrong_federation",
         "not the founder"),
        (pointed_at(await invite(hass, founder), f"http://127.0.0.1:{free_port()}"),
         "founder_unreachable", "could not reach the founder"),
    ]
    for bad, error, words in cases:
        result = await hass.config_entries.flow.async_configure(
            result["flow_id"], {"invite": bad}
        )
        assert result["type"] is FlowResultType.FORM, (bad, result)
        field = "base" if error == "founder_unreachable" else "invite"
        assert result["errors"] == {field: error}, bad
        assert words in result["description_placeholders"]["message"], result
        assert suggested(result, "invite") == bad
    assert (await status(hass, spare))["federation"] is None
    assert len((await status(hass, founder))["members"]) == members  # none of them joined

    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"invite": await invite(hass, founder)}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["title"] == "Elm Street (spare)"
    assert (await status(hass, spare))["federation"]["name"] == "Elm Street"


async def test_joined_elsewhere_meanwhile(
    hass: HomeAssistant, street: dict[str, NodeProcess], socket_enabled: None
) -> None:
    """A node that joined a federation while the form was open (another dialog, the
    command line, or an earlier submit whose answer timed out): the entry connects to the
    federation the node is in, and the founder's invite stays unused."""
    founder, late, other = street["elm"], street["late"], street["other"]
    result = await to_step(hass, late, "neighbourhood_join")
    oak = (await hass.async_add_executor_job(other.cli, "invite")).stdout.strip()
    await hass.async_add_executor_job(late.cli, "join", oak)
    members = len((await status(hass, founder))["members"])
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"invite": await invite(hass, founder)}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["title"] == "Oak Lane (late)"
    assert (await status(hass, late))["federation"]["name"] == "Oak Lane"
    assert len((await status(hass, founder))["members"]) == members
