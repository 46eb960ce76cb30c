"""Every path through the config flow, against emulated chips and real pseudo-terminals."""

from __future__ import annotations

import errno
from pathlib import Path
from unittest.mock import patch

import pytest
from homeassistant.config_entries import SOURCE_USER, ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType

from custom_components.hearth import serial_port
from custom_components.hearth.config_flow import _entry_title
from custom_components.hearth.const import (
    CONF_ADDRESS,
    CONF_BUS,
    CONF_KIND,
    CONF_MAX_CURRENT,
    CONF_MODEL,
    CONF_PORT,
    CONF_SHUNT_OHMS,
    DOMAIN,
    KIND_I2C,
    KIND_UART,
    SIMULATED_BUS,
)
from custom_components.hearth.emulators.bme280 import Bme280Emulator
from custom_components.hearth.emulators.mhz19 import MHZ19BEmulator
from custom_components.hearth.emulators.pms5003 import PMS5003Emulator
from custom_components.hearth.emulators.sht3x import Sht3xEmulator
from custom_components.hearth.simulation import DEMO_ADDRESSES, SimulatedBus

from .conftest import FakeI2CNodes, PluggedPort, i2c_entry, uart_entry

pytestmark = pytest.mark.usefixtures("simulated")


async def _start(hass: HomeAssistant, menu_choice: str) -> dict:
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    assert result["type"] is FlowResultType.MENU
    assert result["menu_options"] == ["i2c", "uart", "simulated", "neighbourhood"]
    return await hass.config_entries.flow.async_configure(
        result["flow_id"], {"next_step_id": menu_choice}
    )


async def test_simulated_bus_lists_every_demo_chip(hass: HomeAssistant) -> None:
    """The scan identifies each emulated chip by its ID register at its address."""
    result = await _start(hass, "simulated")
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "i2c_device"
    options = result["data_schema"].schema["device"].config["options"]
    values = {option["value"] for option in options}
    expected = {f"{address:02x}:{model}" for model, address in DEMO_ADDRESSES.items()}
    assert values == expected | {"manual"}


async def test_simulated_bme280_creates_entry(hass: HomeAssistant) -> None:
    """Picking a found chip tests it and creates one entry per physical device."""
    result = await _start(hass, "simulated")
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"device": "76:bme280"}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["title"] == "BME280 0x76 on simulated bus"
    assert result["data"] == {
        CONF_KIND: KIND_I2C,
        CONF_BUS: SIMULATED_BUS,
        CONF_ADDRESS: 0x76,
        CONF_MODEL: "bme280",
    }
    entry = result["result"]
    assert entry.unique_id == "simulated@0x76"
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.LOADED


async def test_simulated_ina219_asks_for_its_shunt(hass: HomeAssistant) -> None:
    """The INA219 step validates the shunt against the 320 mV range, then tests the chip."""
    result = await _start(hass, "simulated")
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"device": "40:ina219"}
    )
    assert result["step_id"] == "ina219"
    # 10 A through 0.1 ohm would drop 1 V across the shunt.
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_SHUNT_OHMS: 0.1, CONF_MAX_CURRENT: 10.0}
    )
    assert result["errors"] == {"base": "invalid_shunt"}
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_SHUNT_OHMS: 0.1, CONF_MAX_CURRENT: 3.2}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"][CONF_SHUNT_OHMS] == 0.1
    assert result["data"][CONF_MAX_CURRENT] == 3.2


async def test_already_configured_aborts(hass: HomeAssistant) -> None:
    """A second flow for the same bus and address aborts."""
    i2c_entry(hass, "bme280", 0x76)
    result = await _start(hass, "simulated")
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"device": "76:bme280"}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"


async def test_manual_choice_from_the_scan(hass: HomeAssistant) -> None:
    """'Other' leads to the manual form, which tests what is entered."""
    result = await _start(hass, "simulated")
    result = await hass.config_entries.flow.async_configure(result["flow_id"], {"device": "manual"})
    assert result["step_id"] == "i2c_manual"
    assert result["errors"] == {}
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_ADDRESS: "0x44", CONF_MODEL: "sht3x"}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"][CONF_ADDRESS] == 0x44


