"""Neighbourhood actions: ``hearth.contribute_now``, ``hearth.get_results`` and
``hearth.create_invite``.

All take an optional ``config_entry_id``; with one neighbourhood entry loaded
(the usual case: one backend per hub) it may be left out.
"""

from __future__ import annotations

import voluptuous as vol
from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant, ServiceCall, ServiceResponse, SupportsResponse
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from homeassistant.helpers import config_validation as cv

from ..const import ATTR_CONFIG_ENTRY_ID, CONF_KIND, DOMAIN
from .const import (
    ATTR_LIMIT,
    ATTR_TASK,
    KIND_NEIGHBOURHOOD,
    SERVICE_CONTRIBUTE_NOW,
    SERVICE_GET_RESULTS,
)
from .contributor import NoValidState
from .errors import BackendError, BackendRejected, CannotConnect, InvalidAuth
from .runtime import NeighbourhoodConfigEntry

SERVICE_CREATE_INVITE = "create_invite"
ATTR_EXPIRES_HOURS = "expires_hours"
CREATE_INVITE_SCHEMA = vol.Schema(
    {
        vol.Optional(ATTR_CONFIG_ENTRY_ID): cv.string,
        vol.Optional(ATTR_EXPIRES_HOURS, default=24): vol.All(
            vol.Coerce(float), vol.Range(min=1, max=7 * 24)
        ),
    }
)
CONTRIBUTE_NOW_SCHEMA = vol.Schema(
    {
        vol.Optional(ATTR_CONFIG_ENTRY_ID): cv.string,
        vol.Required(ATTR_TASK): cv.string,
    }
)
GET_RESULTS_SCHEMA = vol.Schema(
    {
        vol.Optional(ATTR_CONFIG_ENTRY_ID): cv.string,
        vol.Optional(ATTR_TASK): cv.string,
        vol.Optional(ATTR_LIMIT, default=1): vol.All(
            vol.Coerce(int), vol.Range(min=1, max=100)
        ),
    }
)


def loaded_entries(hass: HomeAssistant) -> list[NeighbourhoodConfigEntry]:
    return [
        entry
        for entry in hass.config_entries.async_loaded_entries(DOMAIN)
        if entry.data.get(CONF_KIND) == KIND_NEIGHBOURHOOD
    ]


def _entry_for_call(hass: HomeAssistant, call: ServiceCall) -> NeighbourhoodConfigEntry:
    if (entry_id := call.data.get(ATTR_CONFIG_ENTRY_ID)) is None:
        entries = loaded_entries(hass)
        if len(entries) == 1:
            return entries[0]
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="no_neighbourhood" if not entries else "neighbourhood_ambiguous",
        )
    entry = hass.config_entries.async_get_entry(entry_id)
    if entry is None or entry.domain != DOMAIN or entry.data.get(CONF_KIND) != KIND_NEIGHBOURHOOD:
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="not_a_neighbourhood",
            translation_placeholders={"entry_id": entry_id},
        )
    if entry.state is not ConfigEntryState.LOADED:
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="entry_not_loaded",
            translation_placeholders={"title": entry.title},
        )
    return entry


def _backend_failure(
    hass: HomeAssistant, err: BackendError, entry: NeighbourhoodConfigEntry
) -> HomeAssistantError:
    """The error a failed backend call shows the user."""
    if isinstance(err, InvalidAuth):
        entry.async_start_reauth(hass)
        return HomeAssistantError(translation_domain=DOMAIN, translation_key="backend_invalid_auth")
    if isinstance(err, CannotConnect):
        return HomeAssistantError(
            translation_domain=DOMAIN,
            translation_key="backend_unreachable",
            translation_placeholders={"url": entry.runtime_data.client.url, "error": str(err)},
        )
    if isinstance(err, BackendRejected) and err.code == "duplicate_contribution":
        return HomeAssistantError(
            translation_domain=DOMAIN, translation_key="already_contributed"
        )
    message = err.message if isinstance(err, BackendRejected) else str(err)
    return HomeAssistantError(
        translation_domain=DOMAIN,
        translation_key="backend_refused",
        translation_placeholders={"message": message},
    )


async def _async_contribute_now(call: ServiceCall) -> ServiceResponse:
    entry = _entry_for_call(call.hass, call)
    task = call.data[ATTR_TASK]
    contributor = entry.runtime_data.contributors.get(task)
    if contributor is None:
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="task_not_opted_in",
            translation_placeholders={"task": task},
        )
    try:
        receipt = await contributor.contribute_now()
    except NoValidState as err:
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="no_valid_state",
            translation_placeholders={"entity_id": contributor.entity_id, "task": task},
        ) from err
    except BackendError as err:
        raise _backend_failure(call.hass, err, entry) from err
    return {"task": receipt.task, "round": receipt.round, "duplicate": receipt.duplicate}


async def _async_get_results(call: ServiceCall) -> ServiceResponse:
    entry = _entry_for_call(call.hass, call)
    task = call.data.get(ATTR_TASK)
    specs = entry.runtime_data.coordinator.data.specs
    if task is not None and task not in specs:
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="unknown_task",
            translation_placeholders={"task": task, "tasks": ", ".join(specs) or "-"},
        )
    try:
        results = await entry.runtime_data.client.results(task, limit=call.data[ATTR_LIMIT])
    except BackendError as err:
        raise _backend_failure(call.hass, err, entry) from err
    return {"results": [result.as_dict() for result in results]}


async def _async_create_invite(call: ServiceCall) -> ServiceResponse:
    entry = _entry_for_call(call.hass, call)
    client = entry.runtime_data.client
    try:
        invite = await client.create_invite(round(call.data[ATTR_EXPIRES_HOURS] * 3600))
    except BackendRejected as err:
        if err.code == "not_founder":
            raise ServiceValidationError(
                translation_domain=DOMAIN,
                translation_key="not_founder",
                translation_placeholders={"founder": await client.founder_name() or "-"},
            ) from err
        if err.code in ("relay_unavailable", "no_relay_admin"):
            raise HomeAssistantError(
                translation_domain=DOMAIN,
                translation_key=err.code,
                translation_placeholders={"message": err.message},
            ) from err
        raise _backend_failure(call.hass, err, entry) from err
    except BackendError as err:
        raise _backend_failure(call.hass, err, entry) from err
    return {
        "token": invite.token,
        "expires_at": invite.expires_at.isoformat(),
        "federation": entry.runtime_data.coordinator.data.status.federation_name,
    }


def async_setup_services(hass: HomeAssistant) -> None:
    hass.services.async_register(
        DOMAIN,
        SERVICE_CONTRIBUTE_NOW,
        _async_contribute_now,
        schema=CONTRIBUTE_NOW_SCHEMA,
        supports_response=SupportsResponse.OPTIONAL,
    )
    hass.services.async_register(
        DOMAIN,
        SERVICE_GET_RESULTS,
        _async_get_results,
        schema=GET_RESULTS_SCHEMA,
        supports_response=SupportsResponse.ONLY,
    )
    hass.services.async_register(
        DOMAIN,
        SERVICE_CREATE_INVITE,
        _async_create_invite,
        schema=CREATE_INVITE_SCHEMA,
        supports_response=SupportsResponse.ONLY,
    )
