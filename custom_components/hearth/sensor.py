"""Sensor entities: one per measured quantity, plus two diagnostic counters."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from homeassistant.components.sensor import (
    SensorDeviceClass,
    SensorEntity,
    SensorEntityDescription,
    SensorStateClass,
)
from homeassistant.const import (
    LIGHT_LUX,
    PERCENTAGE,
    EntityCategory,
    UnitOfElectricCurrent,
    UnitOfElectricPotential,
    UnitOfPower,
    UnitOfPressure,
    UnitOfTemperature,
)
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .const import CONF_KIND
from .coordinator import SensorConfigEntry, SensorCoordinator
from .entity import HearthEntity
from .neighbourhood import sensor as neighbourhood_sensor
from .neighbourhood.const import KIND_NEIGHBOURHOOD

# Readings only; the bus lock and the coordinator already serialise device access.
PARALLEL_UPDATES = 0

# Literals rather than UnitOfRatio/UnitOfDensity, which only exist from Home Assistant
# 2026.8; the values are what those enums (and the older constants) hold.
PARTS_PER_MILLION = "ppm"
MICROGRAMS_PER_CUBIC_METER = "μg/m³"  # Greek mu, as Home Assistant spells it


def _measurement(
    key: str, device_class: SensorDeviceClass, unit: str, precision: int
) -> SensorEntityDescription:
    return SensorEntityDescription(
        key=key,
        device_class=device_class,
        native_unit_of_measurement=unit,
        state_class=SensorStateClass.MEASUREMENT,
        suggested_display_precision=precision,
    )


# Keys are drivers.quantities.QUANTITIES keys; the device class supplies the name.
QUANTITY_SENSORS: dict[str, SensorEntityDescription] = {
    d.key: d
    for d in (
        _measurement("temperature", SensorDeviceClass.TEMPERATURE, UnitOfTemperature.CELSIUS, 1),
        _measurement("humidity", SensorDeviceClass.HUMIDITY, PERCENTAGE, 1),
        _measurement("pressure", SensorDeviceClass.ATMOSPHERIC_PRESSURE, UnitOfPressure.HPA, 1),
        _measurement("illuminance", SensorDeviceClass.ILLUMINANCE, LIGHT_LUX, 0),
        _measurement("co2", SensorDeviceClass.CO2, PARTS_PER_MILLION, 0),
        _measurement("voltage", SensorDeviceClass.VOLTAGE, UnitOfElectricPotential.VOLT, 2),
        _measurement("current", SensorDeviceClass.CURRENT, UnitOfElectricCurrent.AMPERE, 3),
        _measurement("power", SensorDeviceClass.POWER, UnitOfPower.WATT, 2),
        _measurement("pm1", SensorDeviceClass.PM1, MICROGRAMS_PER_CUBIC_METER, 0),
        _measurement("pm25", SensorDeviceClass.PM25, MICROGRAMS_PER_CUBIC_METER, 0),
        _measurement("pm10", SensorDeviceClass.PM10, MICROGRAMS_PER_CUBIC_METER, 0),
    )
}


@dataclass(frozen=True, kw_only=True)
class HearthCounterDescription(SensorEntityDescription):
    """A diagnostic counter read from the coordinator."""

    value_fn: Callable[[SensorCoordinator], int]


COUNTER_SENSORS: tuple[HearthCounterDescription, ...] = (
    HearthCounterDescription(
        key="transfer_errors",
        translation_key="transfer_errors",
        entity_category=EntityCategory.DIAGNOSTIC,
        entity_registry_enabled_default=False,
        state_class=SensorStateClass.TOTAL_INCREASING,
        value_fn=lambda coordinator: coordinator.device.transfer_errors,
    ),
    HearthCounterDescription(
        key="rejected_readings",
        translation_key="rejected_readings",
        entity_category=EntityCategory.DIAGNOSTIC,
        entity_registry_enabled_default=False,
        state_class=SensorStateClass.TOTAL_INCREASING,
        value_fn=lambda coordinator: coordinator.cleaner.stats.rejected,
    ),
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: SensorConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the device's quantity sensors and diagnostic counters."""
    if entry.data.get(CONF_KIND) == KIND_NEIGHBOURHOOD:
        await neighbourhood_sensor.async_setup_entry(hass, entry, async_add_entities)
        return
    coordinator = entry.runtime_data
    entities: list[SensorEntity] = [
        HearthQuantitySensor(coordinator, QUANTITY_SENSORS[key])
        for key in coordinator.device.quantities
    ]
    entities.extend(HearthCounterSensor(coordinator, d) for d in COUNTER_SENSORS)
    async_add_entities(entities)


class HearthQuantitySensor(HearthEntity, SensorEntity):
    """A measured quantity after cleaning and calibration."""

    def __init__(
        self, coordinator: SensorCoordinator, description: SensorEntityDescription
    ) -> None:
        super().__init__(coordinator, description.key)
        self.entity_description = description

    @property
    def available(self) -> bool:
        """Unavailable while the device fails, and until its first accepted value."""
        return super().available and self.entity_description.key in self.coordinator.data

    @property
    def native_value(self) -> float | None:
        """The latest accepted value."""
        return self.coordinator.data.get(self.entity_description.key)


class HearthCounterSensor(HearthEntity, SensorEntity):
    """Counts problems; stays available when the device is not, since that is when it matters."""

    entity_description: HearthCounterDescription

    def __init__(
        self, coordinator: SensorCoordinator, description: HearthCounterDescription
    ) -> None:
        super().__init__(coordinator, description.key)
        self.entity_description = description

    @property
    def available(self) -> bool:
        """Always: the count is known even while the device is failing."""
        return True

    @property
    def native_value(self) -> int:
        """The current count."""
        return self.entity_description.value_fn(self.coordinator)