# Real buses, through the smbus2 seam ---------------------------------------------


async def test_no_i2c_bus_aborts(hass: HomeAssistant, i2c_nodes: FakeI2CNodes) -> None:
    """Without /dev/i2c-* the flow says how to enable I2C instead of showing an empty list."""
    result = await _start(hass, "i2c")
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "no_i2c_bus"


async def test_bus_list_shows_adapter_names(hass: HomeAssistant, i2c_nodes: FakeI2CNodes) -> None:
    """Buses are sorted by number (i2c-10 after i2c-2) and labelled with their adapter."""
    for number in (10, 1, 2):
        i2c_nodes.add(number, adapter=f"adapter {number}")
    i2c_nodes.add(3, adapter=None)
    result = await _start(hass, "i2c")
    options = result["data_schema"].schema[CONF_BUS].config["options"]
    assert [o["label"].rsplit("/", 1)[1] for o in options] == [
        "i2c-1 (adapter 1)",
        "i2c-2 (adapter 2)",
        "i2c-3",
        "i2c-10 (adapter 10)",
    ]


@pytest.mark.parametrize(
    ("error", "key"),
    [
        (PermissionError(errno.EACCES, "Permission denied"), "node_permission"),
        (FileNotFoundError(errno.ENOENT, "No such file or directory"), "node_missing"),
        (OSError(errno.EIO, "Input/output error"), "io_error"),
    ],
)
async def test_bus_open_failures(
    hass: HomeAssistant, i2c_nodes: FakeI2CNodes, error: OSError, key: str
) -> None:
    """Opening /dev/i2c-1 fails the way the kernel reports it; the form says what to do."""
    path = i2c_nodes.add(1)
    i2c_nodes.errors[path] = error
    result = await _start(hass, "i2c")
    result = await hass.config_entries.flow.async_configure(result["flow_id"], {CONF_BUS: path})
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "i2c"
    assert result["errors"] == {"base": key}


async def test_real_bus_scan_and_create(hass: HomeAssistant, i2c_nodes: FakeI2CNodes) -> None:
    """A BME280 on a real bus is found, tested and stored with its bus path."""
    path = i2c_nodes.add(1)
    i2c_nodes.buses[path].attach(0x77, Bme280Emulator())
    result = await _start(hass, "i2c")
    result = await hass.config_entries.flow.async_configure(result["flow_id"], {CONF_BUS: path})
    assert result["step_id"] == "i2c_device"
    assert result["description_placeholders"] == {"bus": "i2c-1", "unknown": "-"}
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"device": "77:bme280"}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["title"] == "BME280 0x77 on i2c-1"
    assert result["data"][CONF_BUS] == path
    assert result["result"].unique_id == f"{path}@0x77"


async def test_nothing_found_then_no_ack(hass: HomeAssistant, i2c_nodes: FakeI2CNodes) -> None:
    """An empty bus leads to the manual form; an address nobody answers is 'no_ack'."""
    path = i2c_nodes.add(1)
    result = await _start(hass, "i2c")
    result = await hass.config_entries.flow.async_configure(result["flow_id"], {CONF_BUS: path})
    assert result["step_id"] == "i2c_manual"
    assert result["errors"] == {"base": "nothing_found"}
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_ADDRESS: "76", CONF_MODEL: "bme280"}
    )
    assert result["errors"] == {"base": "no_ack"}


async def test_wrong_chip_id(hass: HomeAssistant, i2c_nodes: FakeI2CNodes) -> None:
    """A BMP280 (chip id 0x58) answers at 0x76: the scan lists it as unknown, a BME280 fails."""
    path = i2c_nodes.add(1)
    i2c_nodes.buses[path].attach(0x76, Bme280Emulator(chip_id=0x58))
    result = await _start(hass, "i2c")
    result = await hass.config_entries.flow.async_configure(result["flow_id"], {CONF_BUS: path})
    assert result["step_id"] == "i2c_manual"
    assert result["description_placeholders"]["unknown"] == "0x76"
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_ADDRESS: "0x76", CONF_MODEL: "bme280"}
    )
    assert result["errors"] == {"base": "wrong_chip"}


