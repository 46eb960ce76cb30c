"""The Hearth node app's discovery, and the found/join steps, against the backend double.

Discovery: the Supervisor hands Home Assistant the app's ``{url, token}`` (service
``hearth``); one confirmation creates the entry, a changed URL or token updates the
existing one. A backend in no federation continues to the menu: found or join. The same
steps against real nodes are in ``test_lifecycle_flow.py``.
"""

from __future__ import annotations

from typing import Any

import pytest
from homeassistant.config_entries import SOURCE_HASSIO, SOURCE_USER, ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers.service_info.hassio import HassioServiceInfo
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.hearth.const import CONF_KIND, DOMAIN
from custom_components.hearth.neighbourhood.const import (
    CONF_APP,
    CONF_TOKEN,
    CONF_URL,
    KIND_NEIGHBOURHOOD,
)
from tests.backend.nodes import free_port

from .conftest import neighbourhood_entry, wait_for
from .fake_backend import FakeBackend

BROKER = "mqtts://relay.example.net:8883"


SLUG = "a0d7b954_hearth_node"


def discovery(url: str, token: str, slug: str = SLUG) -> HassioServiceInfo:
    """What the Supervisor passes on: the app's config plus its name (``addon``)."""
    return HassioServiceInfo(
        config={CONF_URL: url, CONF_TOKEN: token, "addon": "Hearth node"},
        name="Hearth node", slug=slug, uuid="5" * 32,
    )


async def discover(
    hass: HomeAssistant, url: str, token: str, slug: str = SLUG
) -> dict[str, Any]:
    return await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_HASSIO}, data=discovery(url, token, slug)
    )


def app_entry(hass: HomeAssistant, backend: FakeBackend, slug: str = SLUG) -> MockConfigEntry:
    """An entry that the app ``slug``'s discovery created."""
    entry = MockConfigEntry(
        domain=DOMAIN, title="Elm Street (house0)", unique_id=backend.node_id,
        source=SOURCE_HASSIO,
        data={CONF_KIND: KIND_NEIGHBOURHOOD, CONF_URL: backend.url, CONF_TOKEN: backend.token,
              CONF_APP: slug},
    )
    entry.add_to_hass(hass)
    return entry


def reloads(monkeypatch: pytest.MonkeyPatch, hass: HomeAssistant) -> list[str]:
    """Entry ids whose reload gets scheduled from now on (the reload still happens)."""
    scheduled: list[str] = []
    original = hass.config_entries.async_schedule_reload

    def spy(entry_id: str) -> None:
        scheduled.append(entry_id)
        original(entry_id)

    monkeypatch.setattr(hass.config_entries, "async_schedule_reload", spy)
    return scheduled


async def test_found_node_is_added_after_one_confirmation(
    hass: HomeAssistant, backend: FakeBackend
) -> None:
    result = await discover(hass, backend.url, backend.token)
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "hassio_confirm"
    assert result["data_schema"] is None or not result["data_schema"].schema  # nothing to type
    assert result["description_placeholders"] == {
        "name": "house0", "app": "Hearth node", "slug": SLUG.replace("_", "\\_")}
    [flow] = hass.config_entries.flow.async_progress_by_handler(DOMAIN)
    assert flow["context"]["title_placeholders"] == {"name": "house0"}  # the discovered card
    assert flow["context"]["confirm_only"] is True

    result = await hass.config_entries.flow.async_configure(result["flow_id"], {})
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["title"] == "Elm Street (house0)"
    assert result["data"] == {
        CONF_KIND: KIND_NEIGHBOURHOOD, CONF_URL: backend.url, CONF_TOKEN: backend.token,
        CONF_APP: SLUG,
    }
    entry = result["result"]
    assert (entry.unique_id, entry.source) == (backend.node_id, SOURCE_HASSIO)
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.LOADED


