"""Config-flow steps for the neighbourhood entry, mixed into Hearth's one ConfigFlow.

Steps: ``neighbourhood`` (URL + token, checked against the backend), reauth (a
new token when the backend refuses the stored one) and reconfigure (the URL).
The options flow picks which tasks this home contributes to, and from which
sensor; until a task is picked, nothing leaves the hub.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import voluptuous as vol
from homeassistant.config_entries import ConfigFlow, ConfigFlowResult, OptionsFlowWithReload
from homeassistant.helpers.aiohttp_client import async_get_clientsession
from homeassistant.helpers.selector import (
    EntitySelector,
    EntitySelectorConfig,
    EntityWithDeviceFilterSelectorConfig,
    SelectOptionDict,
    SelectSelector,
    SelectSelectorConfig,
    SelectSelectorMode,
    TextSelector,
    TextSelectorConfig,
    TextSelectorType,
)

from ..const import CONF_KIND, LOGGER
from .client import BackendClient, normalize_url
from .const import (
    CONF_CONTRIBUTIONS,
    CONF_ENTITY,
    CONF_TASKS,
    CONF_TOKEN,
    CONF_URL,
    DEFAULT_URL,
    KIND_NEIGHBOURHOOD,
)
from .entity import metric_name
from .errors import BackendError, CannotConnect, InvalidAuth, NotInFederation
from .models import NodeStatus, TaskSpec
from .units import source_units, unit_compatible, value_device_class

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


def _task_label(spec: TaskSpec) -> str:
    unit = f" ({spec.unit})" if spec.unit else ""
    return f"{metric_name(spec.metric)}{unit}"


class NeighbourhoodOptionsFlow(OptionsFlowWithReload):
    """Opt in to tasks, one source sensor each; the entry reloads with the new choice."""

    def __init__(self) -> None:
        self._specs: dict[str, TaskSpec] = {}
        self._pending: list[str] = []
        self._chosen: dict[str, str] = {}

    async def async_step_init(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Entry point; the steps carry their own names so sensor options keep "init"."""
        return await self.async_step_neighbourhood_tasks()

    async def async_step_neighbourhood_tasks(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Which tasks this home contributes to."""
        current: dict[str, str] = dict(self.config_entry.options.get(CONF_CONTRIBUTIONS, {}))
        if user_input is not None:
            self._pending = [t for t in self._specs if t in user_input[CONF_TASKS]]
            return await self.async_step_neighbourhood_task()
        client = BackendClient(
            async_get_clientsession(self.hass),
            self.config_entry.data[CONF_URL],
            self.config_entry.data[CONF_TOKEN],
        )
        try:
            status = await client.status()
        except InvalidAuth:
            return self.async_abort(reason="backend_invalid_auth")
        except BackendError:
            return self.async_abort(reason="backend_unreachable")
        self._specs = {t.spec.task_id: t.spec for t in status.tasks}
        if not self._specs:
            return self.async_abort(reason="no_tasks")
        options = [
            SelectOptionDict(value=task_id, label=_task_label(spec))
            for task_id, spec in self._specs.items()
        ]
        schema = vol.Schema(
            {
                vol.Optional(
                    CONF_TASKS, default=[t for t in current if t in self._specs]
                ): SelectSelector(
                    SelectSelectorConfig(
                        options=options, multiple=True, mode=SelectSelectorMode.LIST
                    )
                ),
            }
        )
        minimums = ", ".join(
            f"{_task_label(spec)}: {spec.min_contributors}" for spec in self._specs.values()
        )
        return self.async_show_form(
            step_id="neighbourhood_tasks",
            data_schema=schema,
            description_placeholders={"minimums": minimums},
        )

    async def async_step_neighbourhood_task(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """The sensor that feeds one chosen task."""
        if not self._pending:
            return self.async_create_entry(data={CONF_CONTRIBUTIONS: self._chosen})
        task_id = self._pending[0]
        spec = self._specs[task_id]
        errors: dict[str, str] = {}
        if user_input is not None:
            entity_id = user_input[CONF_ENTITY]
            state = self.hass.states.get(entity_id)
            if state is None:
                errors[CONF_ENTITY] = "unknown_entity"
            elif not unit_compatible(state, spec):
                errors[CONF_ENTITY] = "unit_mismatch"
            else:
                self._chosen[task_id] = entity_id
                self._pending.pop(0)
                return await self.async_step_neighbourhood_task()
        entity_filter = EntityWithDeviceFilterSelectorConfig(
            domain="sensor", unit_of_measurement=source_units(spec)
        )
        if (device_class := value_device_class(spec)) is not None:
            entity_filter["device_class"] = device_class.value
        current = self.config_entry.options.get(CONF_CONTRIBUTIONS, {}).get(task_id)
        schema = vol.Schema(
            {vol.Required(CONF_ENTITY): EntitySelector(
                EntitySelectorConfig(filter=entity_filter)
            )}
        )
        return self.async_show_form(
            step_id="neighbourhood_task",
            data_schema=self.add_suggested_values_to_schema(
                schema, user_input or ({CONF_ENTITY: current} if current else None)
            ),
            description_placeholders={
                "metric": metric_name(spec.metric),
                "unit": spec.unit or "-",
                "low": f"{spec.low:g}",
                "high": f"{spec.high:g}",
                "period": str(spec.period_s),
                "min_contributors": str(spec.min_contributors),
            },
            errors=errors,
        )
