"""Fixtures for the neighbourhood entry: a backend double on loopback, entries for it, and
helpers for the tests against real ``mpc-backend serve`` processes."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest
import pytest_socket
from homeassistant.core import HomeAssistant
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.hearth.const import CONF_KIND, DOMAIN
from custom_components.hearth.neighbourhood.const import (
    CONF_CONTRIBUTIONS,
    CONF_TOKEN,
    CONF_URL,
    KIND_NEIGHBOURHOOD,
)
from tests.backend.nodes import NodeProcess

from .fake_backend import FakeBackend


@pytest.fixture
async def backend(socket_enabled: None) -> AsyncIterator[FakeBackend]:
    """The backend double, listening on a free loopback port (sockets are real)."""
    fake = FakeBackend()
    await fake.start()
    yield fake
    await fake.stop()


def neighbourhood_entry(
    hass: HomeAssistant,
    url: str,
    token: str,
    node_id: str,
    contributions: dict[str, str] | None = None,
    **extra: Any,
) -> MockConfigEntry:
    """A neighbourhood entry added to hass (not yet set up)."""
    entry = MockConfigEntry(
        domain=DOMAIN,
        title="Elm Street (house0)",
        unique_id=node_id,
        data={CONF_KIND: KIND_NEIGHBOURHOOD, CONF_URL: url, CONF_TOKEN: token},
        options={CONF_CONTRIBUTIONS: contributions or {}},
        **extra,
    )
    entry.add_to_hass(hass)
    return entry


@pytest.fixture
def entry(hass: HomeAssistant, backend: FakeBackend) -> MockConfigEntry:
    """A neighbourhood entry for the double, contributing nothing."""
    return neighbourhood_entry(hass, backend.url, backend.token, backend.node_id)


async def wait_for(hass: HomeAssistant, predicate: Callable[[], Any], timeout: float = 5.0) -> Any:
    """Let the loop run (network I/O included) until ``predicate()`` is truthy."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not (value := predicate()):
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        await asyncio.sleep(0.02)
        await hass.async_block_till_done()
    return value


@pytest.fixture
async def loaded(
    hass: HomeAssistant, entry: MockConfigEntry, backend: FakeBackend
) -> MockConfigEntry:
    """The double's entry, set up, with its result stream connected."""
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    await wait_for(hass, lambda: backend.open_streams)
    return entry


@contextlib.contextmanager
def sockets_while_building() -> Iterator[None]:
    """HA's harness blocks sockets; starting real nodes (a module fixture) needs some."""
    guarded = socket.socket
    pytest_socket.enable_socket()
    try:
        yield
    finally:
        socket.socket = guarded  # type: ignore[misc]


def token(node: NodeProcess) -> str:
    """A real node's local API token, as ``mpc-backend token`` prints it."""
    return node.cli("token").stdout.strip()

