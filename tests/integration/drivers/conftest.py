"""Driver tests talk to emulators and pseudo-terminals only: no Home Assistant instance."""

import pytest


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations() -> None:
    """Override the parent autouse fixture so no hass instance is created per test."""
