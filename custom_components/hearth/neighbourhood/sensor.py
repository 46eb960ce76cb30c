"""Neighbourhood sensors: one per released statistic of each task, plus diagnostics.

A task's sensors show its latest *released* aggregate: a round that ended
"insufficient" (too few contributors) or "failed" leaves the last released value
in place, and the per-task "last round" sensor says what happened. Tasks the
federation adds later get their sensors on the next update.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from homeassistant.components.sensor import (
    SensorDeviceClass,
    SensorEntity,
    SensorEntityDescription,
    SensorStateClass,
)
from homeassistant.const import EntityCategory
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .coordinator import NeighbourhoodCoordinator
from .entity import NeighbourhoodEntity, metric_name
from .issues import KIND_ATTRIBUTE, SENSOR_KEY, plain
from .models import TaskResult, TaskSpec
from .runtime import NeighbourhoodConfigEntry
from .units import DELTA_CLASSES, display_precision, normal_unit, value_device_class

ROUND_STATUSES = ["released", "insufficient", "failed"]

@dataclass(frozen=True, kw_only=True)
class AggregateDescription(SensorEntityDescription):
    """A statistic of a task's released aggregate."""

    stat: str | None  # the task statistic it needs; None: every task has it
    value_fn: Callable[[TaskResult], float | int | None]
    unit_kind: str  # "value", "spread", "squared" or "count"
    extra_decimals: int = 1


def _stat(name: str) -> Callable[[TaskResult], float | None]:
    def value(result: TaskResult) -> float | None:
        return getattr(result.statistics, name) if result.statistics else None

    return value


def _quantile(key: str) -> Callable[[TaskResult], float | None]:
    def value(result: TaskResult) -> float | None:
        stats = result.statistics
        return None if stats is None or not stats.quantiles else stats.quantiles.get(key)

    return value


AGGREGATES: tuple[AggregateDescription, ...] = (
    AggregateDescription(
        key="contributors",
        translation_key="contributors",
        stat=None,
        value_fn=lambda r: r.contributors,
        unit_kind="count",
        extra_decimals=0,
    ),
    AggregateDescription(key="mean", translation_key="mean", stat="mean",
                         value_fn=_stat("mean"), unit_kind="value"),
    AggregateDescription(key="stddev", translation_key="stddev", stat="stddev",
                         value_fn=_stat("stddev"), unit_kind="spread"),
    AggregateDescription(key="variance", translation_key="variance", stat="variance",
                         value_fn=_stat("variance"), unit_kind="squared", extra_decimals=2,
                         entity_registry_enabled_default=False),
    AggregateDescription(key="sum", translation_key="sum", stat="sum",
                         value_fn=_stat("sum"), unit_kind="spread", extra_decimals=0),
    *(
        AggregateDescription(
            key=key,
            translation_key=f"quantile_{key}",
            stat="quantiles",
            value_fn=_quantile(key),
            unit_kind="value",
            entity_registry_enabled_default=key in ("p25", "p50", "p75"),
        )
        for key in ("p10", "p25", "p50", "p75", "p90")
    ),
)


class AggregateSensor(NeighbourhoodEntity, SensorEntity):
    """One statistic of one task's latest released round."""

    entity_description: AggregateDescription
    _attr_state_class = SensorStateClass.MEASUREMENT

    def __init__(
        self, coordinator: NeighbourhoodCoordinator, spec: TaskSpec, desc: AggregateDescription
    ) -> None:
        super().__init__(coordinator, f"{spec.task_id}_{desc.key}")
        self.entity_description = desc
        self.task_id = spec.task_id
        self._attr_translation_placeholders = {"metric": metric_name(spec.metric)}
        value_class = value_device_class(spec)
        unit = normal_unit(spec.unit) or None
        if desc.unit_kind == "count":
            self._attr_suggested_display_precision = 0
        else:
            self._attr_suggested_display_precision = display_precision(
                spec.resolution, desc.extra_decimals
            )
            if desc.unit_kind == "value":
                self._attr_device_class = value_class
                self._attr_native_unit_of_measurement = unit
            elif desc.unit_kind == "spread":
                self._attr_device_class = DELTA_CLASSES.get(value_class, value_class)
                if value_class in DELTA_CLASSES and desc.key == "sum":
                    self._attr_device_class = None
                self._attr_native_unit_of_measurement = unit
            else:
                self._attr_native_unit_of_measurement = f"({unit})²" if unit else None

    @property
    def available(self) -> bool:
        return super().available and self.task_id in self.coordinator.data.specs

    @property
    def native_value(self) -> float | int | None:
        result = self.coordinator.data.released.get(self.task_id)
        return None if result is None else self.entity_description.value_fn(result)

    @property
    def extra_state_attributes(self) -> Mapping[str, Any] | None:
        if self.entity_description.key != "contributors":
            return None
        result = self.coordinator.data.released.get(self.task_id)
        if result is None:
            return None
        attributes: dict[str, Any] = {
            "round": result.round,
            "round_end": result.round_end.isoformat(),
        }
        if result.statistics is not None and result.statistics.histogram is not None:
            attributes["histogram"] = [
                {"low": b.low, "high": b.high, "count": b.count}
                for b in result.statistics.histogram
            ]
        return attributes


