"""The neighbourhood's lifecycle from Home Assistant's UI, against real nodes on 127.0.0.1.

Three ``mpc-backend serve`` processes form "Elm Street" (house0 founds it, house1 and
house2 join), and two more run outside any federation, waiting for invites. The options
flow and the ``hearth.create_invite`` action of an entry for the founder (and, for the
paths only a founder may take, an entry for house1) drive the nodes over their local
API; every outcome is checked against what the nodes themselves say (their /status,
/tasks, or a join that works).
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from typing import Any

import pytest
import voluptuous as vol
from homeassistant.config_entries import ConfigEntryState, ConfigFlowResult
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.exceptions import ServiceValidationError
from homeassistant.helpers import entity_registry as er
from homeassistant.util import dt as dt_util
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.hearth.const import DOMAIN
from custom_components.hearth.neighbourhood.const import CONF_TASKS
from tests.backend.nodes import Cluster, NodeProcess

from .conftest import neighbourhood_entry, sockets_while_building, token

pytestmark = pytest.mark.slow

FEDERATION = "Elm Street"
# A proposal with every field given, and the task the backend must store for it.
CELLAR = {
    "metric": "Cellar humidity", "unit": "%", "low": 0, "high": 100, "resolution": 0.5,
    "stats": ["mean", "count", "histogram"], "buckets": "40, 60,80", "period_minutes": 30,
    "min_contributors": 4, "committee_size": 3, "threshold": 1, "dp_epsilon": 2.0,
}
CELLAR_SPEC = {
    "task_id": "cellar_humidity", "metric": "Cellar humidity", "unit": "%", "low": 0.0,
    "high": 100.0, "resolution": 0.5, "stats": ["count", "mean", "histogram"],
    "buckets": [40.0, 60.0, 80.0], "period_s": 1800, "min_contributors": 4,
    "dp_epsilon": 2.0, "k": 3, "t": 1,
}


@pytest.fixture(scope="module")
def street(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """house0..2 federated (house0 founds), newcomer0..1 running but in no federation."""
    cluster = Cluster(tmp_path_factory.mktemp("lifecycle"))
    try:
        with sockets_while_building():
            for name in ("house0", "house1", "house2", "newcomer0", "newcomer1"):
                cluster.add(name)
            for node in cluster.nodes:
                node.start()
            founder = cluster.nodes[0]
            founder.cli("federation", "create", "--name", FEDERATION)
            for node in cluster.nodes[1:3]:
                node.cli("join", founder.cli("invite", "--expires", "10m").stdout.strip())
        yield cluster
    finally:
        cluster.close()


async def _entry(hass: HomeAssistant, node: NodeProcess) -> MockConfigEntry:
    entry = neighbourhood_entry(hass, node.url, token(node), node.node_id)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.LOADED
    return entry


async def _unload(hass: HomeAssistant, *entries: MockConfigEntry) -> None:
    for entry in entries:
        assert await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()


async def _open(hass: HomeAssistant, entry: MockConfigEntry, step: str) -> ConfigFlowResult:
    result = await hass.config_entries.options.async_init(entry.entry_id)
    assert (result["type"], result["step_id"]) == (FlowResultType.MENU, "init")
    return await hass.config_entries.options.async_configure(
        result["flow_id"], {"next_step_id": step}
    )


async def _api(hass: HomeAssistant, node: NodeProcess, method: str, path: str,
               body: Any = None) -> Any:
    """The node's own answer (off the event loop: the node may call its peers)."""
    code, answer = await hass.async_add_executor_job(node.api, method, path, body)
    assert code < 300, answer
    return answer


async def _join(hass: HomeAssistant, node: NodeProcess, invite: str) -> Any:
    return await hass.async_add_executor_job(
        lambda: node.cli("join", invite, check=False)
    )


def _names(status: dict[str, Any]) -> list[str]:
    return sorted(m["name"] for m in status["members"])


def _local(ts: float) -> str:
    local = dt_util.as_local(dt_util.utc_from_timestamp(ts))
    return f"{local:%Y-%m-%d %H:%M} ({local.tzname()})"


