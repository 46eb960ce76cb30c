"""The neighbourhood entry's options: a menu of what a household does with its neighbourhood.

- ``neighbourhood_tasks``: which tasks this home contributes to (until a task is picked,
  with its source sensor, nothing leaves the hub);
- ``neighbourhood_invite``: a one-time token that admits one more household;
- ``neighbourhood_propose``: a new statistic for the whole neighbourhood;
- ``neighbourhood_members``: who is in it, and who is online.

Only the opt-in changes the options (and so reloads the entry); the other steps end
with the options as they were, which OptionsFlowWithReload does not reload for.
"""

from __future__ import annotations

from typing import Any

import voluptuous as vol
from homeassistant.config_entries import (
    ConfigEntryState,
    ConfigFlowResult,
    OptionsFlowWithReload,
)
from homeassistant.helpers import entity_registry as er
from homeassistant.helpers.aiohttp_client import async_get_clientsession
from homeassistant.helpers.selector import (
    EntitySelector,
    EntitySelectorConfig,
    EntityWithDeviceFilterSelectorConfig,
    NumberSelector,
    NumberSelectorConfig,
    NumberSelectorMode,
    SelectOptionDict,
    SelectSelector,
    SelectSelectorConfig,
    SelectSelectorMode,
)
from homeassistant.util import dt as dt_util

from ..const import CONF_KIND, DOMAIN
from .client import BackendClient
from .const import (
    CONF_CONTRIBUTIONS,
    CONF_ENTITY,
    CONF_TASKS,
    CONF_TOKEN,
    CONF_URL,
    KIND_NEIGHBOURHOOD,
)
from .entity import metric_name
from .errors import BackendError, BackendRejected, CannotConnect, InvalidAuth
from .issues import markdown, plain
from .models import TaskSpec
from .roster import Invite, Member
from .task_form import propose_schema, refusal_errors, spec_from_input
from .units import source_units, unit_compatible, value_device_class

CONF_EXPIRES_HOURS = "expires_hours"
DEFAULT_INVITE_HOURS = 24
MAX_INVITE_HOURS = 7 * 24
MENU = [
    "neighbourhood_tasks",
    "neighbourhood_invite",
    "neighbourhood_propose",
    "neighbourhood_members",
]
# Table cells of the members step; the description explains them, so no words here.
YES, NO, UNKNOWN = "✓", "✗", "?"


def _task_label(spec: TaskSpec) -> str:
    unit = f" ({spec.unit})" if spec.unit else ""
    return f"{metric_name(spec.metric)}{unit}"


def _mark(value: bool | None) -> str:
    return UNKNOWN if value is None else YES if value else NO


def members_table(members: list[Member]) -> str:
    """Markdown table rows, founder first; names are other households' words: escaped."""
    rows = []
    for m in sorted(members, key=lambda m: (not m.founder, m.name.casefold())):
        name = f"**{markdown(m.name)}** ⌂" if m.this_hub else markdown(m.name)
        capacity = "-" if m.input_only else f"{m.capacity:g}"
        rows.append(
            f"| {name} | {_mark(m.founder)} | {_mark(m.online)} | {_mark(not m.input_only)} "
            f"| {capacity} | {_mark(m.post_quantum)} |"
        )
    return "\n".join(rows)


def _local_time(invite: Invite) -> str:
    local = dt_util.as_local(invite.expires_at)
    return f"{local:%Y-%m-%d %H:%M} ({local.tzname()})"