async def test_same_node_again_changes_nothing(
    hass: HomeAssistant, backend: FakeBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The app announces itself at every start: the same URL and token abort quietly."""
    entry = app_entry(hass, backend)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    scheduled = reloads(monkeypatch, hass)
    result = await discover(hass, backend.url + "/", backend.token)
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"
    assert dict(entry.data) == {
        CONF_KIND: KIND_NEIGHBOURHOOD, CONF_URL: backend.url, CONF_TOKEN: backend.token,
        CONF_APP: SLUG,
    }
    assert scheduled == []
    assert entry.state is ConfigEntryState.LOADED


async def test_new_url_and_token_update_the_entry_and_reload_it(
    hass: HomeAssistant, backend: FakeBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The app came back on another address with a new token (same node): the entry
    follows it and reconnects there."""
    entry = app_entry(hass, backend)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    moved = FakeBackend(token="rotated-token-abcdef")
    await moved.start()
    try:
        scheduled = reloads(monkeypatch, hass)
        result = await discover(hass, moved.url, moved.token)
        assert result["type"] is FlowResultType.ABORT
        assert result["reason"] == "already_configured"
        assert entry.data[CONF_URL] == moved.url
        assert entry.data[CONF_TOKEN] == "rotated-token-abcdef"
        assert scheduled == [entry.entry_id]
        await hass.async_block_till_done()
        assert entry.state is ConfigEntryState.LOADED
        await wait_for(hass, lambda: moved.open_streams)  # reconnected at the new address
        assert hass.config_entries.async_entries(DOMAIN) == [entry]
        assert await hass.config_entries.async_unload(entry.entry_id)
    finally:
        await moved.stop()


async def test_new_token_revives_an_entry_stopped_by_the_old_one(
    hass: HomeAssistant, backend: FakeBackend
) -> None:
    """The old token refused: the entry stopped and asks for reauth. The app announcing
    its new token is enough; the reauth request goes away."""
    entry = app_entry(hass, backend)
    backend.token = "rotated-token-abcdef"
    assert not await hass.config_entries.async_setup(entry.entry_id)
    assert entry.state is ConfigEntryState.SETUP_ERROR
    assert [f["context"]["source"] for f in
            hass.config_entries.flow.async_progress_by_handler(DOMAIN)] == ["reauth"]

    result = await discover(hass, backend.url, backend.token)
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"
    assert entry.data[CONF_TOKEN] == "rotated-token-abcdef"
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.LOADED
    assert hass.config_entries.flow.async_progress_by_handler(DOMAIN) == []
    assert await hass.config_entries.async_unload(entry.entry_id)


@pytest.mark.parametrize("created_by", [None, "4f2c1e0a_hearth_node"])
async def test_another_app_cannot_move_an_entry(
    hass: HomeAssistant, backend: FakeBackend, monkeypatch: pytest.MonkeyPatch,
    created_by: str | None,
) -> None:
    """An app that did not create the entry (any app may announce "hearth") runs a node
    that claims the entry's node id: the entry stays connected where it was, so no
    reading goes to that node. It applies to entries added by hand and to another app's."""
    if created_by is None:
        entry = neighbourhood_entry(hass, backend.url, backend.token, backend.node_id)
    else:
        entry = app_entry(hass, backend, created_by)
    before = dict(entry.data)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    impostor = FakeBackend(token="impostor-token-0123")  # the same node id, claimed
    await impostor.start()
    try:
        scheduled = reloads(monkeypatch, hass)
        result = await discover(hass, impostor.url, impostor.token, slug="e1e1e1e1_evil")
        assert (result["type"], result["reason"]) == (FlowResultType.ABORT,
                                                      "already_configured")
        assert dict(entry.data) == before
        assert scheduled == []
        await hass.async_block_till_done()
        assert entry.state is ConfigEntryState.LOADED
        assert backend.open_streams == 1 and impostor.open_streams == 0
    finally:
        await impostor.stop()
    assert await hass.config_entries.async_unload(entry.entry_id)


@pytest.mark.parametrize(
    ("url", "token", "reason"),
    [
        ("closed port", "fake-token-0123456789", "cannot_connect"),
        (None, "not-the-token", "invalid_auth"),
        (None, "", "invalid_discovery_info"),
        ("ftp://127.0.0.1:21", "fake-token-0123456789", "invalid_discovery_info"),
    ],
)
async def test_unusable_announcement_aborts(
    hass: HomeAssistant, backend: FakeBackend, url: str | None, token: str, reason: str
) -> None:
    if url == "closed port":
        url = f"http://127.0.0.1:{free_port()}"
    result = await discover(hass, url or backend.url, token)
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == reason
    assert hass.config_entries.async_entries(DOMAIN) == []


async def test_confirm_checks_again(hass: HomeAssistant, backend: FakeBackend) -> None:
    """Between discovery and the click the backend stopped: the confirmation says so and
    can be repeated; by then it had joined a federation, so the entry follows directly."""
    backend.federation = None
    result = await discover(hass, backend.url, backend.token)
    await backend.stop()
    result = await hass.config_entries.flow.async_configure(result["flow_id"], {})
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": "cannot_connect"}
    backend.federation = "Elm Street"
    await backend.start()
    result = await hass.config_entries.flow.async_configure(result["flow_id"], {})
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["title"] == "Elm Street (house0)"


async def _setup_menu(hass: HomeAssistant, backend: FakeBackend) -> dict[str, Any]:
    backend.federation = None
    result = await discover(hass, backend.url, backend.token)
    result = await hass.config_entries.flow.async_configure(result["flow_id"], {})
    assert result["type"] is FlowResultType.MENU
    assert result["step_id"] == "neighbourhood_setup"
    assert result["menu_options"] == ["neighbourhood_create", "neighbourhood_join"]
    assert result["description_placeholders"] == {"name": "house0"}
    return result


async def _step(hass: HomeAssistant, backend: FakeBackend, step: str) -> dict[str, Any]:
    result = await _setup_menu(hass, backend)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"next_step_id": step}
    )
    assert (result["type"], result["step_id"]) == (FlowResultType.FORM, step)
    return result