def _suggested(result: ConfigFlowResult) -> dict[str, Any]:
    """What the form shows pre-filled (the user's last input)."""
    return {
        str(key): key.description["suggested_value"]
        for key in result["data_schema"].schema
        if key.description and "suggested_value" in key.description
    }


async def test_invite_from_the_flow_admits_a_household(
    hass: HomeAssistant, street: Cluster, socket_enabled: None
) -> None:
    founder, newcomer, other = street.nodes[0], street.nodes[3], street.nodes[4]
    entry = await _entry(hass, founder)
    runtime, options = entry.runtime_data, dict(entry.options)

    result = await _open(hass, entry, "neighbourhood_invite")
    assert (result["type"], result["step_id"]) == (FlowResultType.FORM, "neighbourhood_invite")
    key = next(k for k in result["data_schema"].schema if k == "expires_hours")
    assert key.default() == 24
    asked = time.time()
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {"expires_hours": 2}
    )
    answered = time.time()
    # The token is shown in the flow's closing message: nothing to submit, nothing saved.
    assert (result["type"], result["reason"]) == (FlowResultType.ABORT, "invite_created")
    invite = result["description_placeholders"]["token"]
    # The expiry shown is the node's (now + 2 h), in local time, to the minute.
    shown = result["description_placeholders"]["expires"]
    assert shown in {_local(t + 2 * 3600) for t in (asked, answered)}, shown

    await hass.async_block_till_done()
    # Options as they were, so the entry was not reloaded.
    assert dict(entry.options) == options
    assert entry.state is ConfigEntryState.LOADED and entry.runtime_data is runtime

    before = await _api(hass, founder, "GET", "/status")
    joined = await _join(hass, newcomer, invite)
    assert joined.returncode == 0, joined.stderr
    after = await _api(hass, founder, "GET", "/status")
    assert _names(after) == sorted([*_names(before), "newcomer0"])
    assert after["federation"]["members"] == before["federation"]["members"] + 1
    # One hub per invite: a second use is refused.
    again = await _join(hass, other, invite)
    assert again.returncode != 0
    assert "newcomer1" not in _names(await _api(hass, founder, "GET", "/status"))
    await _unload(hass, entry)


async def test_invite_from_a_non_founder_names_the_founder(
    hass: HomeAssistant, street: Cluster, socket_enabled: None
) -> None:
    founder, member = street.nodes[0], street.nodes[1]
    entry = await _entry(hass, member)
    result = await _open(hass, entry, "neighbourhood_invite")
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {"expires_hours": 5}
    )
    assert (result["type"], result["step_id"]) == (FlowResultType.FORM, "neighbourhood_invite")
    assert result["errors"] == {"base": "not_founder"}
    status = await _api(hass, founder, "GET", "/status")
    assert result["description_placeholders"]["founder"] == status["identity"]["name"]
    assert _suggested(result) == {"expires_hours": 5}
    await _unload(hass, entry)


async def test_create_invite_action(
    hass: HomeAssistant, street: Cluster, socket_enabled: None
) -> None:
    founder, member, newcomer = street.nodes[0], street.nodes[1], street.nodes[4]
    entry = await _entry(hass, founder)
    asked = time.time()
    answer = await hass.services.async_call(
        DOMAIN, "create_invite", {"expires_hours": 3}, blocking=True, return_response=True
    )
    assert set(answer) == {"token", "expires_at", "federation"}
    assert answer["federation"] == FEDERATION
    expires = dt.datetime.fromisoformat(answer["expires_at"])
    assert asked + 3 * 3600 - 1 <= expires.timestamp() <= time.time() + 3 * 3600 + 1

    before = await _api(hass, founder, "GET", "/status")
    joined = await _join(hass, newcomer, answer["token"])
    assert joined.returncode == 0, joined.stderr
    after = await _api(hass, founder, "GET", "/status")
    assert _names(after) == sorted([*_names(before), "newcomer1"])

    for hours in (0, 169, "soon"):
        with pytest.raises(vol.Invalid):
            await hass.services.async_call(DOMAIN, "create_invite", {"expires_hours": hours},
                                           blocking=True, return_response=True)
    second = await _entry(hass, member)
    with pytest.raises(ServiceValidationError) as err:  # two entries: name one
        await hass.services.async_call(DOMAIN, "create_invite", {}, blocking=True,
                                       return_response=True)
    assert err.value.translation_key == "neighbourhood_ambiguous"
    with pytest.raises(ServiceValidationError) as err:
        await hass.services.async_call(DOMAIN, "create_invite",
                                       {"config_entry_id": second.entry_id},
                                       blocking=True, return_response=True)
    assert err.value.translation_key == "not_founder"
    assert err.value.translation_placeholders == {"founder": "house0"}
    await _unload(hass, entry, second)


