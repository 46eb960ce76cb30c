"""Against real ``mpc-backend serve`` processes on 127.0.0.1: no doubles anywhere.

A federation of three nodes (a committee needs three) with a 10 s task that
needs three contributors; two of them belong to simulated Home Assistant
households, each a neighbourhood entry in this Home Assistant with its own source
sensor, and the third household posts its reading to its node's local API. The
HA households' readings go through the whole path (state -> period mean ->
backend -> secret shares -> committee -> co-signed released round -> result
stream -> entity) and the entities must show the statistics of the plaintext
values, computed here independently.
"""

from __future__ import annotations

import asyncio
import bisect
import itertools
import math
import statistics
import time
from collections.abc import Iterator
from typing import Any

import aiohttp
import pytest
from homeassistant.config_entries import ConfigEntryState
from homeassistant.const import ATTR_DEVICE_CLASS, ATTR_UNIT_OF_MEASUREMENT
from homeassistant.core import Event, HomeAssistant
from homeassistant.helpers import entity_registry as er
from homeassistant.setup import async_setup_component

from custom_components.hearth.const import DOMAIN
from custom_components.hearth.neighbourhood.client import BackendClient
from custom_components.hearth.neighbourhood.const import EVENT_RESULT
from custom_components.hearth.neighbourhood.errors import (
    BackendRejected,
    CannotConnect,
    InvalidAuth,
    NotInFederation,
)
from custom_components.hearth.neighbourhood.models import MISBEHAVIOUR_KINDS, REPORT_KINDS
from custom_components.hearth.neighbourhood.runtime import NeighbourhoodConfigEntry
from mpc_backend.api.openapi import openapi_document
from mpc_backend.node import misbehaviour as backend_misbehaviour
from mpc_backend.node.cosign import excluded_doc
from mpc_backend.node.results import INVALID_REPORT_DETAIL
from mpc_backend.protocol import validity
from tests.backend.nodes import Cluster, NodeProcess, free_port

from . import fake_backend
from .conftest import neighbourhood_entry, sockets_while_building, token
from .fake_backend import NODE_ID, OTHER_IDS, FakeBackend, iso

pytestmark = pytest.mark.slow

PERIOD = 10
TASK = "indoor_temperature"
# Short timing so a round closes within seconds of its end (as in tests/e2e).
TIMING = ("--grace", "1", "--takeover", "4", "--peer-timeout", "1.5", "--peer-attempts", "2")
TASK_ARGS = (
    "--metric", "indoor_temperature", "--unit", "°C", "--min", "-20", "--max", "40",
    "--resolution", "0.01", "--stats", "count,mean,stddev,histogram,quantiles",
    "--buckets", "18,20,22,24", "--period", str(PERIOD), "--min-contributors", "3",
)
EDGES = (-20.0, 18.0, 20.0, 22.0, 24.0, 40.0)  # --min, --buckets, --max
CELSIUS = {ATTR_UNIT_OF_MEASUREMENT: "°C", ATTR_DEVICE_CLASS: "temperature"}


