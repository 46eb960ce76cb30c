"""Entry setup and unload, shared buses, repair issues."""

from __future__ import annotations

import errno

from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.helpers import issue_registry as ir
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.hearth.bus import bus_registry
from custom_components.hearth.const import CONF_KIND, DOMAIN
from custom_components.hearth.emulators.bme280 import Bme280Emulator
from custom_components.hearth.emulators.sht3x import Sht3xEmulator

from .conftest import FakeI2CNodes, i2c_entry


async def test_two_chips_share_one_bus_handle(hass: HomeAssistant, i2c_nodes: FakeI2CNodes) -> None:
    """Entries on one bus share the open node and its lock; the last unload closes it."""
    path = i2c_nodes.add(1)
    i2c_nodes.buses[path].attach(0x76, Bme280Emulator())
    i2c_nodes.buses[path].attach(0x44, Sht3xEmulator())
    first = i2c_entry(hass, "bme280", 0x76, bus=path)
    second = i2c_entry(hass, "sht3x", 0x44, bus=path)
    assert await hass.config_entries.async_setup(first.entry_id)  # sets up both
    await hass.async_block_till_done()
    assert second.state is ConfigEntryState.LOADED
    assert i2c_nodes.opened == [path]
    shared = bus_registry(hass).buses[path]
    assert shared.users == 2

    assert await hass.config_entries.async_unload(first.entry_id)
    assert not i2c_nodes.handles[0].closed
    assert await hass.config_entries.async_unload(second.entry_id)
    assert i2c_nodes.handles[0].closed
    assert path not in bus_registry(hass).buses


async def test_permission_denied_raises_repair_issue(
    hass: HomeAssistant, i2c_nodes: FakeI2CNodes
) -> None:
    """Setup retries, and a repair issue says how to grant access; fixed, it goes away."""
    path = i2c_nodes.add(1)
    i2c_nodes.buses[path].attach(0x76, Bme280Emulator())
    i2c_nodes.errors[path] = PermissionError(errno.EACCES, "Permission denied", path)
    entry = i2c_entry(hass, "bme280", 0x76, bus=path)
    await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.SETUP_RETRY
    assert entry.reason is not None and "not allowed to open" in entry.reason

    issue = ir.async_get(hass).async_get_issue(DOMAIN, f"device_node_{entry.entry_id}")
    assert issue is not None
    assert issue.translation_key == "node_permission"
    assert issue.severity is ir.IssueSeverity.ERROR
    assert issue.translation_placeholders == {"title": entry.title, "path": path}

    del i2c_nodes.errors[path]
    await hass.config_entries.async_reload(entry.entry_id)
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.LOADED
    assert ir.async_get(hass).async_get_issue(DOMAIN, f"device_node_{entry.entry_id}") is None


async def test_removing_an_entry_withdraws_its_issue(
    hass: HomeAssistant, i2c_nodes: FakeI2CNodes
) -> None:
    """A bus that vanished for good: deleting the entry deletes the issue."""
    entry = i2c_entry(hass, "bme280", 0x76, bus=str(i2c_nodes.directory / "dev" / "i2c-9"))
    await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    issue_id = f"device_node_{entry.entry_id}"
    assert ir.async_get(hass).async_get_issue(DOMAIN, issue_id).translation_key == "node_missing"
    await hass.config_entries.async_remove(entry.entry_id)
    assert ir.async_get(hass).async_get_issue(DOMAIN, issue_id) is None


async def test_unknown_entry_kind_is_an_error(hass: HomeAssistant) -> None:
    """An entry from a newer Hearth fails setup with a message, not a KeyError."""
    entry = MockConfigEntry(domain=DOMAIN, data={CONF_KIND: "teleporter"})
    entry.add_to_hass(hass)
    await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.SETUP_ERROR
    assert "teleporter" in str(entry.reason)


async def test_chip_missing_at_setup_retries(hass: HomeAssistant, simulated) -> None:
    """Nothing at the address when Home Assistant starts: retry later, no repair issue."""
    entry = i2c_entry(hass, "bme280", 0x77)
    await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.SETUP_RETRY
    assert ir.async_get(hass).async_get_issue(DOMAIN, f"device_node_{entry.entry_id}") is None
