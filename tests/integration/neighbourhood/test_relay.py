"""The relay: when the federation's messages go through an MQTT broker, a connectivity
sensor says whether this hub's node is connected to it (issue 11)."""

from __future__ import annotations

from typing import Any

import pytest
from homeassistant.const import (
    ATTR_DEVICE_CLASS,
    ATTR_FRIENDLY_NAME,
    STATE_OFF,
    STATE_ON,
    STATE_UNAVAILABLE,
    EntityCategory,
)
from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er
from homeassistant.helpers.json import json_dumps
from homeassistant.helpers.translation import async_get_translations
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.hearth.const import DOMAIN
from custom_components.hearth.diagnostics import async_get_config_entry_diagnostics
from custom_components.hearth.neighbourhood.models import NodeStatus, RelayStatus

from .conftest import wait_for
from .fake_backend import NODE_ID, FakeBackend, relay_block

RELAY = "binary_sensor.neighbourhood_relay"
BACKEND = "binary_sensor.neighbourhood_backend"
MEMBERS_ONLINE = "sensor.neighbourhood_members_online"
REFUSED = "connection refused: not authorised"


async def refresh(hass: HomeAssistant, entry: MockConfigEntry) -> None:
    await entry.runtime_data.coordinator.async_refresh()
    await hass.async_block_till_done()


async def test_connected_relay(
    hass: HomeAssistant, backend: FakeBackend, entry: MockConfigEntry
) -> None:
    backend.relay = {
        "url": "mqtts://relay.example.net:8883", "mailbox": "h-3f9a0c1d2e", "connected": True,
        "since": "2026-11-30T01:02:03Z", "last_error": None, "reconnects": 0,
    }
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()

    state = hass.states.get(RELAY)
    assert state.state == STATE_ON
    assert state.attributes[ATTR_FRIENDLY_NAME] == "Neighbourhood Relay"
    assert state.attributes[ATTR_DEVICE_CLASS] == "connectivity"
    # Few attributes: the mailbox and the reconnect count are in the diagnostics only.
    assert {k: state.attributes[k] for k in ("url", "since", "last_error")} == {
        "url": "mqtts://relay.example.net:8883",
        "since": "2026-11-30T01:02:03+00:00",
        "last_error": None,
    }
    assert "mailbox" not in state.attributes and "reconnects" not in state.attributes

    registry = er.async_get(hass)
    relay, backend_entity = registry.async_get(RELAY), registry.async_get(BACKEND)
    assert relay.unique_id == f"{NODE_ID}_relay"
    assert relay.translation_key == "relay"
    assert relay.entity_category is EntityCategory.DIAGNOSTIC
    assert relay.device_id == backend_entity.device_id  # on the Neighbourhood device


async def test_disconnected_relay_says_why(
    hass: HomeAssistant, backend: FakeBackend, entry: MockConfigEntry
) -> None:
    backend.relay = relay_block(False, since=1_767_225_600.0, last_error=REFUSED, reconnects=3)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()

    state = hass.states.get(RELAY)
    assert state.state == STATE_OFF
    assert state.attributes["last_error"] == REFUSED
    assert state.attributes["since"] == "2026-01-01T00:00:00+00:00"
    # The backend itself answers: its own sensor is on.
    assert hass.states.get(BACKEND).state == STATE_ON


async def test_no_relay_no_sensor(
    hass: HomeAssistant, backend: FakeBackend, loaded: MockConfigEntry
) -> None:
    """A federation on direct HTTP (``"relay": null``) gets no relay sensor."""
    assert hass.states.get(RELAY) is None
    assert er.async_get(hass).async_get_entity_id("binary_sensor", DOMAIN, f"{NODE_ID}_relay") \
        is None
    assert hass.states.get(BACKEND).state == STATE_ON


