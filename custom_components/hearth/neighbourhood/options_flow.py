"""The neighbourhood entry's options flow: which tasks this home contributes to.

Until a task is picked, with its source sensor, nothing leaves the hub.
"""

from __future__ import annotations

from typing import Any

import voluptuous as vol
from homeassistant.config_entries import ConfigFlowResult, OptionsFlowWithReload
from homeassistant.helpers.aiohttp_client import async_get_clientsession
from homeassistant.helpers.selector import (
    EntitySelector,
    EntitySelectorConfig,
    EntityWithDeviceFilterSelectorConfig,
    SelectOptionDict,
    SelectSelector,
    SelectSelectorConfig,
    SelectSelectorMode,
)

from .client import BackendClient
from .const import CONF_CONTRIBUTIONS, CONF_ENTITY, CONF_TASKS, CONF_TOKEN, CONF_URL
from .entity import metric_name
from .errors import BackendError, InvalidAuth
from .models import TaskSpec
from .units import source_units, unit_compatible, value_device_class


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
