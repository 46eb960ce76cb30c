"""Base entity: one device per config entry, named by the entry."""

from __future__ import annotations

from homeassistant.helpers.device_registry import DeviceInfo
from homeassistant.helpers.update_coordinator import CoordinatorEntity

from .const import DOMAIN
from .coordinator import SensorCoordinator


class HearthEntity(CoordinatorEntity[SensorCoordinator]):
    """An entity of a Hearth sensor device."""

    _attr_has_entity_name = True

    def __init__(self, coordinator: SensorCoordinator, key: str) -> None:
        super().__init__(coordinator)
        entry = coordinator.config_entry
        device = coordinator.device
        # The entry id, not bus+address or port: those change on reconfigure, and the
        # entities (with their history) must not.
        self._attr_unique_id = f"{entry.entry_id}_{key}"
        self._attr_device_info = DeviceInfo(
            identifiers={(DOMAIN, entry.entry_id)},
            manufacturer=device.manufacturer,
            model=device.name,
            model_id=device.model,
            name=entry.title,
        )