@pytest.fixture(scope="module")
def street(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """Three federated nodes with the task, plus "loner", a node in no federation."""
    cluster = Cluster(tmp_path_factory.mktemp("street"))
    try:
        with sockets_while_building():
            for name in ("house0", "house1", "house2", "loner"):
                cluster.add(name, *TIMING)
            for node in cluster.nodes:
                node.start()
            founder = cluster.nodes[0]
            founder.cli("federation", "create", "--name", "Elm Street")
            for node in cluster.nodes[1:3]:
                node.cli("join", founder.cli("invite", "--expires", "10m").stdout.strip())
            task = founder.cli_json("task", "add", *TASK_ARGS)["task"]
            time.sleep(max(0.0, task["first_round_starts_at"] - time.time()))
        yield cluster
    finally:
        cluster.close()


def keys(value: Any) -> Any:
    """The shape of a JSON value: dict keys recursively, first element of lists."""
    if isinstance(value, dict):
        return {k: keys(v) for k, v in value.items()}
    if isinstance(value, list):
        return [keys(value[0])] if value else []
    return type(value).__name__


async def test_client_against_a_real_node(hass: HomeAssistant, street: Cluster,
                                          socket_enabled: None) -> None:
    house0, loner = street.nodes[0], street.nodes[3]
    async with aiohttp.ClientSession() as session:
        status = await BackendClient(session, house0.url + "/", token(house0)).validate()
        assert (status.node_id, status.name) == (house0.node_id, "house0")
        assert (status.federation_name, status.members) == ("Elm Street", 3)
        assert [t.spec.task_id for t in status.tasks] == [TASK]
        spec = status.tasks[0].spec
        assert (spec.unit, spec.low, spec.high, spec.period_s, spec.min_contributors) == (
            "°C", -20.0, 40.0, PERIOD, 3
        )

        with pytest.raises(InvalidAuth):
            await BackendClient(session, house0.url, "wrong-token").validate()
        with pytest.raises(NotInFederation):
            await BackendClient(session, loner.url, token(loner)).validate()
        with pytest.raises(CannotConnect):
            await BackendClient(session, f"http://127.0.0.1:{free_port()}", "x").health()

        client = BackendClient(session, house0.url, token(house0))
        with pytest.raises(BackendRejected) as refused:
            await client.contribute(TASK, 99.0)
        assert (refused.value.status, refused.value.code) == (422, "out_of_range")
        with pytest.raises(BackendRejected) as unknown:
            await client.results("no_such_task")
        assert (unknown.value.status, unknown.value.code) == (404, "unknown_task")


async def test_fake_backend_matches_the_real_api(hass: HomeAssistant, street: Cluster,
                                                 socket_enabled: None) -> None:
    """The double used by the fast tests answers in the real node's shapes."""
    house0, house1, house2 = street.nodes[:3]
    await _sleep_to_next_round()
    code, real_reading = house0.api("POST", "/readings", {"task": TASK, "value": 21.5})
    assert code == 200, real_reading
    for house, value in ((house1, 19.0), (house2, 22.75)):
        code, answer = house.api("POST", "/readings", {"task": TASK, "value": value})
        assert (code, answer.get("round")) == (200, real_reading["round"]), answer
    real_result = await _wait_for_result(house0, TASK, real_reading["round"])
    assert real_result["status"] == "released", real_result
    assert real_result["contributors"] == 3
    assert real_result["statistics"]["mean"] == pytest.approx(
        statistics.fmean([21.5, 19.0, 22.75])
    )
    # Co-signed by at least t + 1 = 2 of its committee (the fake signs with exactly 2).
    assert set(real_result["signed_by"]) <= set(real_result["committee"])
    assert len(real_result["signed_by"]) >= 2

    fake = FakeBackend()
    await fake.start()
    try:
        fake.publish(TASK, 1, [20.0, 21.0, 23.5])
        assert keys(fake.results[0]) == keys(real_result)
        fake_reading = await _post(fake.url, "/readings", fake.token, {"task": TASK, "value": 1})
        assert set(fake_reading) <= set(real_reading)
        _, real_status = house0.api("GET", "/status")
        assert keys(await _get(fake.url, "/status", fake.token)) == keys(real_status)
        # Admitted households are listed when asked, with the fields of any other member.
        fake.households = 1
        _, real_listed = house0.api("GET", "/status?households=1")
        listed = (await _get(fake.url, "/status?households=1", fake.token))["members"]
        assert set(listed[-1]) == set(real_listed["members"][0])
        assert listed[-1]["input_only"] and len(listed) == fake.members + 1
        code, real_refused = house0.api("GET", "/status?households=yes")
        assert code == 400
        assert await _get(fake.url, "/status?households=yes", fake.token) == real_refused
        _, real_health = house0.api("GET", "/health", token="")
        assert keys(await _get(fake.url, "/health", None)) == keys(real_health)
        code, real_error = house0.api("GET", "/status", token="wrong")
        assert code == 401
        assert keys(await _get(fake.url, "/status", "wrong")) == keys(real_error)
    finally:
        await fake.stop()


def test_fake_verdicts_match_the_real_node() -> None:
    """Reports left out of a round: the double names them, and logs them, as a node does.

    (A real node leaves a report out only when a household cheats, which the adversarial
    tests do by patching one; here the pieces the double copies are compared directly.)
    """
    # The kinds a node logs, and the one about a household's report, with its wording.
    assert set(MISBEHAVIOUR_KINDS) == set(backend_misbehaviour.KINDS)
    assert {fake_backend.INVALID_REPORT_KIND} == REPORT_KINDS
    assert fake_backend.INVALID_REPORT_DETAIL == INVALID_REPORT_DETAIL
    # The verdicts a result may carry, as the protocol judges them and the API documents.
    assert fake_backend.VERDICT_INVALID == validity.INVALID
    assert set(fake_backend.VERDICTS) == {
        validity.INVALID, validity.INCONSISTENT, validity.UNCHECKED
    }
    schema = openapi_document()["components"]["schemas"]["Result"]["properties"]["excluded"]
    assert set(schema["items"]["properties"]["verdict"]["enum"]) == set(fake_backend.VERDICTS)
    assert fake_backend.MAX_UNATTRIBUTED == validity.MAX_UNATTRIBUTED
    # The double publishes exactly the sets of left-out reports a node would release.
    households = (NODE_ID, *OTHER_IDS)
    for verdicts in itertools.product((validity.VALID, *fake_backend.VERDICTS), repeat=3):
        excluded = {i: v for i, v in enumerate(verdicts) if v != validity.VALID}
        try:
            expected = validity.excluded_reports(households, verdicts)
        except ValueError:
            with pytest.raises(AssertionError):
                FakeBackend().publish(TASK, 1, [20.0, 21.0, 23.5], excluded=excluded)
            continue
        fake = FakeBackend()
        result = fake.publish(TASK, 1, [20.0, 21.0, 23.5], excluded=excluded)
        assert result["excluded"] == excluded_doc(expected)
        # Only the invalid verdicts are logged, against their households.
        assert fake.misbehaviour is not None
        assert {m["node_id"]: m["kinds"] for m in fake.misbehaviour["members"]} == {
            h: {"invalid_report": 1} for h, v in expected.items() if v == validity.INVALID
        }
    fake = FakeBackend()
    fake.publish(TASK, 7, [20.0, 21.0, 23.5], excluded={1: "unchecked", 2: "invalid"})
    assert fake.misbehaviour == {"total": 1, "members": [
        {"node_id": OTHER_IDS[1], "name": "house2", "count": 1, "kinds": {"invalid_report": 1},
         "last_kind": "invalid_report", "last_detail": f"{TASK} round 7: {INVALID_REPORT_DETAIL}",
         "last_at": iso(8 * 60 + 2)},
    ]}


async def _sleep_to_next_round() -> None:
    """Until just after the next round boundary, so a whole round lies ahead."""
    now = time.time()
    await asyncio.sleep((math.floor(now / PERIOD) + 1) * PERIOD - now + 0.3)


async def _get(url: str, path: str, bearer: str | None) -> Any:
    headers = {"Authorization": f"Bearer {bearer}"} if bearer else {}
    async with aiohttp.ClientSession() as session, session.get(
        f"{url}/api/v1{path}", headers=headers
    ) as resp:
        return await resp.json()


async def _post(url: str, path: str, bearer: str, body: Any) -> Any:
    async with aiohttp.ClientSession() as session, session.post(
        f"{url}/api/v1{path}", json=body, headers={"Authorization": f"Bearer {bearer}"}
    ) as resp:
        return await resp.json()


async def _wait_for_result(node: NodeProcess, task: str, round_id: int) -> dict[str, Any]:
    for _ in range(int(4 * PERIOD / 0.5)):
        _, answer = node.api("GET", f"/results?task={task}&limit=5")
        for result in answer["results"]:
            if result["round"] == round_id:
                return result
        await asyncio.sleep(0.5)
    raise AssertionError(f"no result for {task} round {round_id} within {4 * PERIOD} s")


async def test_three_households_see_their_aggregate(
    hass: HomeAssistant, street: Cluster, socket_enabled: None
) -> None:
    """Three homes' period means come back as the neighbourhood's mean and spread.

    Houses 0 and 1 are Home Assistant entries; house 2 posts its reading to its own
    node's local API in the same round (a task needs three contributors).
    """
    houses = street.nodes[:2]
    house2 = street.nodes[2]
    sources = ["sensor.house0_temperature", "sensor.house1_temperature"]
    hass.states.async_set(sources[0], "20.0", CELSIUS)
    hass.states.async_set(sources[1], "23.0", CELSIUS)
    entries: list[NeighbourhoodConfigEntry] = []
    for node, source in zip(houses, sources, strict=True):
        entries.append(
            neighbourhood_entry(hass, node.url, token(node), node.node_id, {TASK: source})
        )
        # One at a time, so house 0's entities get the plain entity ids (set up together,
        # whichever entry registers first would).
        if len(entries) == 1:
            assert await async_setup_component(hass, DOMAIN, {})
        else:
            assert await hass.config_entries.async_setup(entries[-1].entry_id)
        await hass.async_block_till_done()
    assert [entry.state for entry in entries] == [ConfigEntryState.LOADED] * 2
    events: list[Event] = []
    hass.bus.async_listen(EVENT_RESULT, events.append)

    # Wait until both contributors have begun a fresh round, then give house 0 a second
    # reading in it: its period mean is (20 + 21) / 2, house 1's is 23.
    contributor = entries[0].runtime_data.contributors[TASK]
    now = time.time()
    round_id = math.floor(now / PERIOD)
    if now >= contributor.send_time(round_id).timestamp():
        round_id += 1
    await asyncio.sleep(contributor.send_time(round_id).timestamp() - time.time() + 0.3)
    target_round = round_id + 1
    assert entries[1].runtime_data.contributors[TASK].samples == [23.0]
    hass.states.async_set(sources[0], "21.0", CELSIUS)
    await hass.async_block_till_done()
    assert contributor.samples == [20.0, 21.0]

    # House 2 contributes 18.5 to the same round once it has begun (off the event loop:
    # the node answers after the committee acknowledged its shares).
    await asyncio.sleep(target_round * PERIOD - time.time() + 0.3)
    code, receipt = await hass.async_add_executor_job(
        house2.api, "POST", "/readings", {"task": TASK, "value": 18.5}
    )
    assert (code, receipt.get("round")) == (200, target_round), receipt

    household_means = [statistics.fmean([20.0, 21.0]), 23.0, 18.5]
    node_id = houses[0].node_id
    registry = er.async_get(hass)
    entity = {
        key: registry.async_get_entity_id("sensor", DOMAIN, f"{node_id}_{TASK}_{key}")
        for key in ("mean", "stddev", "contributors", "p50")
    }
    assert entity["mean"] == "sensor.neighbourhood_indoor_temperature_mean"
    assert registry.async_get_entity_id(
        "sensor", DOMAIN, f"{houses[1].node_id}_{TASK}_mean"
    ) == "sensor.neighbourhood_indoor_temperature_mean_2"

    deadline = time.monotonic() + 4 * PERIOD
    while time.monotonic() < deadline:
        state = hass.states.get(entity["contributors"])
        if state is not None and state.attributes.get("round") == target_round:
            break
        await asyncio.sleep(0.25)
    else:
        _, recent = houses[0].api("GET", f"/results?task={TASK}&limit=3")
        raise AssertionError(
            f"round {target_round} was not released within {4 * PERIOD} s: {recent}"
        )

    assert int(hass.states.get(entity["contributors"]).state) == len(household_means)
    mean = float(hass.states.get(entity["mean"]).state)
    assert mean == pytest.approx(statistics.fmean(household_means), abs=0.005)
    stddev = float(hass.states.get(entity["stddev"]).state)
    assert stddev == pytest.approx(statistics.pstdev(household_means), abs=0.005)
    assert hass.states.get(entity["mean"]).attributes[ATTR_UNIT_OF_MEASUREMENT] == "°C"
    histogram = hass.states.get(entity["contributors"]).attributes["histogram"]
    expected_counts = [0] * (len(EDGES) - 1)
    for value in household_means:  # bin j holds EDGES[j] <= value < EDGES[j + 1]
        expected_counts[bisect.bisect_right(EDGES, value) - 1] += 1
    assert expected_counts == [0, 1, 1, 1, 0]  # 18.5, 20.5 and 23.0
    assert [b["count"] for b in histogram] == expected_counts
    assert [(b["low"], b["high"]) for b in histogram] == list(itertools.pairwise(EDGES))
    # The median is interpolated inside its histogram bin: rank 0.5 * 3 = 1.5, one value
    # lies below 20 and one in [20, 22), so it is halfway through that bin.
    assert float(hass.states.get(entity["p50"]).state) == pytest.approx(21.0, abs=0.005)
    # Each entry hears of the result from its own node, so house 1's event may come a
    # moment after house 0's entities show it.
    while time.monotonic() < deadline:
        if len([e for e in events if e.data["round"] == target_round]) >= len(entries):
            break
        await asyncio.sleep(0.25)
    released = [e.data for e in events if e.data["round"] == target_round]
    assert len(released) == 2  # one per household entry, both for the same round
    assert {e["config_entry_id"] for e in released} == {entry.entry_id for entry in entries}
    assert released[0]["statistics"]["mean"] == pytest.approx(mean, abs=0.005)
    assert released[0]["contributors"] == len(household_means)

    for entry in entries:
        assert await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()


def test_cluster_logs_are_clean(street: Cluster) -> None:
    """No node logged a traceback while Home Assistant used it."""
    for node in street.nodes:
        assert "Traceback" not in node.log_text(), node.log_text()[-3000:]

