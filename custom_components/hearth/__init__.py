"""Hearth: local I2C/UART sensors and neighbourhood statistics for Home Assistant."""

from __future__ import annotations

from datetime import timedelta

from homeassistant.config_entries import ConfigEntry
from homeassistant.const import Platform
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import ConfigEntryError
from homeassistant.helpers import config_validation as cv
from homeassistant.helpers.typing import ConfigType

from . import neighbourhood
from .const import CONF_KIND, DOMAIN, SENSOR_KINDS
from .coordinator import SensorConfigEntry, SensorCoordinator, StreamingCoordinator
from .device import SerialDevice, create_device
from .issues import async_clear_node_problem
from .neighbourhood.const import KIND_NEIGHBOURHOOD
from .neighbourhood.issues import async_clear_misbehaviour_issues
from .services import async_setup_services
from .settings import CONTINUOUS, configure, scan_interval

SENSOR_PLATFORMS: list[Platform] = [Platform.SENSOR]

CONFIG_SCHEMA = cv.config_entry_only_config_schema(DOMAIN)


async def async_setup(hass: HomeAssistant, config: ConfigType) -> bool:
    """Register the actions (and the Assist intent), which exist before any entry loads."""
    async_setup_services(hass)
    neighbourhood.async_setup(hass)
    return True


async def async_setup_entry(hass: HomeAssistant, entry: ConfigEntry) -> bool:
    """Set up a Hearth config entry according to its kind."""
    if (kind := entry.data.get(CONF_KIND)) == KIND_NEIGHBOURHOOD:
        return await neighbourhood.async_setup_entry(hass, entry)
    if kind not in SENSOR_KINDS:
        # e.g. an entry made by a newer Hearth, then downgraded
        raise ConfigEntryError(
            translation_domain=DOMAIN,
            translation_key="unknown_kind",
            translation_placeholders={"kind": str(kind)},
        )
    return await _async_setup_sensor_entry(hass, entry)


async def _async_setup_sensor_entry(hass: HomeAssistant, entry: SensorConfigEntry) -> bool:
    device = create_device(hass, entry.data)
    cleaner = configure(device, entry.options)
    interval = scan_interval(entry.options, device)

    coordinator: SensorCoordinator
    if isinstance(device, SerialDevice) and device.streaming:
        coordinator = StreamingCoordinator(
            hass, entry, device, cleaner, None if interval == CONTINUOUS else interval
        )
    else:
        coordinator = SensorCoordinator(hass, entry, device, cleaner, timedelta(seconds=interval))
    # On failure the coordinator's shutdown (registered on unload) releases the device.
    await coordinator.async_config_entry_first_refresh()
    entry.runtime_data = coordinator
    await hass.config_entries.async_forward_entry_setups(entry, SENSOR_PLATFORMS)
    if isinstance(coordinator, StreamingCoordinator):
        coordinator.async_start()
    return True


async def async_unload_entry(hass: HomeAssistant, entry: ConfigEntry) -> bool:
    """Unload a Hearth config entry."""
    if entry.data.get(CONF_KIND) == KIND_NEIGHBOURHOOD:
        return await neighbourhood.async_unload_entry(hass, entry)
    return await hass.config_entries.async_unload_platforms(entry, SENSOR_PLATFORMS)


async def async_remove_entry(hass: HomeAssistant, entry: ConfigEntry) -> None:
    """A removed entry leaves no repair issue behind."""
    if entry.data.get(CONF_KIND) == KIND_NEIGHBOURHOOD:
        async_clear_misbehaviour_issues(hass, entry.entry_id)
    else:
        async_clear_node_problem(hass, entry)