class LastRoundSensor(NeighbourhoodEntity, SensorEntity):
    """How the task's most recent round ended: released, insufficient or failed."""

    _attr_device_class = SensorDeviceClass.ENUM
    _attr_options = ROUND_STATUSES
    _attr_entity_category = EntityCategory.DIAGNOSTIC
    _attr_translation_key = "last_round"

    def __init__(self, coordinator: NeighbourhoodCoordinator, spec: TaskSpec) -> None:
        super().__init__(coordinator, f"{spec.task_id}_last_round")
        self.task_id = spec.task_id
        self._attr_translation_placeholders = {"metric": metric_name(spec.metric)}

    @property
    def native_value(self) -> str | None:
        result = self.coordinator.data.latest.get(self.task_id)
        return None if result is None or result.status not in ROUND_STATUSES else result.status

    @property
    def extra_state_attributes(self) -> Mapping[str, Any] | None:
        result = self.coordinator.data.latest.get(self.task_id)
        if result is None:
            return None
        return {
            "round": result.round,
            "reason": result.reason,
            # Reports the committee left out, whatever its co-signed verdict (invalid,
            # inconsistent or unchecked); only invalid ones are anyone's misbehaviour.
            "excluded_reports": len(result.excluded),
        }


@dataclass(frozen=True, kw_only=True)
class NodeDescription(SensorEntityDescription):
    value_fn: Callable[[NeighbourhoodCoordinator], int]


NODE_SENSORS: tuple[NodeDescription, ...] = (
    NodeDescription(
        key="members_online",
        translation_key="members_online",
        state_class=SensorStateClass.MEASUREMENT,
        entity_category=EntityCategory.DIAGNOSTIC,
        value_fn=lambda c: c.data.status.members_online,
    ),
    NodeDescription(
        key="committee_seats",
        translation_key="committee_seats",
        state_class=SensorStateClass.MEASUREMENT,
        entity_category=EntityCategory.DIAGNOSTIC,
        value_fn=lambda c: c.data.status.committee_seats,
    ),
)


class NodeSensor(NeighbourhoodEntity, SensorEntity):
    """A fact about this household's backend node."""

    entity_description: NodeDescription

    def __init__(self, coordinator: NeighbourhoodCoordinator, desc: NodeDescription) -> None:
        super().__init__(coordinator, desc.key)
        self.entity_description = desc

    @property
    def native_value(self) -> int:
        return self.entity_description.value_fn(self.coordinator)


MISBEHAVIOUR_SENSOR = SensorEntityDescription(
    key=SENSOR_KEY,
    translation_key=SENSOR_KEY,
    state_class=SensorStateClass.TOTAL_INCREASING,
    entity_category=EntityCategory.DIAGNOSTIC,
)
DETAIL_MAX = 200


class MisbehaviourSensor(NeighbourhoodEntity, SensorEntity):
    """How many misbehaviour reports the node recorded, and about whom.

    Added once the backend reports misbehaviour (older versions do not); unknown
    while a later report cannot be read.
    """

    entity_description = MISBEHAVIOUR_SENSOR

    def __init__(self, coordinator: NeighbourhoodCoordinator) -> None:
        super().__init__(coordinator, MISBEHAVIOUR_SENSOR.key)

    @property
    def native_value(self) -> int | None:
        reports = self.coordinator.data.status.misbehaviour
        return None if reports is None else reports.total

    @property
    def extra_state_attributes(self) -> Mapping[str, Any] | None:
        status = self.coordinator.data.status
        attributes: dict[str, Any] = {}
        if (reports := status.misbehaviour) is not None:
            members = [
                {
                    "name": plain(m.name),
                    "node_id": m.node_id,
                    "count": m.count,
                    "kinds": dict(m.kinds),
                    "last_kind": m.last_kind,
                    "last_detail": None if m.last_detail is None else plain(
                        m.last_detail, DETAIL_MAX
                    ),
                    "last_seen": None if m.last_at is None else m.last_at.isoformat(),
                }
                for m in reports.members
            ]
            attributes["members"] = members
            dated = [(m.last_at, m) for m in reports.members if m.last_at is not None]
            if dated:
                at, last = max(dated, key=lambda pair: pair[0])
                attributes[KIND_ATTRIBUTE] = last.last_kind
                attributes["last_member"] = plain(last.name)
                attributes["last_seen"] = at.isoformat()
        if status.classical_members is not None:
            attributes["members_without_post_quantum"] = [
                plain(name) for name in status.classical_members
            ]
        return attributes or None


def task_entities(
    coordinator: NeighbourhoodCoordinator, spec: TaskSpec
) -> list[SensorEntity]:
    """The sensors one task gets: its statistics and its last-round status."""
    entities: list[SensorEntity] = [
        AggregateSensor(coordinator, spec, desc)
        for desc in AGGREGATES
        if desc.stat is None or desc.stat in spec.stats
    ]
    entities.append(LastRoundSensor(coordinator, spec))
    return entities


async def async_setup_entry(
    hass: HomeAssistant,
    entry: NeighbourhoodConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the node's sensors now, each task's sensors as tasks appear, and the
    misbehaviour sensor once the backend reports misbehaviour (older ones do not)."""
    coordinator = entry.runtime_data.coordinator
    async_add_entities(NodeSensor(coordinator, desc) for desc in NODE_SENSORS)
    known: set[str] = set()
    misbehaviour_added = False

    @callback
    def add_new_entities() -> None:
        nonlocal misbehaviour_added
        new: list[SensorEntity] = []
        if not misbehaviour_added and coordinator.data.status.misbehaviour is not None:
            misbehaviour_added = True
            new.append(MisbehaviourSensor(coordinator))
        for task_id, spec in coordinator.data.specs.items():
            if task_id not in known:
                known.add(task_id)
                new += task_entities(coordinator, spec)
        if new:
            async_add_entities(new)

    add_new_entities()
    entry.async_on_unload(coordinator.async_add_listener(add_new_entities))
