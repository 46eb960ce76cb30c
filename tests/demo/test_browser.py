"""A user sets Hearth's neighbourhood up in Home Assistant's real frontend, in headless Chromium.

Real pieces: Home Assistant (the Python 3.14 environment, started as scripts/develop starts it),
its frontend, Debian's chromium driven by Playwright, a Mosquitto relay broker set up by
`mpc-backend relay init --plain` (hearth_dev/relay.py, as the demo runs it, on a free loopback
port), household 1's node run by the app's own start script (`python -m mpc_backend.supervisor`,
as the Supervisor runs the app) and two neighbours' nodes (`mpc-backend serve`), all host
processes on loopback.

The app node walks the path a Home Assistant OS founder walks. It listens on every interface
(`--listen 0.0.0.0:PORT`, as in the container; reached here at 127.0.0.1:PORT) with no public
URL, so it cannot found a neighbourhood over direct HTTP: the test checks the node refuses that
(422 `no_public_url`). The relay broker is in the app's options, as the founder enters it on
the app's Configuration tab: options.json holds `relay_url`, `relay_username` and
`relay_password` (and `relay_ca` when the broker has one) from the relay's admin file, and the
start script writes relay-admin.json from them.

Discovery is emulated, and only discovery: the Supervisor and Home Assistant's hassio
integration cannot run here. The app's start script announces the node to a fake Supervisor
(tests/backend/fake_supervisor.py: an aiohttp server on loopback with the Supervisor's
`POST /discovery`, `GET /discovery`, `GET /addons/self/info` and `GET /addons/<slug>/info` in
the Supervisor's shapes), and a test-only custom component (tests/demo/supervisor_stub, linked
into this Home Assistant's custom_components only) reads the pending discoveries from it at
start and starts each flow the way the hassio integration does
(homeassistant/components/hassio/discovery.py): `discovery_flow.async_create_flow(hass,
service, context={"source": SOURCE_HASSIO}, data=HassioServiceInfo(config=..., name=...,
slug=..., uuid=...))`.

In the browser the user logs in and confirms the discovered Hearth node under Settings →
Devices & services. The create form shows the relay URL from the app's options with empty
credentials (checked); the user types only the neighbourhood's name. Afterwards the node's
status shows its relay connected to that broker. The user creates an invite per neighbour from
the entry's options and copies its token from the dialog; each neighbour joins with its token
(the CLI, on their own hubs; the invite carries their relay account, so they give no broker of
their own); the founder proposes a task (CLI: the options flow's propose step counts rounds in
minutes, too long for a test); the user opts a sensor in through the options. The
neighbourhood's aggregate entities appear, and the first released mean equals the mean of the
three households' values.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import re
import secrets
import shutil
import statistics
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from playwright.async_api import Page, async_playwright, expect

from hearth_dev.backends import Node, add_tasks, join, serve_nodes, wait_healthy
from hearth_dev.home_assistant import (
    DEMO_PASSWORD,
    DEMO_USER,
    Api,
    ha_url,
    launch_home_assistant,
    long_lived_token,
    prepare_config_dir,
    relay_fields,
    wait_until_running,
    wait_until_up,
)
from hearth_dev.processes import Supervisor
from hearth_dev.relay import start_relay
from tests.backend.fake_supervisor import FakeSupervisor
from tests.backend.nodes import free_port

pytestmark = pytest.mark.relay  # Debian's mosquitto

REPO = Path(__file__).resolve().parents[2]
# Ports apart from scripts/develop's (8123, 8731+), so a running demo does not collide.
HA_PORT = 8125
BASE_PORT = 8761
PERIOD_S = 20
NEIGHBOURHOOD = "Browser street"
TASK = {
    "--metric": "indoor_temperature",
    "--unit": "°C",
    "--min": "5",
    "--max": "35",
    "--resolution": "0.01",
    "--stats": "count,mean",
}
RESOLUTION = 0.01
# The sensor household 1 opts in: a template sensor with a fixed state, so its round mean
# is known; the neighbours send fixed values too.
LIVING_ROOM = 21.37
NEIGHBOURS = (19.84, 23.05)
SENSOR = "sensor.living_room_temperature"
RESULT_TIMEOUT_S = 100


def _extra_yaml(fake: FakeSupervisor) -> str:
    return f"""