async def test_crc_failure(hass: HomeAssistant, i2c_nodes: FakeI2CNodes) -> None:
    """Every read of an SHT3x arrives with bad CRCs: after the retries, 'checksum'."""
    path = i2c_nodes.add(1)
    bus = i2c_nodes.buses[path]
    bus.attach(0x44, Sht3xEmulator())
    result = await _start(hass, "i2c")
    result = await hass.config_entries.flow.async_configure(result["flow_id"], {CONF_BUS: path})
    assert result["step_id"] == "i2c_device"
    bus.corrupt_next_reads(1000)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"device": "44:sht3x"}
    )
    assert result["step_id"] == "i2c_device"
    assert result["errors"] == {"base": "checksum"}
    bus.corrupt_next_reads(0)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"device": "44:sht3x"}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY


async def test_ina219_that_does_not_answer(hass: HomeAssistant, i2c_nodes: FakeI2CNodes) -> None:
    """The shunt is valid but nothing is at the address: the INA219 form says 'no_ack'."""
    path = i2c_nodes.add(1)
    result = await _start(hass, "i2c")
    result = await hass.config_entries.flow.async_configure(result["flow_id"], {CONF_BUS: path})
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_ADDRESS: "41", CONF_MODEL: "ina219"}
    )
    assert result["step_id"] == "ina219"
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_SHUNT_OHMS: 0.01, CONF_MAX_CURRENT: 20.0}
    )
    assert result["step_id"] == "ina219"
    assert result["errors"] == {"base": "no_ack"}


@pytest.mark.parametrize(
    ("address", "model", "field_error"),
    [
        ("zz", "bme280", "invalid_address"),
        ("0x80", "bme280", "invalid_address"),
        ("0x40", "bme280", "address_not_possible"),
    ],
)
async def test_manual_address_validation(
    hass: HomeAssistant, i2c_nodes: FakeI2CNodes, address: str, model: str, field_error: str
) -> None:
    """Addresses are 7-bit hexadecimal, and must be one the chip can have."""
    path = i2c_nodes.add(1)
    result = await _start(hass, "i2c")
    result = await hass.config_entries.flow.async_configure(result["flow_id"], {CONF_BUS: path})
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_ADDRESS: address, CONF_MODEL: model}
    )
    assert result["errors"] == {CONF_ADDRESS: field_error}
    assert i2c_nodes.opened == [path]  # invalid input never touches the bus again


# UART ------------------------------------------------------------------------------


async def test_uart_pms5003_on_a_pty(hass: HomeAssistant, plugged) -> None:
    """A typed port path works; one valid frame is enough to create the entry."""
    port: PluggedPort = plugged(PMS5003Emulator(interval=0.05))
    await port.plug()
    result = await _start(hass, "uart")
    assert result["step_id"] == "uart"
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_PORT: str(port.link), CONF_MODEL: "pms5003"}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"] == {
        CONF_KIND: KIND_UART,
        CONF_PORT: str(port.link),
        CONF_MODEL: "pms5003",
    }
    assert result["title"] == f"PMS5003 on {port.link.name}"
    assert result["result"].unique_id == str(port.link)
    await hass.async_block_till_done()
    await hass.config_entries.async_unload(result["result"].entry_id)


