"""Household 1's real Home Assistant: config dir, onboarding, Hearth entries and a dashboard,
all through Home Assistant's own HTTP and websocket APIs (as a user's browser would)."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
import time
from pathlib import Path
from typing import Any

import aiohttp

from .backends import Node
from .dashboard import dashboard_config
from .processes import Supervisor
from .sensors import REPO, HouseholdSensors

_LOGGER = logging.getLogger(__name__)

DOMAIN = "hearth"
HA_URL = "http://127.0.0.1:8123"
CLIENT_ID = f"{HA_URL}/"
# A local-only demo account: Home Assistant listens on 127.0.0.1 and nowhere else.
DEMO_USER = "demo"
DEMO_PASSWORD = "hearth-demo"  # noqa: S105 - documented demo credential, loopback only
START_TIMEOUT_S = 600.0
DASHBOARD = "hearth-demo"


def prepare_config_dir(root: Path) -> Path:
    """.dev/ha from the checked-in template, with Hearth linked from the working tree."""
    config = root / "ha"
    (config / "custom_components").mkdir(parents=True, exist_ok=True)
    if not (config / "configuration.yaml").exists():
        shutil.copy(REPO / "config" / "configuration.yaml", config / "configuration.yaml")
    onboarding = config / ".storage" / "onboarding"
    if not onboarding.exists():
        # Onboarding's core_config step sets up met.no, Google Translate and Radio Browser,
        # which all reach the internet; the demo has no business there, so it starts done.
        onboarding.parent.mkdir(exist_ok=True)
        onboarding.write_text(
            json.dumps(
                {
                    "version": 4,
                    "minor_version": 1,
                    "key": "onboarding",
                    "data": {"done": ["core_config", "analytics"]},
                }
            )
        )
    link = config / "custom_components" / "hearth"
    if not link.is_symlink():
        # Relative, so it also resolves inside the Debian root where the repo is /src.
        link.symlink_to(os.path.relpath(REPO / "custom_components" / "hearth", link.parent))
    return config


async def start_home_assistant(
    supervisor: Supervisor, root: Path, node: Node, sensors: HouseholdSensors
) -> str:
    """Run hass, onboard it, configure Hearth; returns the long-lived token (also on disk)."""
    config = prepare_config_dir(root)
    try:
        relative = config.resolve().relative_to(REPO)
    except ValueError:
        raise RuntimeError(
            f"--dir must be inside {REPO}: Home Assistant runs with the repository "
            "mounted in its Python 3.14 root"
        ) from None
    supervisor.start(
        "Home Assistant",
        [str(REPO / "scripts" / "run"), "hass", "-c", str(relative)],
        root / "logs" / "home-assistant.log",
    )
    _LOGGER.info("starting Home Assistant (the first start takes a minute or two)")
    async with aiohttp.ClientSession() as session:
        await _wait_until_up(session, supervisor)
        token = await _long_lived_token(session, root)
        api = _Api(session, token)
        ids = await _configure_hearth(api, root, node, sensors)
        await _keep_loopback_http(api, config)
        local, neighbourhood = await api.hearth_entities(ids["neighbourhood"])
        dashboards = {d["url_path"] for d in await api.ws("lovelace/dashboards/list")}
        if DASHBOARD not in dashboards:
            await api.ws(
                "lovelace/dashboards/create",
                url_path=DASHBOARD,
                title="Hearth",
                icon="mdi:home-group",
                mode="storage",
                show_in_sidebar=True,
                require_admin=False,
            )
        await api.ws(
            "lovelace/config/save",
            url_path=DASHBOARD,
            config=dashboard_config(local, neighbourhood),
        )
    _LOGGER.info(
        "Home Assistant is ready: open %s/%s and log in as %s / %s",
        HA_URL,
        DASHBOARD,
        DEMO_USER,
        DEMO_PASSWORD,
    )
    return token


async def _keep_loopback_http(api: _Api, config: Path) -> None:
    """Confirm the loopback-only HTTP settings and drop them from the YAML.

    Home Assistant 2026.10 moves `http:` from YAML into storage as a trial that reverts
    (to listening on every interface) unless confirmed; confirm it, and remove the migrated
    block so no "YAML still present" repair is raised.
    """
    if (await api.ws("http/config")).get("pending") is not None:
        await api.ws("http/config/promote")
    yaml_file = config / "configuration.yaml"
    text = yaml_file.read_text()
    start = text.find("\nhttp:\n")
    if start != -1:
        end = text.find("\n\n", start + 1)
        yaml_file.write_text(text[:start] + text[end:])


async def _wait_until_up(session: aiohttp.ClientSession, supervisor: Supervisor) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        supervisor.check_alive()
        try:
            # Onboarding's API exists until onboarding is complete, then answers 404.
            async with session.get(f"{HA_URL}/api/onboarding") as response:
                if response.status in (200, 404):
                    return
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(1)
    raise RuntimeError(f"Home Assistant did not answer on {HA_URL} within {START_TIMEOUT_S:.0f} s")


async def _long_lived_token(session: aiohttp.ClientSession, root: Path) -> str:
    token_file = root / "ha-token"
    if token_file.exists():
        token = token_file.read_text().strip()
        async with session.get(f"{HA_URL}/api/", headers={"Authorization": f"Bearer {token}"}) as r:
            if r.status == 200:
                return token
    access = await _onboard_or_login(session)
    token = await _Api(session, access).ws(
        "auth/long_lived_access_token", client_name="scripts/develop", lifespan=3650
    )
    token_file.touch(mode=0o600)
    token_file.write_text(token + "\n")
    return token


async def _onboard_or_login(session: aiohttp.ClientSession) -> str:
    """A short-lived access token: onboarding on first start, the login flow after."""
    async with session.get(f"{HA_URL}/api/onboarding") as response:
        steps = await response.json() if response.status == 200 else []
    pending = {step["step"] for step in steps if not step["done"]}
    if "user" in pending:
        body = {
            "client_id": CLIENT_ID,
            "name": "Demo",
            "username": DEMO_USER,
            "password": DEMO_PASSWORD,
            "language": "en",
        }
        code = (await _post_json(session, "/api/onboarding/users", body))["auth_code"]
    else:
        flow = await _post_json(
            session,
            "/auth/login_flow",
            {"client_id": CLIENT_ID, "handler": ["homeassistant", None], "redirect_uri": CLIENT_ID},
        )
        done = await _post_json(
            session,
            f"/auth/login_flow/{flow['flow_id']}",
            {"client_id": CLIENT_ID, "username": DEMO_USER, "password": DEMO_PASSWORD},
        )
        code = done["result"]
    async with session.post(
        f"{HA_URL}/auth/token",
        data={"grant_type": "authorization_code", "code": code, "client_id": CLIENT_ID},
    ) as response:
        access = (await response.json())["access_token"]
    headers = {"Authorization": f"Bearer {access}"}
    for step, body in (
        ("core_config", {}),
        ("analytics", {}),
        ("integration", {"client_id": CLIENT_ID, "redirect_uri": CLIENT_ID}),
    ):
        if step in pending:
            await _post_json(session, f"/api/onboarding/{step}", body, headers)
    return access


async def _post_json(
    session: aiohttp.ClientSession,
    path: str,
    body: dict[str, Any],
    headers: dict[str, str] | None = None,
) -> Any:
    async with session.post(f"{HA_URL}{path}", json=body, headers=headers) as response:
        if response.status >= 400:
            raise RuntimeError(
                f"Home Assistant refused {path}: {response.status} {await response.text()}"
            )
        return await response.json()


class _Api:
    """Home Assistant's REST and websocket APIs with a bearer token."""

    def __init__(self, session: aiohttp.ClientSession, token: str) -> None:
        self.session = session
        self.headers = {"Authorization": f"Bearer {token}"}
        self.token = token

    async def get(self, path: str) -> Any:
        async with self.session.get(f"{HA_URL}{path}", headers=self.headers) as response:
            response.raise_for_status()
            return await response.json()

    async def post(self, path: str, body: dict[str, Any]) -> Any:
        return await _post_json(self.session, path, body, self.headers)

    async def ws(self, command: str, **payload: Any) -> Any:
        async with self.session.ws_connect(f"{HA_URL}/api/websocket") as ws:
            await ws.receive_json()  # auth_required
            await ws.send_json({"type": "auth", "access_token": self.token})
            if (await ws.receive_json())["type"] != "auth_ok":
                raise RuntimeError("Home Assistant rejected the demo token")
            await ws.send_json({"id": 1, "type": command, **payload})
            answer = await ws.receive_json()
        if not answer.get("success"):
            raise RuntimeError(f"{command} failed: {answer.get('error')}")
        return answer.get("result")

    async def hearth_entities(self, neighbourhood_entry: str) -> tuple[list[str], list[str]]:
        """Enabled Hearth entity ids: (this home's sensors, the neighbourhood's)."""
        registry = await self.ws("config/entity_registry/list")
        local: list[str] = []
        neighbourhood: list[str] = []
        for entity in registry:
            if (
                entity["platform"] != DOMAIN
                or entity.get("disabled_by")
                or entity.get("entity_category")
            ):
                continue
            side = neighbourhood if entity["config_entry_id"] == neighbourhood_entry else local
            side.append(entity["entity_id"])
        return local, neighbourhood

    async def flow(
        self, base: str, start: dict[str, Any], *steps: dict[str, Any]
    ) -> dict[str, Any]:
        """Walk a config or options flow through `steps`; returns its final answer."""
        result = await self.post(f"/api/config/{base}/flow", start)
        for step in steps:
            if result["type"] not in ("form", "menu"):
                break
            result = await self.post(f"/api/config/{base}/flow/{result['flow_id']}", step)
        return result


