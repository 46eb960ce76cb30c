"""The actions hearth.contribute_now, hearth.get_results and hearth.create_invite."""

from __future__ import annotations

import datetime as dt
import time

import pytest
import voluptuous as vol
from homeassistant.const import ATTR_DEVICE_CLASS, ATTR_UNIT_OF_MEASUREMENT, STATE_UNAVAILABLE
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.hearth.const import DOMAIN
from custom_components.hearth.neighbourhood.const import (
    SERVICE_CONTRIBUTE_NOW,
    SERVICE_GET_RESULTS,
)

from .conftest import neighbourhood_entry
from .fake_backend import FakeBackend

SOURCE = "sensor.hall_temperature"
CELSIUS = {ATTR_UNIT_OF_MEASUREMENT: "°C", ATTR_DEVICE_CLASS: "temperature"}


@pytest.fixture
async def opted_in(hass: HomeAssistant, backend: FakeBackend) -> MockConfigEntry:
    hass.states.async_set(SOURCE, "21.4", CELSIUS)
    entry = neighbourhood_entry(hass, backend.url, backend.token, backend.node_id,
                                {"indoor_temperature": SOURCE})
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    return entry


async def _call(hass: HomeAssistant, service: str, data: dict, response: bool = True) -> dict:
    return await hass.services.async_call(
        DOMAIN, service, data, blocking=True, return_response=response
    )


async def test_contribute_now(
    hass: HomeAssistant, backend: FakeBackend, opted_in: MockConfigEntry
) -> None:
    answer = await _call(hass, SERVICE_CONTRIBUTE_NOW, {"task": "indoor_temperature"})
    assert backend.readings[-1]["value"] == 21.4
    assert answer == {"task": "indoor_temperature", "round": backend.readings[-1]["round"],
                      "duplicate": False}
    # The same reading again is harmless; the entry id may be given explicitly.
    again = await _call(hass, SERVICE_CONTRIBUTE_NOW,
                        {"task": "indoor_temperature", "config_entry_id": opted_in.entry_id})
    assert again["duplicate"] is True
    await _call(hass, SERVICE_CONTRIBUTE_NOW, {"task": "indoor_temperature"}, response=False)

    hass.states.async_set(SOURCE, "22.0", CELSIUS)
    with pytest.raises(HomeAssistantError) as err:
        await _call(hass, SERVICE_CONTRIBUTE_NOW, {"task": "indoor_temperature"})
    assert err.value.translation_key == "already_contributed"

    hass.states.async_set(SOURCE, STATE_UNAVAILABLE, CELSIUS)
    with pytest.raises(ServiceValidationError) as err:
        await _call(hass, SERVICE_CONTRIBUTE_NOW, {"task": "indoor_temperature"})
    assert err.value.translation_key == "no_valid_state"

    with pytest.raises(ServiceValidationError) as err:
        await _call(hass, SERVICE_CONTRIBUTE_NOW, {"task": "power"})
    assert err.value.translation_key == "task_not_opted_in"


async def test_contribute_now_backend_failures(
    hass: HomeAssistant, backend: FakeBackend, opted_in: MockConfigEntry
) -> None:
    hass.states.async_set(SOURCE, "99", CELSIUS)  # clipped to the task's 40
    backend.spec("indoor_temperature")["high"] = 30.0  # ...which the backend now refuses
    with pytest.raises(HomeAssistantError) as err:
        await _call(hass, SERVICE_CONTRIBUTE_NOW, {"task": "indoor_temperature"})
    assert err.value.translation_key == "backend_refused"
    assert "outside the task range" in err.value.translation_placeholders["message"]

    backend.token = "rotated"
    with pytest.raises(HomeAssistantError) as err:
        await _call(hass, SERVICE_CONTRIBUTE_NOW, {"task": "indoor_temperature"})
    assert err.value.translation_key == "backend_invalid_auth"
    await hass.async_block_till_done()
    assert [f["context"]["source"] for f in
            hass.config_entries.flow.async_progress_by_handler(DOMAIN)] == ["reauth"]

    await backend.stop()
    with pytest.raises(HomeAssistantError) as err:
        await _call(hass, SERVICE_CONTRIBUTE_NOW, {"task": "indoor_temperature"})
    assert err.value.translation_key == "backend_unreachable"