async def test_uart_port_is_stored_by_id(
    hass: HomeAssistant, plugged, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A /dev/ttyUSB-style path is replaced by the by-id link that points at it."""
    monkeypatch.setattr(serial_port, "BY_ID_DIR", tmp_path)
    port: PluggedPort = plugged(MHZ19BEmulator())
    await port.plug()
    result = await _start(hass, "uart")
    options = result["data_schema"].schema[CONF_PORT].config
    assert options["custom_value"] is True
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_PORT: port.emulator.path, CONF_MODEL: "mhz19b"}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"][CONF_PORT] == str(port.link)
    assert result["result"].unique_id == str(port.link)
    await hass.async_block_till_done()
    await hass.config_entries.async_unload(result["result"].entry_id)


async def test_uart_io_error(hass: HomeAssistant, plugged) -> None:
    """An unexpected OSError on open is reported as a communication failure."""
    port: PluggedPort = plugged(MHZ19BEmulator())
    await port.plug()
    with patch("serialx.open_serial_connection", side_effect=OSError(errno.EIO, "I/O error")):
        result = await _start(hass, "uart")
        result = await hass.config_entries.flow.async_configure(
            result["flow_id"], {CONF_PORT: str(port.link), CONF_MODEL: "mhz19b"}
        )
    assert result["errors"] == {"base": "io_error"}


async def test_uart_already_configured(hass: HomeAssistant, plugged) -> None:
    """The same port twice aborts before the port is opened."""
    port: PluggedPort = plugged(MHZ19BEmulator())
    await port.plug()
    uart_entry(hass, "mhz19b", str(port.link))
    result = await _start(hass, "uart")
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_PORT: str(port.link), CONF_MODEL: "mhz19b"}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"
    assert port.emulator.received == b""


async def test_uart_port_missing(hass: HomeAssistant, tmp_path: Path) -> None:
    """A path that does not exist: 'node_missing'."""
    result = await _start(hass, "uart")
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_PORT: str(tmp_path / "ttyUSB7"), CONF_MODEL: "sds011"}
    )
    assert result["errors"] == {"base": "node_missing"}


async def test_uart_not_a_serial_port(hass: HomeAssistant, tmp_path: Path) -> None:
    """A regular file is refused by the terminal ioctl: 'not_serial_port'."""
    path = tmp_path / "notes.txt"
    path.write_text("not a tty")
    result = await _start(hass, "uart")
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_PORT: str(path), CONF_MODEL: "sds011"}
    )
    assert result["errors"] == {"base": "not_serial_port"}


async def test_uart_permission_denied(hass: HomeAssistant, plugged) -> None:
    """The kernel refuses the open (the test runs as root, so serialx is told to)."""
    port: PluggedPort = plugged(MHZ19BEmulator())
    await port.plug()
    with patch(
        "serialx.open_serial_connection",
        side_effect=PermissionError(errno.EACCES, "Permission denied", str(port.link)),
    ):
        result = await _start(hass, "uart")
        result = await hass.config_entries.flow.async_configure(
            result["flow_id"], {CONF_PORT: str(port.link), CONF_MODEL: "mhz19b"}
        )
    assert result["errors"] == {"base": "node_permission"}


async def test_uart_no_data(hass: HomeAssistant, plugged) -> None:
    """A silent device (no power, TX/RX not crossed): 'no_data'."""
    emulator = MHZ19BEmulator()
    emulator.responding = False
    port: PluggedPort = plugged(emulator)
    await port.plug()
    result = await _start(hass, "uart")
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_PORT: str(port.link), CONF_MODEL: "mhz19b"}
    )
    assert result["errors"] == {"base": "no_data"}


async def test_uart_checksum(hass: HomeAssistant, plugged) -> None:
    """Every reply corrupted: after the resends, 'checksum'."""
    emulator = MHZ19BEmulator()
    port: PluggedPort = plugged(emulator)
    await port.plug()
    emulator.corrupt_next(100)
    result = await _start(hass, "uart")
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_PORT: str(port.link), CONF_MODEL: "mhz19b"}
    )
    assert result["errors"] == {"base": "checksum"}


# Reconfigure -----------------------------------------------------------------------


async def test_reconfigure_moves_i2c_chip_to_another_bus(
    hass: HomeAssistant, i2c_nodes: FakeI2CNodes, simulated: SimulatedBus
) -> None:
    """The chip is tested on the new bus; unique id, data and generated title follow."""
    entry = i2c_entry(hass, "bme280", 0x76)
    entry_title = "BME280 0x76 on simulated bus"
    hass.config_entries.async_update_entry(entry, title=entry_title)
    assert await hass.config_entries.async_setup(entry.entry_id)
    path = i2c_nodes.add(3)

    result = await entry.start_reconfigure_flow(hass)
    assert result["step_id"] == "reconfigure"
    options = result["data_schema"].schema[CONF_BUS].config["options"]
    assert [o["value"] for o in options] == [path, SIMULATED_BUS]
    result = await hass.config_entries.flow.async_configure(result["flow_id"], {CONF_BUS: path})
    assert result["errors"] == {"base": "no_ack"}

    i2c_nodes.buses[path].attach(0x76, Bme280Emulator())
    result = await hass.config_entries.flow.async_configure(result["flow_id"], {CONF_BUS: path})
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reconfigure_successful"
    await hass.async_block_till_done()
    assert entry.data[CONF_BUS] == path
    assert entry.unique_id == f"{path}@0x76"
    assert entry.title == "BME280 0x76 on i2c-3"
    assert entry.state is ConfigEntryState.LOADED


async def test_reconfigure_keeps_a_user_title_and_refuses_a_taken_spot(
    hass: HomeAssistant, i2c_nodes: FakeI2CNodes
) -> None:
    """Moving onto another entry's bus and address aborts; unchanged just reloads."""
    path = i2c_nodes.add(1)
    i2c_entry(hass, "bme280", 0x76, bus=path)
    entry = i2c_entry(hass, "bme280", 0x76)
    hass.config_entries.async_update_entry(entry, title="Living room")
    assert await hass.config_entries.async_setup(entry.entry_id)

    result = await entry.start_reconfigure_flow(hass)
    result = await hass.config_entries.flow.async_configure(result["flow_id"], {CONF_BUS: path})
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"

    result = await entry.start_reconfigure_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_BUS: SIMULATED_BUS}
    )
    assert result["reason"] == "reconfigure_successful"
    assert entry.title == "Living room"


