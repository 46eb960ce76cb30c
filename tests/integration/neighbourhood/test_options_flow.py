"""Options: a menu; opting in to tasks (one matching sensor each: nothing is shared until
then), and the lifecycle steps' answers to each backend refusal (the backend double; the
same steps against real nodes are in test_lifecycle_options.py)."""

from __future__ import annotations

from homeassistant.config_entries import ConfigEntryState, ConfigFlowResult
from homeassistant.const import ATTR_DEVICE_CLASS, ATTR_UNIT_OF_MEASUREMENT
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.hearth.neighbourhood.const import (
    CONF_CONTRIBUTIONS,
    CONF_ENTITY,
    CONF_TASKS,
)

from .conftest import neighbourhood_entry
from .fake_backend import POWER_TASK, FakeBackend

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
