"""The harness loads the integration in a real Home Assistant."""

from homeassistant.core import HomeAssistant
from homeassistant.loader import async_get_integration
from homeassistant.setup import async_setup_component

from custom_components.hearth.const import DOMAIN


async def test_integration_loads(hass: HomeAssistant) -> None:
    """Home Assistant finds the manifest and sets the component up."""
    integration = await async_get_integration(hass, DOMAIN)
    assert integration.name == "Hearth"
    assert integration.config_flow is True
    assert "serialx==1.15.1" in integration.requirements
    assert await async_setup_component(hass, DOMAIN, {})
    assert DOMAIN in hass.config.components