class NeighbourhoodOptionsFlow(OptionsFlowWithReload):
    """The neighbourhood menu; only the task opt-in changes options (and reloads)."""

    def __init__(self) -> None:
        self._specs: dict[str, TaskSpec] = {}
        self._pending: list[str] = []
        self._chosen: dict[str, str] = {}

    def _client(self) -> BackendClient:
        return BackendClient(
            async_get_clientsession(self.hass),
            self.config_entry.data[CONF_URL],
            self.config_entry.data[CONF_TOKEN],
        )

    @staticmethod
    def _connection_error(
        err: BackendError, errors: dict[str, str], placeholders: dict[str, str]
    ) -> None:
        if isinstance(err, InvalidAuth):
            errors["base"] = "invalid_auth"
        elif isinstance(err, CannotConnect):
            errors["base"] = "cannot_connect"
        else:  # e.g. the node left its federation meanwhile: say what it said
            errors["base"] = "backend_refused"
            placeholders["message"] = str(err)

    @staticmethod
    async def _founder(client: BackendClient) -> str:
        """The founder's name, for a form error (shown as plain text, on one line)."""
        name = await client.founder_name()
        return plain(name) if name else "-"

    async def async_step_init(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """The menu; the steps carry their own names because sensor options use "init"."""
        return self.async_show_menu(step_id="init", menu_options=MENU)

    async def async_step_neighbourhood_invite(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """How long the invite stays valid; the founder's node issues it."""
        errors: dict[str, str] = {}
        placeholders = {"url": self.config_entry.data[CONF_URL], "founder": "-", "message": ""}
        if user_input is not None:
            client = self._client()
            try:
                invite = await client.create_invite(round(user_input[CONF_EXPIRES_HOURS] * 3600))
            except BackendRejected as err:
                placeholders["message"] = err.message
                if err.code == "not_founder":
                    placeholders["founder"] = await self._founder(client)
                known = ("not_founder", "relay_unavailable", "no_relay_admin")
                errors["base"] = err.code if err.code in known else "backend_refused"
            except BackendError as err:
                self._connection_error(err, errors, placeholders)
            else:
                # Shown once, in the flow's closing message: nothing to submit, nothing saved.
                return self.async_abort(
                    reason="invite_created",
                    description_placeholders={
                        "token": invite.token, "expires": _local_time(invite)
                    },
                )
        schema = vol.Schema(
            {
                vol.Required(CONF_EXPIRES_HOURS, default=DEFAULT_INVITE_HOURS): NumberSelector(
                    NumberSelectorConfig(
                        min=1, max=MAX_INVITE_HOURS, step=1, mode=NumberSelectorMode.BOX,
                        unit_of_measurement="h",
                    )
                ),
            }
        )
        return self.async_show_form(
            step_id="neighbourhood_invite",
            data_schema=self.add_suggested_values_to_schema(schema, user_input),
            errors=errors,
            description_placeholders=placeholders,
        )

    async def async_step_neighbourhood_propose(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """A new task for the whole neighbourhood; refused input stays in the form."""
        errors: dict[str, str] = {}
        placeholders = {"url": self.config_entry.data[CONF_URL], "founder": "-", "message": ""}
        if user_input is not None:
            spec, errors = spec_from_input(user_input)
            if spec is not None:
                client = self._client()
                try:
                    proposed = await client.propose_task(spec)
                except BackendRejected as err:
                    errors = refusal_errors(err, user_input)
                    placeholders["message"] = err.message
                    if "founder_unreachable" in errors.values():
                        placeholders["founder"] = await self._founder(client)
                except BackendError as err:
                    self._connection_error(err, errors, placeholders)
                else:
                    await self._refresh()
                    return self.async_abort(
                        reason="task_proposed",
                        description_placeholders={
                            "task": _task_label(proposed), "task_id": proposed.task_id
                        },
                    )
        return self.async_show_form(
            step_id="neighbourhood_propose",
            data_schema=self.add_suggested_values_to_schema(propose_schema(), user_input),
            errors=errors,
            description_placeholders=placeholders,
        )

    async def _refresh(self) -> None:
        """Let the loaded entry see the new task now: its sensors appear on refresh."""
        if self.config_entry.state is ConfigEntryState.LOADED:
            await self.config_entry.runtime_data.coordinator.async_refresh()

    async def async_step_neighbourhood_members(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Who is in the neighbourhood, as this hub's node sees them (a closing message)."""
        try:
            members = await self._client().members(households=True)
        except InvalidAuth:
            return self.async_abort(reason="backend_invalid_auth")
        except BackendError:
            return self.async_abort(reason="backend_unreachable")
        return self.async_abort(
            reason="members",
            description_placeholders={
                "members": members_table(members),
                "count": str(len(members)),
                "households": str(sum(m.input_only for m in members)),
            },
        )

    async def async_step_neighbourhood_tasks(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Which tasks this home contributes to."""
        current: dict[str, str] = dict(self.config_entry.options.get(CONF_CONTRIBUTIONS, {}))
        if user_input is not None:
            self._pending = [t for t in self._specs if t in user_input[CONF_TASKS]]
            return await self.async_step_neighbourhood_task()
        try:
            status = await self._client().status()
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

    def _aggregates(self) -> set[str]:
        """Every neighbourhood entry's own entities, which the picker leaves out (and its
        schema refuses): a result fed back as a reading would count the neighbourhood into
        itself."""
        registry = er.async_get(self.hass)
        return {
            entity.entity_id
            for entry in self.hass.config_entries.async_entries(DOMAIN)
            if entry.data.get(CONF_KIND) == KIND_NEIGHBOURHOOD
            for entity in er.async_entries_for_config_entry(registry, entry.entry_id)
        }

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
                EntitySelectorConfig(
                    filter=entity_filter, exclude_entities=sorted(self._aggregates())
                )
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
