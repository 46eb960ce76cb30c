"""Every path of the neighbourhood steps: add, errors, duplicate, reauth, reconfigure."""

from __future__ import annotations

import pytest
from homeassistant.config_entries import SOURCE_USER, ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.hearth.const import CONF_KIND, DOMAIN
from custom_components.hearth.neighbourhood.const import (
    CONF_TOKEN,
    CONF_URL,
    DEFAULT_URL,
    KIND_NEIGHBOURHOOD,
)
from tests.backend.nodes import free_port

from .conftest import neighbourhood_entry
from .fake_backend import FakeBackend


async def _form(hass: HomeAssistant) -> dict:
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    assert result["type"] is FlowResultType.MENU
    assert "neighbourhood" in result["menu_options"]
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"next_step_id": "neighbourhood"}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "neighbourhood"
    return result


async def test_add_the_backend(hass: HomeAssistant, backend: FakeBackend) -> None:
    """URL and token are checked against the backend; the entry is named after it."""
    result = await _form(hass)
    schema = result["data_schema"].schema
    url_key = next(k for k in schema if k == CONF_URL)
    assert url_key.default() == DEFAULT_URL

    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_URL: backend.url + "/", CONF_TOKEN: backend.token}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["title"] == "Elm Street (house0)"
    assert result["data"] == {
        CONF_KIND: KIND_NEIGHBOURHOOD,
        CONF_URL: backend.url,
        CONF_TOKEN: backend.token,
    }
    entry = result["result"]
    assert entry.unique_id == backend.node_id
    assert entry.options == {}
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.LOADED
    assert backend.readings == []  # nothing is contributed before opting in


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({CONF_TOKEN: "not-the-token"}, "invalid_auth"),
        ({CONF_URL: "no url at all"}, "invalid_url"),
        ({CONF_URL: "ftp://127.0.0.1:21"}, "invalid_url"),
        ({CONF_URL: "closed port"}, "cannot_connect"),
    ],
)
async def test_errors_then_recovery(
    hass: HomeAssistant, backend: FakeBackend, change: dict[str, str], error: str
) -> None:
    """Each problem shows its error on the form; fixing it creates the entry."""
    result = await _form(hass)
    good = {CONF_URL: backend.url, CONF_TOKEN: backend.token}
    if change.get(CONF_URL) == "closed port":
        change = {CONF_URL: f"http://127.0.0.1:{free_port()}"}
    result = await hass.config_entries.flow.async_configure(result["flow_id"], good | change)
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": error}
    result = await hass.config_entries.flow.async_configure(result["flow_id"], good)
    assert result["type"] is FlowResultType.CREATE_ENTRY


async def test_backend_failing_inside(hass: HomeAssistant, backend: FakeBackend) -> None:
    """A 500 from the backend: it runs but cannot answer; the form says so."""
    backend.broken = True
    result = await _form(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_URL: backend.url, CONF_TOKEN: backend.token}
    )
    assert result["errors"] == {"base": "cannot_connect"}


async def test_not_in_a_federation(hass: HomeAssistant, backend: FakeBackend) -> None:
    """A backend that joined nothing yet is accepted: the flow offers to found or join one
    (those steps are tested in test_discovery_flow and test_lifecycle_flow)."""
    backend.federation = None
    result = await _form(hass)
    good = {CONF_URL: backend.url, CONF_TOKEN: backend.token}
    result = await hass.config_entries.flow.async_configure(result["flow_id"], good)
    assert result["type"] is FlowResultType.MENU
    assert result["step_id"] == "neighbourhood_setup"
    assert hass.config_entries.async_entries(DOMAIN) == []


async def test_something_else_at_the_url(hass: HomeAssistant, backend: FakeBackend) -> None:
    """An HTTP server that is not a Hearth backend counts as no backend; /api/v1 is tolerated."""
    result = await _form(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_URL: backend.url + "/elsewhere", CONF_TOKEN: backend.token}
    )
    assert result["errors"] == {"base": "cannot_connect"}
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_URL: backend.url + "/api/v1", CONF_TOKEN: backend.token}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"][CONF_URL] == backend.url