async def test_reconfigure_moves_uart_sensor_to_another_port(hass: HomeAssistant, plugged) -> None:
    """The port is tested before the entry changes."""
    old: PluggedPort = plugged(MHZ19BEmulator())
    new: PluggedPort = plugged(MHZ19BEmulator(co2=800.0))
    await old.plug()
    entry = uart_entry(hass, "mhz19b", str(old.link))
    assert await hass.config_entries.async_setup(entry.entry_id)

    result = await entry.start_reconfigure_flow(hass)
    assert result["step_id"] == "reconfigure"
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_PORT: str(new.link)}
    )
    assert result["errors"] == {"base": "node_missing"}
    await new.plug()
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_PORT: str(new.link)}
    )
    assert result["reason"] == "reconfigure_successful"
    await hass.async_block_till_done()
    assert entry.data[CONF_PORT] == str(new.link)
    assert entry.unique_id == str(new.link)
    assert float(hass.states.get("sensor.mhz19b_on_port_carbon_dioxide").state) == 800
    await hass.config_entries.async_unload(entry.entry_id)


async def test_reconfigure_uart_unchanged_port_reloads(hass: HomeAssistant, plugged) -> None:
    """The loaded entry holds its port, so the same port is not re-tested, just reloaded."""
    port: PluggedPort = plugged(MHZ19BEmulator())
    await port.plug()
    entry = uart_entry(hass, "mhz19b", str(port.link))
    assert await hass.config_entries.async_setup(entry.entry_id)
    result = await entry.start_reconfigure_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_PORT: str(port.link)}
    )
    assert result["reason"] == "reconfigure_successful"
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.LOADED
    await hass.config_entries.async_unload(entry.entry_id)


# Options ---------------------------------------------------------------------------


def _section_keys(result: dict) -> list[str]:
    return [
        str(key) for key, value in result["data_schema"].schema.items() if hasattr(value, "schema")
    ]