supervisor_stub:
  url: {fake.url}
  token: {fake.core_token}

template:
  - sensor:
      - name: Living room temperature
        unique_id: browser_test_living_room_temperature
        unit_of_measurement: "°C"
        device_class: temperature
        state_class: measurement
        state: "{LIVING_ROOM}"
"""


def start_app(
    supervisor: Supervisor, root: Path, fake: FakeSupervisor, relay: dict[str, str]
) -> Node:
    """Household 1's node, started by the app's start script as the Supervisor starts it
    (options.json in the data dir, SUPERVISOR_TOKEN in the environment), listening on every
    interface as in the app's container."""
    data = root / "app"
    data.mkdir(parents=True)
    options = {"name": "Household 1", "log_level": "info", **relay}
    (data / "options.json").write_text(json.dumps(options))
    node = Node(0, data / "node", BASE_PORT)
    log = root / "logs" / "app.log"
    proc = supervisor.start(
        "app",
        [sys.executable, "-m", "mpc_backend.supervisor", "--data", str(data),
         "--listen", f"0.0.0.0:{node.port}", "--supervisor-url", fake.url],
        log,
        env={**os.environ, "SUPERVISOR_TOKEN": fake.token},
    )
    wait_healthy(node, proc, log, timeout=60)
    deadline = time.monotonic() + 30
    while not fake.messages:
        assert proc.poll() is None, log.read_text()
        assert time.monotonic() < deadline, f"the app announced nothing: {log.read_text()}"
        time.sleep(0.2)
    return node


@dataclass
class Env:
    api: Api
    url: str
    app: Node
    neighbours: list[Node]
    fake: FakeSupervisor
    relay_url: str


@contextlib.asynccontextmanager
async def environment(root: Path) -> AsyncIterator[Env]:
    supervisor = Supervisor()
    url = ha_url(HA_PORT)
    relay_port = free_port()
    with FakeSupervisor(token=secrets.token_hex(16), core_token=secrets.token_hex(16)) as fake:
        try:
            admin_file = await asyncio.to_thread(start_relay, supervisor, root, relay_port)
            relay = relay_fields(admin_file)
            app = await asyncio.to_thread(start_app, supervisor, root, fake, relay)
            neighbours = [Node(i, root / f"node-{i + 1}", BASE_PORT) for i in (1, 2)]
            await asyncio.to_thread(serve_nodes, supervisor, root, neighbours)
            config = prepare_config_dir(
                root,
                port=HA_PORT,
                components={"supervisor_stub": REPO / "tests" / "demo" / "supervisor_stub"},
                extra_yaml=_extra_yaml(fake),
            )
            launch_home_assistant(supervisor, root, config)
            async with aiohttp.ClientSession() as session:
                await wait_until_up(session, supervisor, url)
                token = await long_lived_token(session, root, url)
                api = Api(session, token, url)
                await wait_until_running(api, supervisor)
                yield Env(api, url, app, neighbours, fake, f"mqtt://127.0.0.1:{relay_port}")
        finally:
            await asyncio.to_thread(supervisor.stop_all)


async def log_in(page: Page, url: str) -> None:
    """The login page, as a user types it (the account onboarding made)."""
    await page.goto(f"{url}/")
    await page.get_by_role("textbox", name="Username").fill(DEMO_USER)
    await page.get_by_role("textbox", name="Password").fill(DEMO_PASSWORD)
    await page.get_by_role("button", name="Log in").click()
    await page.wait_for_url(lambda address: "auth" not in address)


