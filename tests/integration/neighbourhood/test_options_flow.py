"""Options: a menu; opting in to tasks (one matching sensor each: nothing is shared until
then), and the lifecycle steps' answers to each backend refusal (the backend double; the
same steps against real nodes are in test_lifecycle_options.py)."""

from __future__ import annotations

from typing import Any

import pytest
from homeassistant.config_entries import ConfigEntryState, ConfigFlowResult
from homeassistant.const import ATTR_DEVICE_CLASS, ATTR_UNIT_OF_MEASUREMENT
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType, InvalidData
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.hearth.neighbourhood.const import (
    CONF_CONTRIBUTIONS,
    CONF_ENTITY,
    CONF_TASKS,
)
from custom_components.hearth.neighbourhood.options_flow import members_table
from custom_components.hearth.neighbourhood.roster import Member

from .conftest import neighbourhood_entry
from .fake_backend import POWER_TASK, TOKEN, FakeBackend

TEMPERATURE = "sensor.kitchen_temperature"
MENU = ["neighbourhood_tasks", "neighbourhood_invite", "neighbourhood_propose",
        "neighbourhood_members"]
HUMIDITY = "sensor.kitchen_humidity"
POWER = "sensor.house_power"


async def _open(hass: HomeAssistant, entry: MockConfigEntry, step: str) -> ConfigFlowResult:
    """Open the options menu and choose ``step``."""
    result = await hass.config_entries.options.async_init(entry.entry_id)
    assert (result["type"], result["step_id"]) == (FlowResultType.MENU, "init")
    assert result["menu_options"] == MENU
    return await hass.config_entries.options.async_configure(
        result["flow_id"], {"next_step_id": step}
    )


def _states(hass: HomeAssistant) -> None:
    hass.states.async_set(TEMPERATURE, "70.1", {ATTR_UNIT_OF_MEASUREMENT: "°F",
                                                ATTR_DEVICE_CLASS: "temperature"})
    hass.states.async_set(HUMIDITY, "41", {ATTR_UNIT_OF_MEASUREMENT: "%",
                                           ATTR_DEVICE_CLASS: "humidity"})
    hass.states.async_set(POWER, "812", {ATTR_UNIT_OF_MEASUREMENT: "W",
                                         ATTR_DEVICE_CLASS: "power"})


async def test_opt_in_to_two_tasks(
    hass: HomeAssistant, backend: FakeBackend, loaded: MockConfigEntry
) -> None:
    backend.tasks.append(dict(POWER_TASK))
    _states(hass)
    assert loaded.runtime_data.contributors == {}

    result = await _open(hass, loaded, "neighbourhood_tasks")
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "neighbourhood_tasks"
    selector = result["data_schema"].schema[CONF_TASKS].config
    assert selector["multiple"] is True
    assert selector["options"] == [
        {"value": "indoor_temperature", "label": "Indoor temperature (°C)"},
        {"value": "power", "label": "Household power (W)"},
    ]
    assert result["description_placeholders"] == {
        "minimums": "Indoor temperature (°C): 3, Household power (W): 4"
    }

    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {CONF_TASKS: ["power", "indoor_temperature"]}
    )
    assert result["step_id"] == "neighbourhood_task"
    assert result["description_placeholders"]["metric"] == "Indoor temperature"
    assert result["description_placeholders"]["min_contributors"] == "3"
    entity_filter = result["data_schema"].schema[CONF_ENTITY].config["filter"][0]
    assert entity_filter["domain"] == ["sensor"]
    assert entity_filter["device_class"] == ["temperature"]
    assert {"°C", "°F", "K"} <= set(entity_filter["unit_of_measurement"])

    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {CONF_ENTITY: HUMIDITY}
    )
    assert result["errors"] == {CONF_ENTITY: "unit_mismatch"}
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {CONF_ENTITY: "sensor.does_not_exist"}
    )
    assert result["errors"] == {CONF_ENTITY: "unknown_entity"}
    # The neighbourhood's own mean has the task's unit, but it is no reading of this home.
    aggregate = "sensor.neighbourhood_indoor_temperature_mean"
    assert hass.states.get(aggregate) is not None
    assert aggregate in result["data_schema"].schema[CONF_ENTITY].config["exclude_entities"]
    with pytest.raises(InvalidData):
        await hass.config_entries.options.async_configure(
            result["flow_id"], {CONF_ENTITY: aggregate}
        )
    assert TEMPERATURE not in result["data_schema"].schema[CONF_ENTITY].config[
        "exclude_entities"]
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {CONF_ENTITY: TEMPERATURE}  # °F converts to the task's °C
    )
    assert result["step_id"] == "neighbourhood_task"
    assert result["description_placeholders"]["metric"] == "Household power"
    entity_filter = result["data_schema"].schema[CONF_ENTITY].config["filter"][0]
    assert entity_filter["device_class"] == ["power"]
    assert "W" in entity_filter["unit_of_measurement"]

    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {CONF_ENTITY: POWER}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert loaded.options == {
        CONF_CONTRIBUTIONS: {"indoor_temperature": TEMPERATURE, "power": POWER}
    }
    await hass.async_block_till_done()  # the entry reloads with the new choice
    assert loaded.state is ConfigEntryState.LOADED
    contributors = loaded.runtime_data.contributors
    assert {t: c.entity_id for t, c in contributors.items()} == {
        "indoor_temperature": TEMPERATURE, "power": POWER
    }
    assert contributors["indoor_temperature"].samples == [(70.1 - 32) * 5 / 9]
    assert contributors["power"].samples == [812.0]