async def test_options_store_interval_filter_and_calibration(hass: HomeAssistant) -> None:
    """Only the device's own quantities get calibration sections; the entry reloads."""
    entry = i2c_entry(hass, "bme280", 0x76)
    assert await hass.config_entries.async_setup(entry.entry_id)
    result = await hass.config_entries.options.async_init(entry.entry_id)
    assert result["step_id"] == "init"
    assert _section_keys(result) == ["temperature", "pressure", "humidity"]
    assert result["description_placeholders"] == {"default": "60", "minimum": "5"}
    result = await hass.config_entries.options.async_configure(
        result["flow_id"],
        {
            "scan_interval": 30,
            "outlier_filter": True,
            "filter_window": 7,
            "temperature": {"offset": -0.5, "multiplier": 1.0},
            "pressure": {"offset": 0.0, "multiplier": 1.0},
            "humidity": {"offset": 2.0, "multiplier": 0.98},
        },
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert entry.options == {
        "scan_interval": 30,
        "outlier_filter": True,
        "filter_window": 7,
        "calibration": {
            "temperature": {"offset": -0.5, "multiplier": 1.0},
            "pressure": {"offset": 0.0, "multiplier": 1.0},
            "humidity": {"offset": 2.0, "multiplier": 0.98},
        },
    }
    await hass.async_block_till_done()
    coordinator = entry.runtime_data
    assert coordinator.update_interval.total_seconds() == 30
    assert coordinator.cleaner.filter_window == 7


def _options_input(interval: int, quantities: dict[str, float]) -> dict:
    return {
        "scan_interval": interval,
        "outlier_filter": False,
        "filter_window": 5,
        **{key: {"offset": offset, "multiplier": 1.0} for key, offset in quantities.items()},
    }


async def test_options_interval_limits(hass: HomeAssistant) -> None:
    """Polled sensors need at least 5 s between readings."""
    entry = i2c_entry(hass, "bh1750", 0x23)
    result = await hass.config_entries.options.async_init(entry.entry_id)
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], _options_input(2, {"illuminance": 0.0})
    )
    assert result["errors"] == {"scan_interval": "scan_interval_too_short"}


async def test_options_streaming_duty_cycle(hass: HomeAssistant) -> None:
    """PMS: 0 (continuous) or a duty cycle of at least 120 s; nothing in between."""
    entry = uart_entry(hass, "pms5003", "/dev/ttyUSB0")
    result = await hass.config_entries.options.async_init(entry.entry_id)
    assert result["description_placeholders"] == {"default": "0", "minimum": "120"}
    pm = {"pm1": 0.0, "pm25": 0.0, "pm10": 0.0}
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], _options_input(60, pm)
    )
    assert result["errors"] == {"scan_interval": "duty_cycle_too_short"}
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], _options_input(300, pm)
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert entry.options["scan_interval"] == 300
    await hass.async_block_till_done()  # the reload it schedules must finish inside the test


async def test_options_scd4x_temperature_offset_range(hass: HomeAssistant) -> None:
    """The SCD4x applies the offset on the chip, which accepts 0..20 °C on top of 4 °C."""
    entry = i2c_entry(hass, "scd4x", 0x62)
    result = await hass.config_entries.options.async_init(entry.entry_id)
    values = {"co2": 0.0, "temperature": 5.0, "humidity": 0.0}
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], _options_input(60, values)
    )
    assert result["errors"] == {"base": "temperature_offset_range"}
    values["temperature"] = -1.5
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], _options_input(60, values)
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()


@pytest.mark.parametrize(
    ("port", "title"),
    [
        ("/dev/pts/3", "PMS5003 on pts/3"),
        ("/dev/ttyUSB0", "PMS5003 on ttyUSB0"),
        ("/dev/serial/by-id/usb-Prolific_PL2303-if00", "PMS5003 on usb-Prolific_PL2303-if00"),
    ],
)
def test_serial_entry_title_names_the_port(port: str, title: str) -> None:
    """A pseudo-terminal keeps its pts/ prefix (a bare "3" would say nothing)."""
    assert _entry_title({CONF_KIND: KIND_UART, CONF_PORT: port, CONF_MODEL: "pms5003"}) == title