def _suggested(result: dict[str, Any], key: str) -> Any:
    marker = next(k for k in result["data_schema"].schema if k == key)
    return (marker.description or {}).get("suggested_value")


async def test_found_node_in_no_federation_creates_one(
    hass: HomeAssistant, backend: FakeBackend
) -> None:
    """Direct HTTP: just the name; the entry is named after the new neighbourhood."""
    result = await _step(hass, backend, "neighbourhood_create")
    assert _suggested(result, "relay_url") is None
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"name": "  Oak Lane "}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["title"] == "Oak Lane (house0)"
    assert result["data"] == {
        CONF_KIND: KIND_NEIGHBOURHOOD, CONF_URL: backend.url, CONF_TOKEN: backend.token,
        CONF_APP: SLUG,
    }
    assert result["result"].unique_id == backend.node_id
    assert backend.setup_requests == [("federation", {"name": "Oak Lane"})]


async def test_manual_step_leads_to_the_menu_too(
    hass: HomeAssistant, backend: FakeBackend
) -> None:
    backend.federation = None
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"next_step_id": "neighbourhood"}
    )
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_URL: backend.url, CONF_TOKEN: backend.token}
    )
    assert (result["type"], result["step_id"]) == (FlowResultType.MENU, "neighbourhood_setup")
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"next_step_id": "neighbourhood_join"}
    )
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"invite": " hearth-invite-v1.abc\n"}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["title"] == "Oak Lane (house0)"
    assert backend.setup_requests == [("join", {"token": "hearth-invite-v1.abc"})]


@pytest.mark.parametrize(
    ("form", "relay"),
    [
        # The app's broker: its URL is suggested, and no credentials are needed.
        ({"relay_url": BROKER}, {"url": BROKER}),
        ({}, {}),  # URL cleared: still the app's broker, as the backend then decides
        ({"relay_ca": "-----BEGIN CERTIFICATE-----\nX\n"},
         {"ca": "-----BEGIN CERTIFICATE-----\nX"}),
        # Another broker, with its admin account.
        ({"relay_url": "mqtts://other.example:8883", "relay_username": "admin",
          "relay_password": "pw"},
         {"url": "mqtts://other.example:8883", "admin": {"username": "admin",
                                                          "password": "pw"}}),
    ],
)
async def test_relay_from_the_app_options(
    hass: HomeAssistant, backend: FakeBackend, form: dict[str, str], relay: dict[str, Any]
) -> None:
    backend.relay_admin = {"url": BROKER}
    result = await _step(hass, backend, "neighbourhood_create")
    assert _suggested(result, "relay_url") == BROKER
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"name": "Oak Lane", **form}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert backend.setup_requests == [("federation", {"name": "Oak Lane", "relay": relay})]