async def add_discovered_node(page: Page, url: str, relay_url: str) -> None:
    """Settings → Devices & services: the discovered node's Add, confirm, start a neighbourhood
    through the relay broker the app's options name (prefilled; the user types only a name)."""
    await page.goto(f"{url}/config/integrations/dashboard")
    card = page.locator("ha-config-flow-card").filter(has_text="Hearth")
    # The Supervisor's discovery reaches Home Assistant on its own schedule after start.
    await expect(card).to_contain_text("Household 1", timeout=60_000)
    await card.get_by_role("button", name="Add").click()
    await expect(page.get_by_text("Hearth node found")).to_be_visible()
    await page.get_by_role("button", name="Submit").click()
    await page.get_by_text("Start a new neighbourhood").click()
    await expect(page.get_by_role("textbox", name="Relay broker URL")).to_have_value(relay_url)
    await expect(page.get_by_role("textbox", name="Broker admin username")).to_have_value("")
    await expect(page.get_by_role("textbox", name="Broker admin password")).to_have_value("")
    await page.get_by_role("textbox", name="Neighbourhood name").fill(NEIGHBOURHOOD)
    await page.get_by_role("button", name="Submit").click()
    await page.get_by_role("button", name="Skip and finish").click()
    await expect(page.get_by_role("dialog")).to_have_count(0)


async def open_options(page: Page, url: str, choice: str) -> None:
    """The neighbourhood entry's Configure, then one item of its menu."""
    await page.goto(f"{url}/config/integrations/integration/hearth")
    await page.get_by_role("button", name="Configure").click()
    await page.get_by_text(choice, exact=True).click()


async def finish_options(page: Page) -> None:
    await expect(page.get_by_text("Options successfully saved.")).to_be_visible()
    await page.get_by_role("button", name="Finish").click()
    await expect(page.get_by_role("dialog")).to_have_count(0)


async def invite(page: Page, url: str) -> str:
    """Configure → Invite a household → Submit; the token as the dialog shows it."""
    await open_options(page, url, "Invite a household")
    await expect(page.get_by_role("spinbutton", name="Valid for")).to_have_value("24")
    await page.get_by_role("button", name="Submit").click()
    await expect(page.get_by_text("Invite ready.")).to_be_visible()
    shown = page.locator("code").filter(has_text="hearth-invite-v1.")
    token = (await shown.text_content() or "").strip()
    await page.locator("ha-dialog-footer").get_by_role("button", name="Close").click()
    await expect(page.get_by_role("dialog")).to_have_count(0)
    return token


async def opt_in(page: Page, url: str) -> None:
    """Configure → Choose what this home shares → the task → its sensor."""
    await open_options(page, url, "Choose what this home shares")
    await page.get_by_text("Indoor temperature (°C)", exact=True).click()
    await expect(page.get_by_role("checkbox", name="Indoor temperature (°C)")).to_be_checked()
    await page.get_by_role("button", name="Submit").click()
    await expect(page.get_by_text("Sensor for Indoor temperature")).to_be_visible()
    await page.get_by_text("Select an entity").click()
    await page.get_by_text("Living room temperature", exact=True).click()
    await page.get_by_role("button", name="Submit").click()
    await finish_options(page)


async def refuses_direct_founding(node: Node) -> dict[str, Any]:
    """What the app node answers a direct-HTTP founding (no relay): the path it cannot walk."""
    headers = {"Authorization": f"Bearer {node.token}"}
    async with aiohttp.ClientSession(headers=headers) as session, session.post(
        f"{node.url}/api/v1/federation", json={"name": NEIGHBOURHOOD}
    ) as response:
        return {"status": response.status, **await response.json()}


async def node_status(node: Node) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {node.token}"}
    async with aiohttp.ClientSession(headers=headers) as session, session.get(
        f"{node.url}/api/v1/status"
    ) as response:
        assert response.status == 200, await response.text()
        return await response.json()