async def test_propose_from_the_flow(
    hass: HomeAssistant, street: Cluster, socket_enabled: None
) -> None:
    founder, member = street.nodes[0], street.nodes[1]
    entry = await _entry(hass, founder)
    result = await _open(hass, entry, "neighbourhood_propose")
    assert (result["type"], result["step_id"]) == (FlowResultType.FORM, "neighbourhood_propose")
    result = await hass.config_entries.options.async_configure(result["flow_id"], CELLAR)
    assert (result["type"], result["reason"]) == (FlowResultType.ABORT, "task_proposed")
    assert result["description_placeholders"] == {
        "task": "Cellar humidity (%)", "task_id": "cellar_humidity"
    }
    tasks = {t["task"]: t["spec"] for t in (await _api(hass, founder, "GET", "/tasks"))["tasks"]}
    assert set(tasks["cellar_humidity"]) == set(CELLAR_SPEC)
    for name, value in CELLAR_SPEC.items():
        assert tasks["cellar_humidity"][name] == value, name

    # The loaded entry has the task and its sensors at once, without a reload.
    assert "cellar_humidity" in entry.runtime_data.coordinator.data.specs
    registry = er.async_get(hass)
    for key in ("mean", "contributors"):
        entity_id = registry.async_get_entity_id(
            "sensor", DOMAIN, f"{founder.node_id}_cellar_humidity_{key}"
        )
        assert entity_id is not None and hass.states.get(entity_id) is not None, key
    result = await _open(hass, entry, "neighbourhood_tasks")
    offered = [o["value"] for o in result["data_schema"].schema[CONF_TASKS].config["options"]]
    assert "cellar_humidity" in offered
    hass.config_entries.options.async_abort(result["flow_id"])

    # Without committee settings the node picks k and t from the hubs that compute; a
    # non-founder's node forwards the proposal to the founder.
    second = await _entry(hass, member)
    result = await _open(hass, second, "neighbourhood_propose")
    attic = {"metric": "Attic temperature", "unit": "°C", "low": -30, "high": 60,
             "resolution": 0.1, "stats": ["mean"], "period_minutes": 15,
             "min_contributors": 3}
    result = await hass.config_entries.options.async_configure(result["flow_id"], attic)
    assert (result["type"], result["reason"]) == (FlowResultType.ABORT, "task_proposed")
    status = await _api(hass, founder, "GET", "/status")
    computing = sum(not m["input_only"] for m in status["members"])
    tasks = {t["task"]: t for t in (await _api(hass, founder, "GET", "/tasks"))["tasks"]}
    spec = tasks["attic_temperature"]["spec"]
    assert (spec["k"], spec["t"]) == ((5, 2) if computing >= 5 else (3, 1))
    assert (spec["low"], spec["high"], spec["period_s"], spec["buckets"]) == (
        -30.0, 60.0, 900, []
    )
    assert tasks["attic_temperature"]["proposed_by"] == member.node_id
    await _unload(hass, entry, second)


