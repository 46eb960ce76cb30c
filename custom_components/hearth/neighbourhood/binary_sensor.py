"""Connectivity: whether the household backend answers, and whether it reaches the relay.

The backend sensor stays available and turns off when the backend does not answer.
The relay sensor exists once the federation carries its messages through an MQTT
relay (a broker every hub dials out to) instead of direct HTTP; it is added when the
backend first reports a relay, and goes unavailable when the backend is unreachable
(nobody can then say whether the relay is) or the federation goes back to direct HTTP.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from homeassistant.components.binary_sensor import (
    BinarySensorDeviceClass,
    BinarySensorEntity,
    BinarySensorEntityDescription,
)
from homeassistant.const import EntityCategory
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .coordinator import NeighbourhoodCoordinator
from .entity import NeighbourhoodEntity
from .models import RelayStatus
from .runtime import NeighbourhoodConfigEntry

BACKEND_SENSOR = BinarySensorEntityDescription(
    key="backend",
    translation_key="backend",
    device_class=BinarySensorDeviceClass.CONNECTIVITY,
    entity_category=EntityCategory.DIAGNOSTIC,
)
RELAY_SENSOR = BinarySensorEntityDescription(
    key="relay",
    translation_key="relay",
    device_class=BinarySensorDeviceClass.CONNECTIVITY,
    entity_category=EntityCategory.DIAGNOSTIC,
)
ERROR_MAX = 255  # a broker's error text is shown as it comes, but not at any length


class BackendConnectivity(NeighbourhoodEntity, BinarySensorEntity):
    entity_description = BACKEND_SENSOR

    def __init__(self, coordinator: NeighbourhoodCoordinator) -> None:
        super().__init__(coordinator, BACKEND_SENSOR.key)

    @property
    def available(self) -> bool:
        # The point of this entity is to say "disconnected", so it never goes unavailable
        # just because the backend does.
        return True

    @property
    def is_on(self) -> bool:
        return self.coordinator.last_update_success and self.coordinator.data.online


class RelayConnectivity(NeighbourhoodEntity, BinarySensorEntity):
    """Whether this hub's node is connected to the federation's MQTT relay."""

    entity_description = RELAY_SENSOR

    def __init__(self, coordinator: NeighbourhoodCoordinator) -> None:
        super().__init__(coordinator, RELAY_SENSOR.key)

    @property
    def _relay(self) -> RelayStatus | None:
        return self.coordinator.data.status.relay

    @property
    def available(self) -> bool:
        # Unlike the backend sensor: with the backend unreachable nothing says whether the
        # relay is, so this one is unavailable rather than off.
        return super().available and self._relay is not None

    @property
    def is_on(self) -> bool | None:
        relay = self._relay
        return None if relay is None else relay.connected

    @property
    def extra_state_attributes(self) -> Mapping[str, Any] | None:
        if (relay := self._relay) is None:
            return None
        error = relay.last_error
        return {
            "url": relay.url,
            "since": None if relay.since is None else relay.since.isoformat(),
            "last_error": None if error is None else error[:ERROR_MAX],
        }


async def async_setup_entry(
    hass: HomeAssistant,
    entry: NeighbourhoodConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """The backend sensor now; the relay sensor once the backend reports a relay."""
    coordinator = entry.runtime_data.coordinator
    async_add_entities([BackendConnectivity(coordinator)])
    relay_added = False

    @callback
    def add_relay_sensor() -> None:
        nonlocal relay_added
        if not relay_added and coordinator.data.status.relay is not None:
            relay_added = True
            async_add_entities([RelayConnectivity(coordinator)])

    add_relay_sensor()
    entry.async_on_unload(coordinator.async_add_listener(add_relay_sensor))
