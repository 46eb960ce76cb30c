"""Home Assistant test harness (pytest-homeassistant-custom-component)."""

from __future__ import annotations

import pytest

# Imported at module top so this repository's package wins over HA's testing config dir.
import custom_components  # noqa: F401


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations(enable_custom_integrations: None) -> None:
    """Let Home Assistant load integrations from custom_components/."""
