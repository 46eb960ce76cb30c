"""Config-flow steps for a backend in no federation: found a neighbourhood or join one.

After the discovery confirmation or the manual URL + token step, a node that is not in a
federation gets the menu ``neighbourhood_setup``: ``neighbourhood_create`` founds one
(direct HTTP, or through a relay broker) and ``neighbourhood_join`` joins one with an
invite token. Whatever the backend refuses stays on the form, input kept, with an error
that says what to do, so the user can correct it and submit again.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import voluptuous as vol
from homeassistant.config_entries import ConfigFlow, ConfigFlowResult
from homeassistant.const import CONF_NAME
from homeassistant.helpers.aiohttp_client import async_get_clientsession
from homeassistant.helpers.selector import (
    TextSelector,
    TextSelectorConfig,
    TextSelectorType,
)

from ..const import CONF_KIND, LOGGER
from .client import BackendClient, normalize_url
from .const import CONF_APP, CONF_TOKEN, CONF_URL, KIND_NEIGHBOURHOOD
from .errors import BackendError, BackendRejected, CannotConnect, InvalidAuth
from .issues import markdown, plain
from .models import NodeStatus

CONF_RELAY_URL = "relay_url"
CONF_RELAY_USERNAME = "relay_username"
CONF_RELAY_PASSWORD = "relay_password"  # noqa: S105 - the field name
CONF_RELAY_CA = "relay_ca"
CONF_INVITE = "invite"
BASE = "base"
NAME_MAX = 100  # the backend's limit for a federation name

# The backend's error codes (mpc_backend/node/federation.py) -> (form field, error key).
# Any other refusal shows the backend's own message (error "backend_error").
CREATE_ERRORS: dict[str, tuple[str, str]] = {
    "bad_relay": (BASE, "bad_relay"),
    "relay_unavailable": (BASE, "relay_unavailable"),
    "no_relay_admin": (BASE, "no_relay_admin"),
    "already_member": (BASE, "already_member"),
    "no_public_url": (CONF_RELAY_URL, "create_needs_relay"),
}
JOIN_ERRORS: dict[str, tuple[str, str]] = {
    "invalid_invite": (CONF_INVITE, "invalid_invite"),
    "invite_expired": (CONF_INVITE, "invite_expired"),
    "invite_used": (CONF_INVITE, "invite_used"),
    "invite_unknown": (CONF_INVITE, "invite_unknown"),
    "wrong_federation": (CONF_INVITE, "wrong_federation"),
    "fingerprint_mismatch": (CONF_INVITE, "fingerprint_mismatch"),
    "already_member": (BASE, "already_member"),
    "relay_unavailable": (BASE, "join_relay_unavailable"),
    "peer_error": (BASE, "founder_unreachable"),
    "no_public_url": (CONF_INVITE, "join_needs_relay"),
}

_TEXT = TextSelector()
_PASSWORD = TextSelector(TextSelectorConfig(type=TextSelectorType.PASSWORD))
_MULTILINE = TextSelector(TextSelectorConfig(multiline=True))


def relay_block(
    form: dict[str, Any], configured_url: str | None
) -> tuple[dict[str, Any] | None, tuple[str, str] | None]:
    """The ``relay`` for ``POST /federation`` from the form, or (None, (field, error)).

    No URL: the broker configured in the app's options if there is one, else direct HTTP.
    A URL without credentials leaves the admin account to the app's options too (the
    backend refuses with ``no_relay_admin`` when it has none).
    """
    url = form.get(CONF_RELAY_URL, "").strip()
    username = form.get(CONF_RELAY_USERNAME, "").strip()
    password = form.get(CONF_RELAY_PASSWORD, "")
    ca = form.get(CONF_RELAY_CA, "").strip()
    if bool(username) != bool(password):
        missing = CONF_RELAY_PASSWORD if username else CONF_RELAY_USERNAME
        return None, (missing, "relay_credentials_incomplete")
    if not url and (username or (ca and configured_url is None)):
        return None, (CONF_RELAY_URL, "relay_url_required")
    if not url and configured_url is None:
        return None, None  # direct HTTP
    relay: dict[str, Any] = {"url": url} if url else {}
    if ca:
        relay["ca"] = ca
    if username:
        relay["admin"] = {"username": username, "password": password}
    return relay, None


class NeighbourhoodSetupMixin(ConfigFlow):
    """Found or join a federation, then create the entry; mixed into the neighbourhood steps."""

    _nb_url: str = ""
    _nb_token: str = ""
    _nb_status: NodeStatus | None = None
    _nb_message: str = ""  # the backend's reason for the last refusal, for the form
    _nb_app_slug: str = ""  # the announcing app's slug, when the backend was discovered

    async def _async_connected(self, url: str, token: str, status: NodeStatus) -> ConfigFlowResult:
        """The backend answered: its entry if it is in a federation, else the setup menu."""
        self._nb_url, self._nb_token, self._nb_status = url, token, status
        if status.in_federation:
            return self._async_create_neighbourhood_entry(
                status.federation_name or str(status.federation_id)
            )
        return await self.async_step_neighbourhood_setup()

    def _async_create_neighbourhood_entry(self, federation: str) -> ConfigFlowResult:
        assert self._nb_status is not None
        return self.async_create_entry(
            title=f"{federation} ({self._nb_status.name})",
            data={
                CONF_KIND: KIND_NEIGHBOURHOOD,
                CONF_URL: normalize_url(self._nb_url),
                CONF_TOKEN: self._nb_token,
                **({CONF_APP: self._nb_app_slug} if self._nb_app_slug else {}),
            },
        )

    async def async_step_neighbourhood_setup(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """The backend is in no federation yet: start one, or join one."""
        assert self._nb_status is not None
        return self.async_show_menu(
            step_id="neighbourhood_setup",
            menu_options=["neighbourhood_create", "neighbourhood_join"],
            description_placeholders={"name": markdown(self._nb_status.name)},
        )

    async def async_step_neighbourhood_create(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Found a neighbourhood: its name, and optionally the relay broker."""
        assert self._nb_status is not None
        configured = self._nb_status.relay_admin_url
        errors: dict[str, str] = {}
        if user_input is not None:
            name = user_input[CONF_NAME].strip()
            relay, problem = relay_block(user_input, configured)
            if not 0 < len(name) <= NAME_MAX:
                errors[CONF_NAME] = "invalid_name"
            elif problem is not None:
                errors[problem[0]] = problem[1]
            else:
                result = await self._async_backend_call(
                    lambda client: client.create_federation(name, relay), CREATE_ERRORS, errors
                )
                if result is not None:
                    return result
        schema = vol.Schema(
            {
                vol.Required(CONF_NAME): _TEXT,
                vol.Optional(CONF_RELAY_URL): _TEXT,
                vol.Optional(CONF_RELAY_USERNAME): _TEXT,
                vol.Optional(CONF_RELAY_PASSWORD): _PASSWORD,
                vol.Optional(CONF_RELAY_CA): _MULTILINE,
            }
        )
        suggested = user_input if user_input is not None else {CONF_RELAY_URL: configured}
        return self.async_show_form(
            step_id="neighbourhood_create",
            data_schema=self.add_suggested_values_to_schema(schema, suggested),
            errors=errors,
            description_placeholders={
                "name": markdown(self._nb_status.name),
                # Form errors are shown as plain text: no escaping there.
                "message": plain(self._nb_message, 500),
            },
        )

    async def async_step_neighbourhood_join(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Join a neighbourhood with the invite token its founder made."""
        assert self._nb_status is not None
        errors: dict[str, str] = {}
        if user_input is not None:
            token = user_input[CONF_INVITE].strip()
            result = await self._async_backend_call(
                lambda client: client.join(token), JOIN_ERRORS, errors
            )
            if result is not None:
                return result
        return self.async_show_form(
            step_id="neighbourhood_join",
            data_schema=self.add_suggested_values_to_schema(
                vol.Schema({vol.Required(CONF_INVITE): _TEXT}), user_input
            ),
            errors=errors,
            description_placeholders={
                "name": markdown(self._nb_status.name),
                # Form errors are shown as plain text: no escaping there.
                "message": plain(self._nb_message, 500),
            },
        )

    async def _async_backend_call(
        self,
        call: Callable[[BackendClient], Awaitable[dict[str, Any]]],
        known: dict[str, tuple[str, str]],
        errors: dict[str, str],
    ) -> ConfigFlowResult | None:
        """Run the create or join; the entry on success, else None with ``errors`` filled."""
        client = BackendClient(async_get_clientsession(self.hass), self._nb_url, self._nb_token)
        self._nb_message = ""
        try:
            answer = await call(client)
        except InvalidAuth:
            errors[BASE] = "invalid_auth"
        except CannotConnect as err:
            LOGGER.debug("Hearth backend unreachable while setting up: %s", err)
            errors[BASE] = "cannot_connect"
        except BackendRejected as err:
            LOGGER.debug("Hearth backend refused: %s", err)
            if err.code == "already_member" and (joined := await self._async_joined(client)):
                # An earlier submit that timed out here did found or join: keep its result.
                return self._async_create_neighbourhood_entry(joined)
            field, key = known.get(err.code, (BASE, "backend_error"))
            errors[field] = key
            self._nb_message = err.message
        except BackendError as err:  # e.g. the node answered it is in no federation
            errors[BASE] = "backend_error"
            self._nb_message = str(err)
        else:
            name = answer.get("name")
            if isinstance(name, str) and name:
                return self._async_create_neighbourhood_entry(name)
            errors[BASE] = "backend_error"
            self._nb_message = "the backend's answer names no neighbourhood"
        return None

    async def _async_joined(self, client: BackendClient) -> str | None:
        """The federation the backend is in now, if it answers and is in one."""
        try:
            status = await client.status()
        except BackendError:
            return None
        if not status.in_federation:
            return None
        self._nb_status = status
        return status.federation_name or str(status.federation_id)
