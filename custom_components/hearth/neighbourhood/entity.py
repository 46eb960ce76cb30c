"""Base entity: every neighbourhood entity belongs to one "Neighbourhood" service device."""

from __future__ import annotations

from homeassistant.helpers.device_registry import DeviceEntryType, DeviceInfo
from homeassistant.helpers.update_coordinator import CoordinatorEntity

from ..const import DOMAIN
from .coordinator import NeighbourhoodCoordinator

# Metric slugs whose plain capitalisation would misspell them ("Co2", "Pm25").
_SPELLINGS = {"co2": "CO₂", "pm1": "PM1", "pm25": "PM2.5", "pm2_5": "PM2.5", "pm10": "PM10"}


def metric_name(metric: str) -> str:
    """A task's metric as entity names show it: "indoor_temperature" -> "Indoor temperature"."""
    if spelled := _SPELLINGS.get(metric.lower()):
        return spelled
    words = metric.replace("_", " ").replace("-", " ").split()
    text = " ".join(words)
    return text[:1].upper() + text[1:]


class NeighbourhoodEntity(CoordinatorEntity[NeighbourhoodCoordinator]):
    """An entity fed by the household backend."""

    _attr_has_entity_name = True

    def __init__(self, coordinator: NeighbourhoodCoordinator, key: str) -> None:
        super().__init__(coordinator)
        status = coordinator.data.status
        # The backend's node id, not the entry id or URL: a reinstalled integration or
        # a moved backend keeps its entities and their history.
        self._attr_unique_id = f"{status.node_id}_{key}"
        self._attr_device_info = DeviceInfo(
            identifiers={(DOMAIN, f"neighbourhood_{status.node_id}")},
            entry_type=DeviceEntryType.SERVICE,
            manufacturer="Hearth",
            model="Neighbourhood backend",
            sw_version=status.version,
            translation_key="neighbourhood",
        )

    @property
    def available(self) -> bool:
        return super().available and self.coordinator.data.online
