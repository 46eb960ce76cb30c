"""The neighbourhood entry: this hub's backend, its results, and this home's contributions.

Hearth's ``__init__`` calls ``async_setup`` once (actions, the Assist intent) and
dispatches entries whose ``kind`` is ``neighbourhood`` to ``async_setup_entry``.
"""

from __future__ import annotations

from homeassistant.const import Platform
from homeassistant.core import HomeAssistant
from homeassistant.helpers import intent
from homeassistant.helpers.aiohttp_client import async_get_clientsession

from ..const import LOGGER
from .assist import GetNeighbourhoodIntent
from .client import BackendClient
from .const import CONF_CONTRIBUTIONS, CONF_TOKEN, CONF_URL
from .contributor import TaskContributor
from .coordinator import NeighbourhoodCoordinator
from .runtime import NeighbourhoodConfigEntry, NeighbourhoodRuntime
from .services import async_setup_services

PLATFORMS: list[Platform] = [Platform.BINARY_SENSOR, Platform.SENSOR]


def async_setup(hass: HomeAssistant) -> None:
    """Register what exists once per Home Assistant, not per entry."""
    async_setup_services(hass)
    intent.async_register(hass, GetNeighbourhoodIntent())


async def async_setup_entry(hass: HomeAssistant, entry: NeighbourhoodConfigEntry) -> bool:
    client = BackendClient(
        async_get_clientsession(hass), entry.data[CONF_URL], entry.data[CONF_TOKEN]
    )
    coordinator = NeighbourhoodCoordinator(hass, entry, client)
    await coordinator.async_config_entry_first_refresh()
    runtime = NeighbourhoodRuntime(client, coordinator)
    entry.runtime_data = runtime

    specs = coordinator.data.specs
    for task_id, entity_id in entry.options.get(CONF_CONTRIBUTIONS, {}).items():
        if task_id not in specs:
            LOGGER.warning(
                "This home is set to contribute to task %s, which the neighbourhood no "
                "longer has; choose again in the integration's options", task_id
            )
            continue
        contributor = TaskContributor(hass, client, specs[task_id], entity_id)
        runtime.contributors[task_id] = contributor
        entry.async_on_unload(contributor.start())

    await hass.config_entries.async_forward_entry_setups(entry, PLATFORMS)
    entry.async_create_background_task(
        hass, coordinator.async_stream_results(), f"hearth result stream {entry.entry_id}"
    )
    return True


async def async_unload_entry(hass: HomeAssistant, entry: NeighbourhoodConfigEntry) -> bool:
    return await hass.config_entries.async_unload_platforms(entry, PLATFORMS)