async def contribute_every_round(node: Node, value: float) -> None:
    """A neighbour's hub sending its reading once per round, as its Home Assistant would."""
    sent: set[int] = set()
    headers = {"Authorization": f"Bearer {node.token}"}
    async with aiohttp.ClientSession(headers=headers) as session:
        while True:
            round_id = int(time.time() // PERIOD_S)
            if round_id not in sent:
                body = {"task": "indoor_temperature", "value": value}
                async with session.post(f"{node.url}/api/v1/readings", json=body) as response:
                    if response.status < 300:  # before the task's first round it refuses
                        sent.add(round_id)
            await asyncio.sleep(1)


async def numeric_states(api: Api, entity_ids: tuple[str, ...]) -> dict[str, float]:
    """Those of `entity_ids` whose state is a number, within RESULT_TIMEOUT_S of each other."""
    deadline = time.monotonic() + RESULT_TIMEOUT_S
    while True:
        states = {s["entity_id"]: s["state"] for s in await api.get("/api/states")}
        values = {}
        for entity_id in entity_ids:
            with contextlib.suppress(KeyError, ValueError):
                values[entity_id] = float(states[entity_id])
        if len(values) == len(entity_ids):
            return values
        assert time.monotonic() < deadline, {e: states.get(e) for e in entity_ids}
        await asyncio.sleep(2)


MEAN = "sensor.neighbourhood_indoor_temperature_mean"
CONTRIBUTORS = "sensor.neighbourhood_indoor_temperature_contributors"


async def test_a_user_sets_up_the_neighbourhood_in_the_browser(
    root: Path, tmp_path: Path
) -> None:
    chromium = shutil.which("chromium")
    assert chromium, "Debian's chromium is missing: run scripts/setup"
    started = time.monotonic()
    async with environment(root) as env, async_playwright() as playwright:
        before = await node_status(env.app)
        assert before["identity"]["relay_admin"] == {"url": env.relay_url}, before["identity"]
        refused = await refuses_direct_founding(env.app)
        assert refused["status"] == 422, refused
        assert refused["error"]["code"] == "no_public_url", refused
        browser = await playwright.chromium.launch(
            executable_path=chromium,
            args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
        )
        page = await browser.new_page(viewport={"width": 1280, "height": 900})
        page.set_default_timeout(20_000)
        neighbours: list[asyncio.Task[None]] = []
        try:
            await log_in(page, env.url)
            await add_discovered_node(page, env.url, env.relay_url)
            entries = await env.api.ws("config_entries/get", domain="hearth")
            assert [(e["title"], e["source"], e["state"]) for e in entries] == [
                (f"{NEIGHBOURHOOD} (Household 1)", "hassio", "loaded")
            ]
            status = await node_status(env.app)
            assert status["federation"]["name"] == NEIGHBOURHOOD
            assert status["relay"]["url"] == env.relay_url, status["relay"]
            assert status["relay"]["connected"] is True, status["relay"]
            # One invite per household: each works once.
            for node in env.neighbours:
                token = await invite(page, env.url)
                assert re.fullmatch(r"hearth-invite-v1\.[\w-]+", token), token
                await asyncio.to_thread(join, node, token)
                joined = await node_status(node)
                assert joined["relay"]["url"] == env.relay_url, joined["relay"]
                assert joined["relay"]["connected"] is True, joined["relay"]
            await asyncio.to_thread(add_tasks, env.app, PERIOD_S, 3, (TASK,))
            neighbours = [
                asyncio.create_task(contribute_every_round(node, value))
                for node, value in zip(env.neighbours, NEIGHBOURS, strict=True)
            ]
            await opt_in(page, env.url)
        except Exception:
            await page.screenshot(path=tmp_path / "failure.png")
            (tmp_path / "failure.html").write_text(await page.content())
            raise
        finally:
            await browser.close()
        try:
            # The entry reloaded with the contribution; the aggregates are there and the
            # first released round's mean is the three households' mean.
            states = {s["entity_id"] for s in await env.api.get("/api/states")}
            assert {MEAN, CONTRIBUTORS} <= states, sorted(s for s in states if "neighbourhood" in s)
            values = await numeric_states(env.api, (MEAN, CONTRIBUTORS))
        finally:
            for task in neighbours:
                task.cancel()
        expected = statistics.fmean((LIVING_ROOM, *NEIGHBOURS))
        assert values[CONTRIBUTORS] == 3
        assert math.isclose(values[MEAN], expected, abs_tol=RESOLUTION / 2), (values, expected)
    print(f"browser test took {time.monotonic() - started:.0f} s")
