"""Config-flow steps for the neighbourhood entry, mixed into Hearth's one ConfigFlow.

Steps: ``hassio`` (the Hearth node app announces its URL and token through the
Supervisor: one confirmation), ``neighbourhood`` (URL + token typed in, checked against
the backend), reauth (a new token when the backend refuses the stored one) and
reconfigure (the URL). A backend in no federation continues with the steps of
``setup_flow`` (found or join one). The options flow is in ``options_flow``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import voluptuous as vol
from homeassistant.config_entries import ConfigEntryState, ConfigFlow, ConfigFlowResult
from homeassistant.helpers.aiohttp_client import async_get_clientsession
from homeassistant.helpers.selector import (
    TextSelector,
    TextSelectorConfig,
    TextSelectorType,
)
from homeassistant.helpers.service_info.hassio import HassioServiceInfo

from ..const import LOGGER
from .client import BackendClient, normalize_url
from .const import CONF_APP, CONF_TOKEN, CONF_URL, DEFAULT_URL
from .errors import BackendError, CannotConnect, InvalidAuth
from .issues import markdown, plain
from .models import NodeStatus
from .setup_flow import NeighbourhoodSetupMixin

_URL_SELECTOR = TextSelector(TextSelectorConfig(type=TextSelectorType.URL))
_TOKEN_SELECTOR = TextSelector(TextSelectorConfig(type=TextSelectorType.PASSWORD))


async def _async_check(flow: ConfigFlow, url: str, token: str) -> tuple[NodeStatus | None, str]:
    """(status, "") when URL and token work, else (None, error key for the form).

    A node in no federation passes: the flow then offers to found or join one.
    """
    try:
        client = BackendClient(async_get_clientsession(flow.hass), url, token)
    except ValueError:
        return None, "invalid_url"
    try:
        await client.health()
        return await client.status(), ""
    except InvalidAuth:
        return None, "invalid_auth"
    except CannotConnect as err:
        LOGGER.debug("Hearth backend check failed: %s", err)
        return None, "cannot_connect"
    except BackendError as err:
        LOGGER.warning("Hearth backend at %s refused the check: %s", url, err)
        return None, "cannot_connect"


class NeighbourhoodFlowMixin(NeighbourhoodSetupMixin):
    """The neighbourhood steps; HearthConfigFlow inherits them."""

    _nb_app: str = ""  # the name of the app that announced the backend

    async def async_step_hassio(self, discovery_info: HassioServiceInfo) -> ConfigFlowResult:
        """The Hearth node app announced its backend: confirm once, nothing to type."""
        url, token = discovery_info.config.get(CONF_URL), discovery_info.config.get(CONF_TOKEN)
        if not isinstance(url, str) or not isinstance(token, str) or not token:
            return self.async_abort(reason="invalid_discovery_info")
        status, error = await _async_check(self, url, token)
        if status is None:
            return self.async_abort(
                reason="invalid_discovery_info" if error == "invalid_url" else error
            )
        url = normalize_url(url)
        updates = {CONF_URL: url, CONF_TOKEN: token}
        entry = await self.async_set_unique_id(status.node_id)
        if entry is not None and entry.data.get(CONF_APP) != discovery_info.slug:
            # The node id is only what /status claims: any app may announce "hearth", and
            # an entry moved to another app's node would send it this home's readings.
            LOGGER.warning(
                "Ignored the app %s announcing the Hearth backend of %r, which that app did "
                "not set up; reconfigure the entry by hand if the backend really moved",
                discovery_info.slug, entry.title)
            return self.async_abort(reason="already_configured")
        if (
            entry is not None
            and entry.state is ConfigEntryState.SETUP_ERROR
            and self.hass.config_entries.async_update_entry(entry, data={**entry.data, **updates})
        ):
            # A refused token stops the entry (it waits for reauth); the app's new one
            # makes it work again. Home Assistant's helper reloads only loaded or retrying
            # entries, so this case is ours.
            self.hass.config_entries.async_schedule_reload(entry.entry_id)
        self._abort_if_unique_id_configured(updates=updates)
        self._nb_url, self._nb_token, self._nb_status = url, token, status
        self._nb_app, self._nb_app_slug = discovery_info.name, discovery_info.slug
        self.context["title_placeholders"] = {"name": plain(status.name)}  # shown as text
        return await self.async_step_hassio_confirm()

    async def async_step_hassio_confirm(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """One click: connect the discovered backend (then found or join if needed)."""
        assert self._nb_status is not None
        errors: dict[str, str] = {}
        if user_input is not None:
            # Asked again: it may have joined a federation (or moved) since it was found.
            status, error = await _async_check(self, self._nb_url, self._nb_token)
            if status is not None:
                return await self._async_connected(self._nb_url, self._nb_token, status)
            errors["base"] = error
        self._set_confirm_only()
        return self.async_show_form(
            step_id="hassio_confirm",
            # What the announcing app chose: shown as text, never as markup or links.
            description_placeholders={"name": markdown(self._nb_status.name),
                                      "app": markdown(self._nb_app),
                                      "slug": markdown(self._nb_app_slug)},
            errors=errors,
        )

    async def async_step_neighbourhood(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Connect to this hub's backend."""
        errors: dict[str, str] = {}
        if user_input is not None:
            status, error = await _async_check(self, user_input[CONF_URL], user_input[CONF_TOKEN])
            if status is not None:
                await self.async_set_unique_id(status.node_id)
                self._abort_if_unique_id_configured(error="backend_already_configured")
                return await self._async_connected(
                    user_input[CONF_URL], user_input[CONF_TOKEN], status
                )
            errors["base"] = error
        schema = vol.Schema(
            {
                vol.Required(CONF_URL, default=DEFAULT_URL): _URL_SELECTOR,
                vol.Required(CONF_TOKEN): _TOKEN_SELECTOR,
            }
        )
        return self.async_show_form(
            step_id="neighbourhood",
            data_schema=self.add_suggested_values_to_schema(schema, user_input),
            errors=errors,
        )

    async def async_step_reauth(self, entry_data: Mapping[str, Any]) -> ConfigFlowResult:
        """The backend refused the stored token."""
        return await self.async_step_neighbourhood_reauth_confirm()

    async def async_step_neighbourhood_reauth_confirm(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Ask for the backend's current token."""
        entry = self._get_reauth_entry()
        errors: dict[str, str] = {}
        if user_input is not None:
            status, error = await _async_check(
                self, entry.data[CONF_URL], user_input[CONF_TOKEN]
            )
            if status is not None:
                await self.async_set_unique_id(status.node_id)
                self._abort_if_unique_id_mismatch(reason="wrong_backend")
                return self.async_update_reload_and_abort(
                    entry, data_updates={CONF_TOKEN: user_input[CONF_TOKEN]}
                )
            errors["base"] = error
        return self.async_show_form(
            step_id="neighbourhood_reauth_confirm",
            data_schema=vol.Schema({vol.Required(CONF_TOKEN): _TOKEN_SELECTOR}),
            description_placeholders={CONF_URL: entry.data[CONF_URL]},
            errors=errors,
        )

    async def async_step_neighbourhood_reconfigure(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Point the entry at the backend's new URL (same node, same token)."""
        entry = self._get_reconfigure_entry()
        errors: dict[str, str] = {}
        if user_input is not None:
            status, error = await _async_check(self, user_input[CONF_URL], entry.data[CONF_TOKEN])
            if status is not None:
                await self.async_set_unique_id(status.node_id)
                self._abort_if_unique_id_mismatch(reason="wrong_backend")
                return self.async_update_reload_and_abort(
                    entry,
                    data_updates={CONF_URL: normalize_url(user_input[CONF_URL])},
                    reason="backend_moved",
                )
            errors["base"] = error
        schema = vol.Schema({vol.Required(CONF_URL): _URL_SELECTOR})
        return self.async_show_form(
            step_id="neighbourhood_reconfigure",
            data_schema=self.add_suggested_values_to_schema(
                schema, user_input or {CONF_URL: entry.data[CONF_URL]}
            ),
            errors=errors,
        )
