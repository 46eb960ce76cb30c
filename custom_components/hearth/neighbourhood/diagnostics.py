"""Diagnostics for a neighbourhood entry: settings, node status, latest rounds; no token.

Released aggregates are already shared with the whole federation, so they are
included; this home's own readings never pass through here.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from homeassistant.components.diagnostics import async_redact_data
from homeassistant.core import HomeAssistant

from .const import CONF_TOKEN
from .runtime import NeighbourhoodConfigEntry

TO_REDACT = {CONF_TOKEN}


async def async_get_config_entry_diagnostics(
    hass: HomeAssistant, entry: NeighbourhoodConfigEntry
) -> dict[str, Any]:
    runtime = entry.runtime_data
    coordinator = runtime.coordinator
    data = coordinator.data
    return {
        "entry": async_redact_data(
            {"title": entry.title, "data": dict(entry.data), "options": dict(entry.options)},
            TO_REDACT,
        ),
        "coordinator": coordinator.diagnostics(),
        "online": data.online,
        "status": asdict(data.status),
        "latest": {task: result.as_dict() for task, result in data.latest.items()},
        "released": {task: result.as_dict() for task, result in data.released.items()},
        "contributors": {
            task: {
                "entity_id": c.entity_id,
                "samples_this_round": len(c.samples),
                "last_round_sent": c.last_receipt.round if c.last_receipt else None,
            }
            for task, c in runtime.contributors.items()
        },
    }
