"""Repair issues for problems only the user can fix on the host: a missing or refused /dev node."""

from __future__ import annotations

from homeassistant.config_entries import ConfigEntry
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers import issue_registry as ir

from .access import DeviceNodeError
from .const import DOMAIN


def _issue_id(entry: ConfigEntry) -> str:
    return f"device_node_{entry.entry_id}"


@callback
def async_report_node_problem(
    hass: HomeAssistant, entry: ConfigEntry, err: DeviceNodeError
) -> None:
    """Raise (or update) the entry's repair issue."""
    ir.async_create_issue(
        hass,
        DOMAIN,
        _issue_id(entry),
        is_fixable=False,
        severity=ir.IssueSeverity.ERROR,
        translation_key=err.translation_key,
        translation_placeholders={"title": entry.title, "path": err.path},
    )


@callback
def async_clear_node_problem(hass: HomeAssistant, entry: ConfigEntry) -> None:
    """The node works again (or the entry is gone): withdraw the issue."""
    ir.async_delete_issue(hass, DOMAIN, _issue_id(entry))