async def test_refused_proposals_keep_the_input(
    hass: HomeAssistant, street: Cluster, socket_enabled: None
) -> None:
    founder = street.nodes[0]
    entry = await _entry(hass, founder)
    garage = {"metric": "Garage temperature", "unit": "°C", "low": -20, "high": 40,
              "resolution": 0.5, "stats": ["mean", "histogram"], "buckets": "0, 10, 20",
              "period_minutes": 60, "min_contributors": 3}
    result = await _open(hass, entry, "neighbourhood_propose")
    result = await hass.config_entries.options.async_configure(result["flow_id"], garage)
    assert result["reason"] == "task_proposed"

    cases: list[tuple[dict[str, Any], dict[str, str]]] = [
        ({"low": 40, "high": 40}, {"high": "high_not_above_low"}),
        ({"buckets": "-25, 0, 10"}, {"buckets": "buckets_outside_range"}),
        ({"buckets": "10, 0"}, {"buckets": "buckets_not_increasing"}),
        ({"committee_size": 3, "threshold": 3}, {"threshold": "threshold_too_high"}),
        ({"committee_size": 4, "threshold": 2}, {"threshold": "threshold_too_high"}),
        ({"min_contributors": 5.9}, {"min_contributors": "whole_number"}),
        ({"committee_size": 5.5, "threshold": 2}, {"committee_size": "whole_number"}),
        # The node refuses these: another task under the same metric...
        ({"high": 50}, {"metric": "task_exists"}),
        # ...a committee larger than the hubs that compute...
        ({"metric": "Garage power", "committee_size": 9, "threshold": 4},
         {"committee_size": "too_few_members"}),
        # ...and a grid too fine for the field (its reason shown on the field).
        ({"metric": "Garage power", "low": 0, "high": 1e9, "resolution": 0.001,
          "stats": ["variance"], "buckets": ""}, {"resolution": "invalid_task"}),
    ]
    result = await _open(hass, entry, "neighbourhood_propose")
    for change, errors in cases:
        proposal = {**garage, **change}
        result = await hass.config_entries.options.async_configure(result["flow_id"], proposal)
        assert (result["type"], result["step_id"]) == (
            FlowResultType.FORM, "neighbourhood_propose"
        ), change
        assert result["errors"] == errors, change
        assert _suggested(result) == proposal, change  # nothing the user typed is lost
    assert "resolution" in result["description_placeholders"]["message"]
    tasks = {t["task"] for t in (await _api(hass, founder, "GET", "/tasks"))["tasks"]}
    assert "garage_power" not in tasks
    spec = next(t["spec"] for t in (await _api(hass, founder, "GET", "/tasks"))["tasks"]
                if t["task"] == "garage_temperature")
    assert spec["high"] == 40.0  # the refused change did not touch the task
    await _unload(hass, entry)


async def test_members_step_matches_the_nodes(
    hass: HomeAssistant, street: Cluster, socket_enabled: None
) -> None:
    for node in street.nodes[:2]:
        entry = await _entry(hass, node)
        result = await _open(hass, entry, "neighbourhood_members")
        assert (result["type"], result["reason"]) == (FlowResultType.ABORT, "members")
        status = await _api(hass, node, "GET", "/status")
        rows = result["description_placeholders"]["members"].split("\n")
        assert result["description_placeholders"]["count"] == str(len(status["members"]))
        assert len(rows) == len(status["members"]) >= 3
        cells = {}
        for row in rows:
            name, *rest = (c.strip() for c in row.strip("|").split("|"))
            cells[name.removeprefix("**").removesuffix("** ⌂")] = (name, rest)
        assert {"house0", "house1", "house2"} <= set(cells)
        assert rows[0].startswith("| **house0**" if node is street.nodes[0] else "| house0 ")
        for member in status["members"]:
            name, (founder, online, computes, capacity, post_quantum) = cells[member["name"]]
            assert founder == ("✓" if member["founder"] else "✗")
            assert founder == ("✓" if member["name"] == "house0" else "✗")
            assert online == {True: "✓", False: "✗", None: "?"}[member["online"]]
            assert computes == ("✗" if member["input_only"] else "✓")
            assert capacity == f"{member['capacity']:g}"
            assert post_quantum == ("✓" if member["post_quantum"] else "✗")
            # This hub, and only it, is marked.
            assert name.endswith("⌂") == (member["node_id"] == node.node_id)
        await _unload(hass, entry)


def test_cluster_logs_are_clean(street: Cluster) -> None:
    """No node logged a traceback while Home Assistant used it."""
    for node in street.nodes:
        assert "Traceback" not in node.log_text(), node.log_text()[-3000:]