async def test_relay_appears_changes_and_goes(
    hass: HomeAssistant, backend: FakeBackend, loaded: MockConfigEntry
) -> None:
    backend.relay = relay_block(True)
    await refresh(hass, loaded)
    assert hass.states.get(RELAY).state == STATE_ON

    backend.relay = relay_block(False, last_error=REFUSED, reconnects=1)
    await refresh(hass, loaded)
    state = hass.states.get(RELAY)
    assert (state.state, state.attributes["last_error"]) == (STATE_OFF, REFUSED)

    backend.relay = relay_block(True, since=1_767_225_700.0)
    await refresh(hass, loaded)
    state = hass.states.get(RELAY)
    assert state.state == STATE_ON
    assert state.attributes["since"] == "2026-01-01T00:01:40+00:00"

    # Back to direct HTTP: the sensor stays (history), unavailable; one entity only.
    backend.relay = None
    await refresh(hass, loaded)
    assert hass.states.get(RELAY).state == STATE_UNAVAILABLE
    assert hass.states.get(BACKEND).state == STATE_ON
    backend.relay = relay_block(True)
    await refresh(hass, loaded)
    assert hass.states.get(RELAY).state == STATE_ON
    assert sorted(hass.states.async_entity_ids("binary_sensor")) == [BACKEND, RELAY]


async def test_unavailable_while_the_backend_is_down(
    hass: HomeAssistant, backend: FakeBackend, entry: MockConfigEntry
) -> None:
    """The backend sensor turns off; the relay sensor cannot know, so it is unavailable."""
    backend.relay = relay_block(True)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    await wait_for(hass, lambda: backend.open_streams)
    assert hass.states.get(RELAY).state == STATE_ON

    await backend.stop()
    await wait_for(hass, lambda: hass.states.get(BACKEND).state == STATE_OFF)
    assert hass.states.get(RELAY).state == STATE_UNAVAILABLE
    await refresh(hass, entry)  # the poll fails as well
    assert hass.states.get(RELAY).state == STATE_UNAVAILABLE

    backend.relay = relay_block(False, last_error=REFUSED)  # what it says once back
    await backend.start()
    await wait_for(hass, lambda: hass.states.get(BACKEND).state == STATE_ON, timeout=15)
    await refresh(hass, entry)
    assert hass.states.get(RELAY).state == STATE_OFF


async def test_unavailable_after_leaving_the_federation(
    hass: HomeAssistant, backend: FakeBackend, entry: MockConfigEntry
) -> None:
    backend.relay = relay_block(True)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    backend.federation = None
    await refresh(hass, entry)
    assert hass.states.get(RELAY).state == STATE_UNAVAILABLE


async def test_diagnostics_carry_the_relay(
    hass: HomeAssistant, backend: FakeBackend, entry: MockConfigEntry
) -> None:
    backend.relay = relay_block(False, last_error=REFUSED, reconnects=3, since=None)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    diagnostics = await async_get_config_entry_diagnostics(hass, entry)
    assert diagnostics["status"]["relay"] == {
        "url": "mqtts://relay.example.net:8883",
        "connected": False,
        "mailbox": "h-3f9a0c1d2e",
        "since": None,
        "last_error": REFUSED,
        "reconnects": 3,
    }
    json_dumps(diagnostics)  # serialisable as downloaded


async def test_credentials_in_a_relay_url_are_not_shown(
    hass: HomeAssistant, backend: FakeBackend, entry: MockConfigEntry
) -> None:
    backend.relay = relay_block(True, url="mqtts://hub7:s3cr3t-pw@relay.example.net:8883")
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    assert hass.states.get(RELAY).attributes["url"] == "mqtts://relay.example.net:8883"
    diagnostics = await async_get_config_entry_diagnostics(hass, entry)
    assert "s3cr3t-pw" not in json_dumps(diagnostics)
    assert "hub7" not in json_dumps(diagnostics)


async def test_a_malformed_relay_block_is_no_relay(
    hass: HomeAssistant, backend: FakeBackend, entry: MockConfigEntry
) -> None:
    backend.relay = {"url": "mqtts://relay.example.net:8883", "connected": "yes"}
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    assert hass.states.get(RELAY) is None
    assert hass.states.get(MEMBERS_ONLINE).state == "3"
    assert hass.states.get(BACKEND).state == STATE_ON

    backend.relay = relay_block(True)
    await refresh(hass, entry)
    assert hass.states.get(RELAY).state == STATE_ON
    backend.relay = ["mqtts://relay.example.net:8883"]  # type: ignore[assignment]
    await refresh(hass, entry)
    assert hass.states.get(RELAY).state == STATE_UNAVAILABLE
    assert hass.states.get(MEMBERS_ONLINE).state == "3"


