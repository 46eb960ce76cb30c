"""Config-flow steps for the neighbourhood entry, mixed into Hearth's one ConfigFlow.

Steps: ``neighbourhood`` (URL + token, checked against the backend), reauth (a
new token when the backend refuses the stored one) and reconfigure (the URL).
The options flow is in ``options_flow``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import voluptuous as vol
from homeassistant.config_entries import ConfigFlow, ConfigFlowResult
from homeassistant.helpers.aiohttp_client import async_get_clientsession
from homeassistant.helpers.selector import (
    TextSelector,
    TextSelectorConfig,
    TextSelectorType,
)

from ..const import CONF_KIND, LOGGER
from .client import BackendClient, normalize_url
from .const import (
    CONF_TOKEN,
    CONF_URL,
    DEFAULT_URL,
    KIND_NEIGHBOURHOOD,
)
from .errors import BackendError, CannotConnect, InvalidAuth, NotInFederation
from .models import NodeStatus

_URL_SELECTOR = TextSelector(TextSelectorConfig(type=TextSelectorType.URL))
_TOKEN_SELECTOR = TextSelector(TextSelectorConfig(type=TextSelectorType.PASSWORD))


async def _async_check(flow: ConfigFlow, url: str, token: str) -> tuple[NodeStatus | None, str]:
    """(status, "") when URL and token work, else (None, error key for the form)."""
    try:
        client = BackendClient(async_get_clientsession(flow.hass), url, token)
    except ValueError:
        return None, "invalid_url"
    try:
        return await client.validate(), ""
    except InvalidAuth:
        return None, "invalid_auth"
    except NotInFederation:
        return None, "not_in_federation"
    except CannotConnect as err:
        LOGGER.debug("Hearth backend check failed: %s", err)
        return None, "cannot_connect"
    except BackendError as err:
        LOGGER.warning("Hearth backend at %s refused the check: %s", url, err)
        return None, "cannot_connect"


def _title(status: NodeStatus) -> str:
    return f"{status.federation_name} ({status.name})"


class NeighbourhoodFlowMixin(ConfigFlow):
    """The neighbourhood steps; HearthConfigFlow inherits them."""

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
                return self.async_create_entry(
                    title=_title(status),
                    data={
                        CONF_KIND: KIND_NEIGHBOURHOOD,
                        CONF_URL: normalize_url(user_input[CONF_URL]),
                        CONF_TOKEN: user_input[CONF_TOKEN],
                    },
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
