"""Whether the household backend answers: stays available and turns off when it does not."""

from __future__ import annotations

from homeassistant.components.binary_sensor import BinarySensorDeviceClass, BinarySensorEntity
from homeassistant.const import EntityCategory
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .coordinator import NeighbourhoodCoordinator
from .entity import NeighbourhoodEntity
from .runtime import NeighbourhoodConfigEntry


class BackendConnectivity(NeighbourhoodEntity, BinarySensorEntity):
    _attr_device_class = BinarySensorDeviceClass.CONNECTIVITY
    _attr_entity_category = EntityCategory.DIAGNOSTIC
    _attr_translation_key = "backend"

    def __init__(self, coordinator: NeighbourhoodCoordinator) -> None:
        super().__init__(coordinator, "backend")

    @property
    def available(self) -> bool:
        # The point of this entity is to say "disconnected", so it never goes unavailable
        # just because the backend does.
        return True

    @property
    def is_on(self) -> bool:
        return self.coordinator.last_update_success and self.coordinator.data.online


async def async_setup_entry(
    hass: HomeAssistant,
    entry: NeighbourhoodConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    async_add_entities([BackendConnectivity(entry.runtime_data.coordinator)])