async def test_opting_out_keeps_the_choice_as_default(
    hass: HomeAssistant, backend: FakeBackend
) -> None:
    _states(hass)
    entry = neighbourhood_entry(hass, backend.url, backend.token, backend.node_id,
                                {"indoor_temperature": TEMPERATURE})
    assert await hass.config_entries.async_setup(entry.entry_id)
    result = await _open(hass, entry, "neighbourhood_tasks")
    schema = result["data_schema"].schema
    key = next(k for k in schema if k == CONF_TASKS)
    assert key.default() == ["indoor_temperature"]
    # The current sensor is offered again for the task.
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {CONF_TASKS: ["indoor_temperature"]}
    )
    entity_key = next(k for k in result["data_schema"].schema if k == CONF_ENTITY)
    assert entity_key.description == {"suggested_value": TEMPERATURE}
    hass.config_entries.options.async_abort(result["flow_id"])

    result = await _open(hass, entry, "neighbourhood_tasks")
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {CONF_TASKS: []}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert entry.options == {CONF_CONTRIBUTIONS: {}}
    await hass.async_block_till_done()
    assert entry.runtime_data.contributors == {}


async def test_options_need_the_backend(
    hass: HomeAssistant, backend: FakeBackend, loaded: MockConfigEntry
) -> None:
    """Tasks come from the backend: no answer, a refused token or no tasks abort clearly."""
    backend.tasks.clear()
    result = await _open(hass, loaded, "neighbourhood_tasks")
    assert (result["type"], result["reason"]) == (FlowResultType.ABORT, "no_tasks")

    backend.token = "rotated"
    result = await _open(hass, loaded, "neighbourhood_tasks")
    assert (result["type"], result["reason"]) == (FlowResultType.ABORT, "backend_invalid_auth")

    await backend.stop()
    result = await _open(hass, loaded, "neighbourhood_tasks")
    assert (result["type"], result["reason"]) == (FlowResultType.ABORT, "backend_unreachable")