async def test_get_results(
    hass: HomeAssistant, backend: FakeBackend, opted_in: MockConfigEntry
) -> None:
    backend.publish("indoor_temperature", 40, [20.0, 22.0, 24.0])
    backend.publish("indoor_temperature", 41, [21.0], status="insufficient",
                    reason="1 contributor, 3 needed")
    answer = await _call(hass, SERVICE_GET_RESULTS, {"task": "indoor_temperature"})
    assert [r["round"] for r in answer["results"]] == [41]
    answer = await _call(hass, SERVICE_GET_RESULTS, {"limit": 5})
    older, newer = answer["results"][1], answer["results"][0]
    assert (newer["status"], newer["reason"], newer["statistics"]) == (
        "insufficient", "1 contributor, 3 needed", None
    )
    assert older["statistics"]["mean"] == pytest.approx(22.0)
    assert older["statistics"]["stddev"] == pytest.approx((8 / 3) ** 0.5)
    assert older["contributors"] == 3

    with pytest.raises(ServiceValidationError) as err:
        await _call(hass, SERVICE_GET_RESULTS, {"task": "no_such_task"})
    assert err.value.translation_placeholders == {"task": "no_such_task",
                                                  "tasks": "indoor_temperature"}
    await backend.stop()
    with pytest.raises(HomeAssistantError) as err:
        await _call(hass, SERVICE_GET_RESULTS, {})
    assert err.value.translation_key == "backend_unreachable"


async def test_which_entry(
    hass: HomeAssistant, backend: FakeBackend, opted_in: MockConfigEntry
) -> None:
    """Without config_entry_id the one loaded entry is used; otherwise it must be named."""
    with pytest.raises(ServiceValidationError) as err:
        await _call(hass, SERVICE_GET_RESULTS, {"config_entry_id": "nonsense"})
    assert err.value.translation_key == "not_a_neighbourhood"

    other = FakeBackend(node_id="9" * 32, name="house9")
    await other.start()
    try:
        second = neighbourhood_entry(hass, other.url, other.token, other.node_id)
        assert await hass.config_entries.async_setup(second.entry_id)
        with pytest.raises(ServiceValidationError) as err:
            await _call(hass, SERVICE_GET_RESULTS, {})
        assert err.value.translation_key == "neighbourhood_ambiguous"
        other.publish("indoor_temperature", 5, [1.0, 2.0, 3.0])
        answer = await _call(hass, SERVICE_GET_RESULTS, {"config_entry_id": second.entry_id})
        assert answer["results"][0]["round"] == 5

        assert await hass.config_entries.async_unload(second.entry_id)
        with pytest.raises(ServiceValidationError) as err:
            await _call(hass, SERVICE_GET_RESULTS, {"config_entry_id": second.entry_id})
        assert err.value.translation_key == "entry_not_loaded"
    finally:
        await other.stop()

    assert await hass.config_entries.async_unload(opted_in.entry_id)
    with pytest.raises(ServiceValidationError) as err:
        await _call(hass, SERVICE_GET_RESULTS, {})
    assert err.value.translation_key == "no_neighbourhood"


async def test_create_invite(
    hass: HomeAssistant, backend: FakeBackend, opted_in: MockConfigEntry
) -> None:
    """The token and expiry are the node's; its refusals become translated errors (the
    real nodes' answers are in test_lifecycle_options.py)."""
    answer = await _call(hass, "create_invite", {})
    issued = backend.invites[-1]
    assert answer == {
        "token": issued["token"],
        "expires_at": dt.datetime.fromtimestamp(issued["expires_at"], dt.UTC).isoformat(),
        "federation": "Elm Street",
    }
    # The default validity is a day.
    assert issued["expires_at"] == pytest.approx(time.time() + 24 * 3600, abs=5)
    await _call(hass, "create_invite", {"expires_hours": 168,
                                        "config_entry_id": opted_in.entry_id})
    assert backend.invites[-1]["expires_at"] == pytest.approx(time.time() + 168 * 3600, abs=5)
    await _call(hass, "create_invite", {"expires_hours": 1.5})  # fractions of an hour too
    assert backend.invites[-1]["expires_at"] == pytest.approx(time.time() + 5400, abs=5)
    for hours in (0, 0.5, 169, "tomorrow"):
        with pytest.raises(vol.Invalid):
            await _call(hass, "create_invite", {"expires_hours": hours})

    backend.refuse["invites"] = (403, "not_founder", "only the founder (house0) can issue "
                                 "invites in this version", None)
    with pytest.raises(ServiceValidationError) as err:
        await _call(hass, "create_invite", {})
    assert (err.value.translation_key, err.value.translation_placeholders) == (
        "not_founder", {"founder": "house0"}
    )
    for code in ("relay_unavailable", "no_relay_admin"):
        backend.refuse["invites"] = (502, code, f"the relay said no ({code})", None)
        with pytest.raises(HomeAssistantError) as err:
            await _call(hass, "create_invite", {})
        assert (err.value.translation_key, err.value.translation_placeholders) == (
            code, {"message": f"the relay said no ({code})"}
        )
    backend.refuse["invites"] = (500, "internal", "internal error; see the node's log", None)
    with pytest.raises(HomeAssistantError) as err:
        await _call(hass, "create_invite", {})
    assert err.value.translation_key == "backend_refused"
    await backend.stop()
    with pytest.raises(HomeAssistantError) as err:
        await _call(hass, "create_invite", {})
    assert err.value.translation_key == "backend_unreachable"