def _finished(result: dict[str, Any], what: str, *, reason: str | None = None) -> dict[str, Any]:
    done = (
        result["type"] == "abort" and result.get("reason") == reason
        if reason
        else (result["type"] == "create_entry")
    )
    if not done:
        raise RuntimeError(
            f"{what}: flow stopped at {result.get('step_id') or result.get('reason')}"
            f" {result.get('errors') or ''}"
        )
    return result


async def _configure_hearth(
    api: _Api, root: Path, node: Node, sensors: HouseholdSensors
) -> dict[str, str]:
    """Household 1's sensors and neighbourhood entry, added once; later runs re-point the
    serial entries at this run's pseudo-terminals through the reconfigure flow."""
    ids_file = root / "ha-entries.json"
    ports = {"pms5003": sensors.pms_path, "mhz19b": sensors.mhz19_path}
    if ids_file.exists():
        ids = json.loads(ids_file.read_text())
        for model, port in ports.items():
            result = await api.flow(
                "config_entries", {"handler": DOMAIN, "entry_id": ids[model]}, {"port": port}
            )
            _finished(result, f"re-pointing {model}", reason="reconfigure_successful")
        return ids
    ids = {}
    # A BME280 on the simulated I2C bus; a PMS5003 and an MH-Z19B on pseudo-terminals, which
    # are real serial ports as far as Home Assistant knows.
    result = await api.flow(
        "config_entries",
        {"handler": DOMAIN},
        {"next_step_id": "simulated"},
        {"device": "76:bme280"},
    )
    ids["bme280"] = _finished(result, "simulated BME280")["result"]["entry_id"]
    for model, port in ports.items():
        result = await api.flow(
            "config_entries",
            {"handler": DOMAIN},
            {"next_step_id": "uart"},
            {"port": port, "model": model},
        )
        ids[model] = _finished(result, model)["result"]["entry_id"]
    _LOGGER.info("added household 1's sensors to Home Assistant")
    ids["neighbourhood"] = await _configure_neighbourhood(api, node, ids)
    ids_file.write_text(json.dumps(ids, indent=2) + "\n")
    return ids


