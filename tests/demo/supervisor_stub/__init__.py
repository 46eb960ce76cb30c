"""Test-only stand-in for the discovery part of Home Assistant's hassio integration.

The Supervisor and the hassio integration cannot run outside Home Assistant OS. What an app's
discovery needs from them is one thing: at start, Home Assistant reads the Supervisor's pending
discovery messages (`GET /discovery`, and `GET /addons/<slug>/info` for the app's name) and
starts each service's config flow with source "hassio". This does exactly that, as
homeassistant/components/hassio/discovery.py (`async_process_new`) does, against the fake
Supervisor the test serves on loopback (configured as `supervisor_stub: {url, token}`).
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

import voluptuous as vol
from homeassistant import config_entries
from homeassistant.const import EVENT_HOMEASSISTANT_START
from homeassistant.core import Event, HomeAssistant
from homeassistant.helpers import config_validation as cv
from homeassistant.helpers import discovery_flow
from homeassistant.helpers.aiohttp_client import async_get_clientsession
from homeassistant.helpers.service_info.hassio import HassioServiceInfo
from homeassistant.helpers.typing import ConfigType

DOMAIN = "supervisor_stub"
HASSIO = "hassio"  # the discovery key's domain, as the hassio integration sets it

CONFIG_SCHEMA = vol.Schema(
    {DOMAIN: vol.Schema({vol.Required("url"): cv.url, vol.Required("token"): cv.string})},
    extra=vol.ALLOW_EXTRA,
)


async def async_setup(hass: HomeAssistant, config: ConfigType) -> bool:
    url: str = config[DOMAIN]["url"].rstrip("/")
    headers = {"Authorization": f"Bearer {config[DOMAIN]['token']}"}
    session = async_get_clientsession(hass)

    async def get(path: str) -> dict[str, Any]:
        async with session.get(f"{url}{path}", headers=headers, raise_for_status=True) as r:
            return (await r.json())["data"]

    async def process_pending(_event: Event) -> None:
        for discovery in (await get("/discovery"))["discovery"]:
            addon_info = await get(f"/addons/{discovery['addon']}/info")
            uuid = UUID(discovery["uuid"]).hex
            discovery_flow.async_create_flow(
                hass,
                discovery["service"],
                context={"source": config_entries.SOURCE_HASSIO},
                data=HassioServiceInfo(
                    config={**discovery["config"], "addon": addon_info["name"]},
                    name=addon_info["name"],
                    slug=discovery["addon"],
                    uuid=uuid,
                ),
                discovery_key=discovery_flow.DiscoveryKey(domain=HASSIO, key=uuid, version=1),
            )

    hass.bus.async_listen_once(EVENT_HOMEASSISTANT_START, process_pending)
    return True
