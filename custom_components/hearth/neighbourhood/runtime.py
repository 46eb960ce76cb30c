"""What a loaded neighbourhood entry holds (``entry.runtime_data``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TypeAlias

from homeassistant.config_entries import ConfigEntry

from .client import BackendClient
from .contributor import TaskContributor
from .coordinator import NeighbourhoodCoordinator


@dataclass
class NeighbourhoodRuntime:
    client: BackendClient
    coordinator: NeighbourhoodCoordinator
    contributors: dict[str, TaskContributor] = field(default_factory=dict)  # by task id


NeighbourhoodConfigEntry: TypeAlias = ConfigEntry[NeighbourhoodRuntime]