# Which local sensor feeds each task, by the unit the options form asks for.
_SOURCE_BY_UNIT = {
    "°C": ("bme280", "temperature"),
    "µg/m³": ("pms5003", "pm2_5"),
    "μg/m³": ("pms5003", "pm2_5"),
    "ppm": ("mhz19b", "carbon_dioxide"),
}


async def _configure_neighbourhood(api: _Api, node: Node, ids: dict[str, str]) -> str:
    """The neighbourhood entry for household 1's node, opted in to every demo task."""
    result = await api.flow(
        "config_entries",
        {"handler": DOMAIN},
        {"next_step_id": "neighbourhood"},
        {"url": node.url, "token": node.token},
    )
    entry_id: str = _finished(result, "neighbourhood")["result"]["entry_id"]
    registry = await api.ws("config/entity_registry/list")
    result = await api.flow("config_entries/options", {"handler": entry_id})
    tasks = [o["value"] for o in _select_options(result, "tasks")]
    result = await api.post(
        f"/api/config/config_entries/options/flow/{result['flow_id']}", {"tasks": tasks}
    )
    while result["type"] == "form" and result["step_id"] == "neighbourhood_task":
        model, word = _SOURCE_BY_UNIT[result["description_placeholders"]["unit"]]
        source = next(
            e["entity_id"]
            for e in registry
            if e["config_entry_id"] == ids[model] and word in e["entity_id"]
        )
        result = await api.post(
            f"/api/config/config_entries/options/flow/{result['flow_id']}", {"entity": source}
        )
    _finished(result, "neighbourhood options")
    _LOGGER.info("household 1 contributes %s to the neighbourhood", ", ".join(tasks))
    return entry_id


def _select_options(form: dict[str, Any], field: str) -> list[dict[str, str]]:
    schema = next(f for f in form["data_schema"] if f["name"] == field)
    return schema["selector"]["select"]["options"]