@pytest.mark.parametrize(
    ("form", "errors"),
    [
        ({"name": "   "}, {"name": "invalid_name"}),
        ({"name": "x" * 101}, {"name": "invalid_name"}),
        ({"relay_url": BROKER, "relay_username": "admin"},
         {"relay_password": "relay_credentials_incomplete"}),
        ({"relay_password": "pw"}, {"relay_username": "relay_credentials_incomplete"}),
        ({"relay_username": "admin", "relay_password": "pw"},
         {"relay_url": "relay_url_required"}),
        ({"relay_ca": "-----BEGIN CERTIFICATE-----"}, {"relay_url": "relay_url_required"}),
    ],
)
async def test_create_form_checks_before_asking_the_backend(
    hass: HomeAssistant, backend: FakeBackend, form: dict[str, str], errors: dict[str, str]
) -> None:
    result = await _step(hass, backend, "neighbourhood_create")
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"name": "Oak Lane", **form}
    )
    assert (result["type"], result["errors"]) == (FlowResultType.FORM, errors)
    assert backend.setup_requests == []
    # Nothing typed is lost.
    for key, value in form.items():
        assert _suggested(result, key) == value
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"name": "Oak Lane"}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY


_CREATE = ("federation", "neighbourhood_create", {"name": "Oak Lane"}, 422)
_JOIN = ("join", "neighbourhood_join", {"invite": "hearth-invite-v1.abc"}, 403)
# What the user must see for each backend code, written out (not read from the flow's table).
REFUSALS = [
    (*_CREATE, "bad_relay", ("base", "bad_relay")),
    (*_CREATE, "relay_unavailable", ("base", "relay_unavailable")),
    (*_CREATE, "no_relay_admin", ("base", "no_relay_admin")),
    (*_CREATE, "already_member", ("base", "already_member")),
    (*_CREATE, "no_public_url", ("relay_url", "create_needs_relay")),
    (*_CREATE, "weak_hpke_suite", ("base", "backend_error")),
    (*_JOIN, "invalid_invite", ("invite", "invalid_invite")),
    (*_JOIN, "invite_expired", ("invite", "invite_expired")),
    (*_JOIN, "invite_used", ("invite", "invite_used")),
    (*_JOIN, "invite_unknown", ("invite", "invite_unknown")),
    (*_JOIN, "wrong_federation", ("invite", "wrong_federation")),
    (*_JOIN, "fingerprint_mismatch", ("invite", "fingerprint_mismatch")),
    (*_JOIN, "already_member", ("base", "already_member")),
    (*_JOIN, "relay_unavailable", ("base", "join_relay_unavailable")),
    (*_JOIN, "peer_error", ("base", "founder_unreachable")),
    (*_JOIN, "no_public_url", ("invite", "join_needs_relay")),
    (*_JOIN, "bad_capacity", ("base", "backend_error")),
]


@pytest.mark.parametrize(("route", "step", "form", "status", "code", "expected"), REFUSALS)
async def test_refusals_stay_on_the_form(
    hass: HomeAssistant, backend: FakeBackend, route: str, step: str, form: dict[str, str],
    status: int, code: str, expected: tuple[str, str],
) -> None:
    """Each backend code gives its own error, with the backend's words as ``message``;
    the form keeps what was typed, and a second try goes through."""
    result = await _step(hass, backend, step)
    backend.refuse[route] = (status, code, f"the backend's reason for {code}", None)
    result = await hass.config_entries.flow.async_configure(result["flow_id"], form)
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {expected[0]: expected[1]}
    # Form errors are plain text in the frontend: the node's words as they are.
    assert result["description_placeholders"]["message"] == f"the backend's reason for {code}"
    for key, value in form.items():
        assert _suggested(result, key) == value
    result = await hass.config_entries.flow.async_configure(result["flow_id"], form)
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert [r for r, _ in backend.setup_requests] == [route, route]


async def test_backend_gone_while_setting_up(hass: HomeAssistant, backend: FakeBackend) -> None:
    result = await _step(hass, backend, "neighbourhood_join")
    await backend.stop()
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"invite": "hearth-invite-v1.abc"}
    )
    assert result["errors"] == {"base": "cannot_connect"}
    await backend.start()
    backend.token = "rotated"
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"invite": "hearth-invite-v1.abc"}
    )
    assert result["errors"] == {"base": "invalid_auth"}