async def test_invite_refusals(
    hass: HomeAssistant, backend: FakeBackend, loaded: MockConfigEntry
) -> None:
    """Each reason the node gives for not issuing an invite has its own error; the form
    stays, with the chosen validity."""
    result = await _open(hass, loaded, "neighbourhood_invite")
    refusals = [
        ((403, "not_founder", "only the founder (house0) can issue invites in this version",
          None), "not_founder"),
        ((502, "relay_unavailable", "could not create the newcomer's account on the relay: "
          "connection refused", None), "relay_unavailable"),
        ((422, "no_relay_admin", "this node has no broker admin account to provision the "
          "newcomer with", None), "no_relay_admin"),
        ((500, "internal", "internal error; see the node's log", None), "backend_refused"),
    ]
    for refusal, error in refusals:
        backend.refuse["invites"] = refusal
        result = await hass.config_entries.options.async_configure(
            result["flow_id"], {"expires_hours": 12}
        )
        assert (result["step_id"], result["errors"]) == ("neighbourhood_invite",
                                                         {"base": error})
        placeholders = result["description_placeholders"]
        assert placeholders["message"] == refusal[2]
        # The founder is named from the node's member list (house0 in the double).
        assert placeholders["founder"] == ("house0" if error == "not_founder" else "-")
    assert backend.invites == []

    backend.token = "rotated"
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {"expires_hours": 12}
    )
    assert result["errors"] == {"base": "invalid_auth"}
    backend.token = TOKEN
    await backend.stop()
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {"expires_hours": 12}
    )
    assert result["errors"] == {"base": "cannot_connect"}
    assert result["description_placeholders"]["url"] == backend.url
    await backend.start()
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {"expires_hours": 12}
    )
    assert (result["type"], result["reason"]) == (FlowResultType.ABORT, "invite_created")
    assert result["description_placeholders"]["token"] == backend.invites[0]["token"]


GARAGE = {"metric": "Garage temperature", "unit": "°C", "low": -20, "high": 40,
          "resolution": 0.5, "stats": ["mean"], "period_minutes": 60, "min_contributors": 3}


async def test_propose_checks_before_sending(
    hass: HomeAssistant, backend: FakeBackend, loaded: MockConfigEntry
) -> None:
    """Mistakes the form can see are shown on their field, and nothing is sent."""
    cases: list[tuple[dict[str, Any], dict[str, str]]] = [
        ({"metric": "  "}, {"metric": "metric_required"}),
        ({"stats": []}, {"stats": "stats_required"}),
        ({"resolution": 0}, {"resolution": "resolution_positive"}),
        ({"resolution": 0.7}, {"resolution": "resolution_off_grid"}),
        ({"stats": ["histogram"]}, {"buckets": "buckets_required"}),
        ({"buckets": "10, 20"}, {"buckets": "buckets_unused"}),
        ({"stats": ["quantiles"], "buckets": "10, warm"}, {"buckets": "buckets_invalid"}),
        ({"stats": ["quantiles"], "buckets": "10, nan"}, {"buckets": "buckets_invalid"}),
        ({"stats": ["quantiles"], "buckets": "10.25"}, {"buckets": "buckets_off_grid"}),
        ({"stats": ["quantiles"], "buckets": "10, 40.5"}, {"buckets": "buckets_outside_range"}),
        ({"stats": ["quantiles"], "buckets": ", ".join(str(e) for e in range(-19, 40))
          + ", " + ", ".join(str(e + 0.5) for e in range(-20, 40))},
         {"buckets": "buckets_not_increasing"}),
        ({"committee_size": 5}, {"threshold": "committee_incomplete"}),
        ({"threshold": 2}, {"committee_size": "committee_incomplete"}),
        ({"dp_epsilon": 0}, {"dp_epsilon": "dp_epsilon_positive"}),
        ({"low": 50, "stats": ["quantiles"], "buckets": "10"}, {"high": "high_not_above_low"}),
    ]
    result = await _open(hass, loaded, "neighbourhood_propose")
    for change, errors in cases:
        result = await hass.config_entries.options.async_configure(
            result["flow_id"], {**GARAGE, **change}
        )
        assert result["errors"] == errors, change
    assert "POST /api/v1/tasks" not in backend.requests


