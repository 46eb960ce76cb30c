"""Binary sensors: the neighbourhood backend's and its relay's connectivity (sensor devices
have none)."""

from __future__ import annotations

from .neighbourhood.binary_sensor import async_setup_entry

# Coordinator-driven; nothing to serialise.
PARALLEL_UPDATES = 0

__all__ = ["PARALLEL_UPDATES", "async_setup_entry"]