async def test_same_backend_twice(hass: HomeAssistant, backend: FakeBackend) -> None:
    neighbourhood_entry(hass, backend.url, backend.token, backend.node_id)
    result = await _form(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_URL: backend.url, CONF_TOKEN: backend.token}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "backend_already_configured"


async def test_reauth_when_the_token_stops_working(
    hass: HomeAssistant, backend: FakeBackend
) -> None:
    """A 401 at setup starts reauth; the new token is checked, stored and the entry reloads."""
    entry = neighbourhood_entry(hass, backend.url, backend.token, backend.node_id)
    backend.token = "rotated-token"
    assert not await hass.config_entries.async_setup(entry.entry_id)
    assert entry.state is ConfigEntryState.SETUP_ERROR
    flows = hass.config_entries.flow.async_progress_by_handler(DOMAIN)
    assert [f["context"]["source"] for f in flows] == ["reauth"]
    flow_id = flows[0]["flow_id"]
    result = await hass.config_entries.flow.async_configure(flow_id)
    assert result["step_id"] == "neighbourhood_reauth_confirm"
    assert result["description_placeholders"][CONF_URL] == backend.url

    result = await hass.config_entries.flow.async_configure(flow_id, {CONF_TOKEN: "still-wrong"})
    assert result["errors"] == {"base": "invalid_auth"}
    result = await hass.config_entries.flow.async_configure(flow_id, {CONF_TOKEN: "rotated-token"})
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reauth_successful"
    assert entry.data[CONF_TOKEN] == "rotated-token"
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.LOADED


async def test_reauth_refuses_a_different_backend(
    hass: HomeAssistant, backend: FakeBackend
) -> None:
    """If the node at the URL was re-initialised, the token belongs to another identity."""
    entry = neighbourhood_entry(hass, backend.url, "old", backend.node_id)
    result = await entry.start_reauth_flow(hass)
    backend.node_id = "f" * 32
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_TOKEN: backend.token}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "wrong_backend"
    assert entry.data[CONF_TOKEN] == "old"


async def test_reconfigure_moves_the_url(hass: HomeAssistant, backend: FakeBackend) -> None:
    """The same node at a new port; an unreachable URL or another node is refused."""
    entry = neighbourhood_entry(hass, backend.url, backend.token, backend.node_id)
    result = await entry.start_reconfigure_flow(hass)
    assert result["step_id"] == "neighbourhood_reconfigure"

    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_URL: f"http://127.0.0.1:{free_port()}"}
    )
    assert result["errors"] == {"base": "cannot_connect"}

    other = FakeBackend(node_id="e" * 32)
    await other.start()
    try:
        result = await hass.config_entries.flow.async_configure(
            result["flow_id"], {CONF_URL: other.url}
        )
        assert result["type"] is FlowResultType.ABORT
        assert result["reason"] == "wrong_backend"

        moved = FakeBackend()  # the same node identity and token, on another port
        await moved.start()
        try:
            result = await entry.start_reconfigure_flow(hass)
            result = await hass.config_entries.flow.async_configure(
                result["flow_id"], {CONF_URL: moved.url}
            )
            assert result["type"] is FlowResultType.ABORT
            assert result["reason"] == "backend_moved"
            assert entry.data[CONF_URL] == moved.url
            assert entry.data[CONF_TOKEN] == backend.token
            await hass.async_block_till_done()
            assert entry.state is ConfigEntryState.LOADED
            assert await hass.config_entries.async_unload(entry.entry_id)
        finally:
            await moved.stop()
    finally:
        await other.stop()


async def test_backend_down_at_setup_retries(hass: HomeAssistant, socket_enabled: None) -> None:
    """No backend yet (e.g. it starts after Home Assistant): the entry retries later."""
    entry = MockConfigEntry(domain=DOMAIN, data={CONF_KIND: KIND_NEIGHBOURHOOD,
                                                 CONF_URL: f"http://127.0.0.1:{free_port()}",
                                                 CONF_TOKEN: "x"})
    entry.add_to_hass(hass)
    assert not await hass.config_entries.async_setup(entry.entry_id)
    assert entry.state is ConfigEntryState.SETUP_RETRY