async def test_propose_refusals(
    hass: HomeAssistant, backend: FakeBackend, loaded: MockConfigEntry
) -> None:
    """The node's refusals land on the field it names, or say what to do."""
    refusals = [
        ((400, "invalid_task", "period_s must be 10 seconds to 7 days, got 0", "period_s"),
         {"period_minutes": "invalid_task"}),
        ((400, "invalid_task", "task spec must be a JSON object", None),
         {"base": "invalid_task"}),
        ((422, "too_few_members", "task needs a committee of 3 but only 2 member(s) accept "
          "compute work; invite more hubs first", "k"), {"base": "too_few_members"}),
        ((422, "too_many_tasks", "house0 has already proposed 16 tasks, the most one member "
          "may; tasks cannot be removed yet", None), {"base": "too_many_tasks"}),
        ((502, "peer_error", "could not reach the founder: timed out", None),
         {"base": "founder_unreachable"}),
        ((403, "unauthorized_member", "the founder refused the task: nope", None),
         {"base": "backend_refused"}),
    ]
    result = await _open(hass, loaded, "neighbourhood_propose")
    for refusal, errors in refusals:
        backend.refuse["tasks"] = refusal
        result = await hass.config_entries.options.async_configure(result["flow_id"], GARAGE)
        assert result["errors"] == errors, refusal
        assert result["description_placeholders"]["message"] == refusal[2]
        assert result["description_placeholders"]["founder"] == (
            "house0" if "founder_unreachable" in errors.values() else "-"
        )
    backend.token = "rotated"
    result = await hass.config_entries.options.async_configure(result["flow_id"], GARAGE)
    assert result["errors"] == {"base": "invalid_auth"}
    backend.token = TOKEN
    await backend.stop()
    result = await hass.config_entries.options.async_configure(result["flow_id"], GARAGE)
    assert result["errors"] == {"base": "cannot_connect"}
    await backend.start()
    result = await hass.config_entries.options.async_configure(result["flow_id"], GARAGE)
    assert (result["type"], result["reason"]) == (FlowResultType.ABORT, "task_proposed")
    assert result["description_placeholders"] == {
        "task": "Garage temperature (°C)", "task_id": "garage_temperature"
    }
    # The entry's coordinator refreshed: the task's sensors exist without a reload.
    assert "garage_temperature" in loaded.runtime_data.coordinator.data.specs
    assert hass.states.get("sensor.neighbourhood_garage_temperature_mean") is not None


async def test_members_step(
    hass: HomeAssistant, backend: FakeBackend, loaded: MockConfigEntry
) -> None:
    backend.members_online = 2
    backend.classical = {"house2"}
    backend.households = 2  # listed here, not in every poll's status
    result = await _open(hass, loaded, "neighbourhood_members")
    assert (result["type"], result["reason"]) == (FlowResultType.ABORT, "members")
    assert result["description_placeholders"] == {
        "count": "5",
        "households": "2",
        "members": "| **house0** ⌂ | ✓ | ✓ | ✓ | 1 | ✓ |\n"
                   "| house1 | ✗ | ✓ | ✓ | 1 | ✓ |\n"
                   "| house2 | ✗ | ✗ | ✓ | 1 | ✗ |\n"
                   "| household0 | ✗ | ? | ✗ | - | ✓ |\n"
                   "| household1 | ✗ | ? | ✗ | - | ✓ |",
    }
    assert loaded.options == {CONF_CONTRIBUTIONS: {}}

    backend.token = "rotated"
    result = await _open(hass, loaded, "neighbourhood_members")
    assert (result["type"], result["reason"]) == (FlowResultType.ABORT, "backend_invalid_auth")
    await backend.stop()
    result = await _open(hass, loaded, "neighbourhood_members")
    assert (result["type"], result["reason"]) == (FlowResultType.ABORT, "backend_unreachable")


def test_members_table_escapes_names_and_marks_unknowns() -> None:
    """Names are other households' words (Markdown in them stays text); an input-only hub
    has no capacity, and what the node does not know shows as "?"."""
    members = [
        Member("b" * 32, "zed", founder=False, online=None, input_only=True, capacity=1.0,
               post_quantum=None, this_hub=True),
        Member("a" * 32, "[x](http://e.vil) | *y*", founder=True, online=False,
               input_only=False, capacity=2.5, post_quantum=True, this_hub=False),
    ]
    assert members_table(members) == (
        "| \\[x\\]\\(http://e.vil\\) \\| \\*y\\* | ✓ | ✗ | ✓ | 2.5 | ✓ |\n"
        "| **zed** ⌂ | ✗ | ? | ✗ | - | ? |"
    )