async def test_attribute_names_are_translated(
    hass: HomeAssistant, backend: FakeBackend, entry: MockConfigEntry
) -> None:
    backend.relay = relay_block(False, last_error=REFUSED)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    strings = await async_get_translations(hass, "en", "entity", {DOMAIN})
    prefix = f"component.{DOMAIN}.entity.binary_sensor.relay"
    assert strings[f"{prefix}.name"] == "Relay"
    shown = set(hass.states.get(RELAY).attributes) - {
        ATTR_DEVICE_CLASS, ATTR_FRIENDLY_NAME, "icon"
    }
    assert shown == {"url", "since", "last_error"}
    for attribute in shown:
        assert strings[f"{prefix}.state_attributes.{attribute}.name"]


GOOD = {"url": "mqtts://relay.example.net:8883", "mailbox": "h-3f9a0c1d2e",
        "connected": True, "since": "2026-11-30T01:02:03Z", "last_error": None,
        "reconnects": 3}


@pytest.mark.parametrize(
    "block",
    [
        None,
        "mqtts://relay.example.net:8883",
        5,
        [GOOD],
        {},
        {k: v for k, v in GOOD.items() if k != "url"},
        {k: v for k, v in GOOD.items() if k != "connected"},
        GOOD | {"url": 8883},
        GOOD | {"connected": "true"},
        GOOD | {"connected": 1},
        GOOD | {"connected": None},
    ],
)
def test_unreadable_relay_blocks_are_no_relay(block: Any) -> None:
    assert RelayStatus.from_json(block) is None


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({}, ("h-3f9a0c1d2e", "2026-11-30T01:02:03+00:00", None, 3)),
        ({"since": None, "mailbox": None}, (None, None, None, 3)),
        ({"since": "a while ago"}, ("h-3f9a0c1d2e", None, None, 3)),
        ({"since": 1767225600}, ("h-3f9a0c1d2e", None, None, 3)),
        ({"last_error": REFUSED}, ("h-3f9a0c1d2e", "2026-11-30T01:02:03+00:00", REFUSED, 3)),
        ({"last_error": 7, "reconnects": "3"}, ("h-3f9a0c1d2e", "2026-11-30T01:02:03+00:00",
                                                None, None)),
        ({"reconnects": -1}, ("h-3f9a0c1d2e", "2026-11-30T01:02:03+00:00", None, None)),
        ({"reconnects": True}, ("h-3f9a0c1d2e", "2026-11-30T01:02:03+00:00", None, None)),
    ],
)
def test_fields_that_only_describe_are_lenient(change: dict, expected: tuple) -> None:
    relay = RelayStatus.from_json(GOOD | change)
    assert relay is not None
    assert (relay.url, relay.connected) == ("mqtts://relay.example.net:8883", True)
    since = None if relay.since is None else relay.since.isoformat()
    assert (relay.mailbox, since, relay.last_error, relay.reconnects) == expected


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("mqtts://relay.example.net:8883", "mqtts://relay.example.net:8883"),
        ("mqtts://user:pw@relay.example.net:8883", "mqtts://relay.example.net:8883"),
        ("mqtt://user@relay.example.net", "mqtt://relay.example.net"),
        ("mqtts://u:pw@[2001:db8::1]:8883", "mqtts://[2001:db8::1]:8883"),
        ("wss://u:pw@relay.example.net/mqtt", "wss://relay.example.net/mqtt"),
    ],
)
def test_relay_url_without_credentials(url: str, shown: str) -> None:
    relay = RelayStatus.from_json(GOOD | {"url": url})
    assert relay is not None and relay.url == shown


def test_status_without_or_with_a_broken_relay_still_parses() -> None:
    base: dict[str, Any] = {
        "identity": {"node_id": NODE_ID, "name": "house0", "version": "0.1.0"},
        "federation": {"id": "f" * 32, "name": "Elm Street", "members": 3,
                       "members_online": 2},
        "load": {"committee_seats_now": 1},
    }
    assert NodeStatus.from_json(base).relay is None  # an older backend: no key at all
    assert NodeStatus.from_json(base | {"relay": None}).relay is None
    broken = NodeStatus.from_json(base | {"relay": {"connected": True}})
    assert (broken.relay, broken.members_online) == (None, 2)
    relay = NodeStatus.from_json(base | {"relay": GOOD}).relay
    assert relay is not None and relay.connected is True and relay.reconnects == 3
