"""Config flow: add an I2C chip, a UART sensor or a simulated chip; options; reconfigure.

Every entry is tested before it is created: the chip is identified, initialised and read
once (or one valid frame is received), through the same code the entry will run.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, Literal

import voluptuous as vol
from homeassistant.config_entries import (
    ConfigEntry,
    ConfigFlow,
    ConfigFlowResult,
    OptionsFlowWithReload,
)
from homeassistant.core import callback
from homeassistant.data_entry_flow import section
from homeassistant.helpers.selector import (
    BooleanSelector,
    NumberSelector,
    NumberSelectorConfig,
    NumberSelectorMode,
    SelectOptionDict,
    SelectSelector,
    SelectSelectorConfig,
    SelectSelectorMode,
    TextSelector,
)

from .access import DeviceNodeError
from .bus import BusChoice, bus_registry, list_buses
from .const import (
    CONF_ADDRESS,
    CONF_BUS,
    CONF_CALIBRATION,
    CONF_FILTER_WINDOW,
    CONF_KIND,
    CONF_MAX_CURRENT,
    CONF_MODEL,
    CONF_MULTIPLIER,
    CONF_OFFSET,
    CONF_OUTLIER_FILTER,
    CONF_PORT,
    CONF_SCAN_INTERVAL,
    CONF_SHUNT_OHMS,
    DEFAULT_FILTER_WINDOW,
    DOMAIN,
    KIND_I2C,
    KIND_UART,
    LOGGER,
    MAX_SCAN_INTERVAL,
    MIN_DUTY_CYCLE_INTERVAL,
    MIN_SCAN_INTERVAL,
    SIMULATED_BUS,
)
from .device import (
    SCD4X_DEFAULT_TEMPERATURE_OFFSET,
    I2CDevice,
    SensorDevice,
    SerialDevice,
    create_device,
)
from .drivers.errors import DriverError
from .drivers.i2c_catalog import I2C_DRIVERS, scan
from .drivers.ina219 import calibration_for
from .drivers.scd4x import TEMPERATURE_OFFSET_RANGE
from .drivers.serial_catalog import SERIAL_DRIVERS
from .messages import error_key
from .neighbourhood.config_flow import NeighbourhoodFlowMixin
from .neighbourhood.const import KIND_NEIGHBOURHOOD
from .neighbourhood.options_flow import NeighbourhoodOptionsFlow
from .serial_port import async_list_ports, stable_path
from .settings import CONTINUOUS, filter_window, scan_interval

CONF_DEVICE = "device"
MANUAL = "manual"
MIN_ADDRESS, MAX_ADDRESS = 0x03, 0x77
DEFAULT_SHUNT_OHMS = 0.1
DEFAULT_MAX_CURRENT = 3.2
MIN_FILTER_WINDOW, MAX_FILTER_WINDOW = 4, 31
# The SCD4x takes self-heating offsets of 0..20 °C, applied on top of its factory 4 °C.
SCD4X_OFFSET_RANGE = (
    SCD4X_DEFAULT_TEMPERATURE_OFFSET - TEMPERATURE_OFFSET_RANGE[1],
    SCD4X_DEFAULT_TEMPERATURE_OFFSET - TEMPERATURE_OFFSET_RANGE[0],
)


def _select(
    options: list[SelectOptionDict], *, custom: bool = False, translation_key: str | None = None
) -> SelectSelector:
    config = SelectSelectorConfig(
        options=options, mode=SelectSelectorMode.DROPDOWN, custom_value=custom
    )
    if translation_key is not None:
        config["translation_key"] = translation_key
    return SelectSelector(config)


def _model_selector(catalog: Mapping[str, Any]) -> SelectSelector:
    return _select(
        [
            SelectOptionDict(value=key, label=f"{cls.model} ({cls.manufacturer})")
            for key, cls in catalog.items()
        ]
    )


def _parse_address(text: str) -> int | None:
    """An I2C address typed as i2cdetect prints it: hexadecimal, with or without 0x."""
    digits = text.strip().lower().removeprefix("0x")
    try:
        address = int(digits, 16)
    except ValueError:
        return None
    return address if MIN_ADDRESS <= address <= MAX_ADDRESS else None


def _bus_name(bus: str) -> str:
    return "simulated bus" if bus == SIMULATED_BUS else os.path.basename(bus)


def _i2c_unique_id(bus: str, address: int) -> str:
    return f"{bus}@0x{address:02x}"


def _entry_title(data: Mapping[str, Any]) -> str:
    if data[CONF_KIND] == KIND_I2C:
        name = I2C_DRIVERS[data[CONF_MODEL]].model
        return f"{name} 0x{data[CONF_ADDRESS]:02X} on {_bus_name(data[CONF_BUS])}"
    # A by-id (or other) link names the adapter; a /dev node keeps its relative path ("pts/3").
    port = str(data[CONF_PORT])
    in_dev = port.startswith("/dev/") and "/by-id/" not in port
    place = port.removeprefix("/dev/") if in_dev else os.path.basename(port)
    return f"{SERIAL_DRIVERS[data[CONF_MODEL]].model} on {place}"


async def _async_test(device: SensorDevice) -> str | None:
    """Read one measurement the way the entry will; the error key on failure."""
    try:
        await device.async_connect()
        if isinstance(device, SerialDevice) and device.supports_duty_cycle:
            await device.async_wake()  # it may be asleep from an earlier duty cycle
        await device.async_read()
    except (DeviceNodeError, DriverError, OSError) as err:
        LOGGER.debug("Testing %s failed: %s", device.name, err)
        return error_key(err)
    finally:
        await device.async_disconnect()
    return None


class HearthConfigFlow(NeighbourhoodFlowMixin, ConfigFlow, domain=DOMAIN):
    """Add one physical sensor per entry, or this hub's neighbourhood backend."""

    VERSION = 1

    def __init__(self) -> None:
        self._bus = ""
        self._found: dict[int, str | None] = {}
        self._pending: dict[str, Any] = {}

    @staticmethod
    @callback
    def async_get_options_flow(
        config_entry: ConfigEntry,
    ) -> HearthOptionsFlow | NeighbourhoodOptionsFlow:
        """Sensors: poll interval, outlier filter and calibration. Backend: what to share."""
        if config_entry.data.get(CONF_KIND) == KIND_NEIGHBOURHOOD:
            return NeighbourhoodOptionsFlow()
        return HearthOptionsFlow()

    async def async_step_user(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Ask which kind of sensor to add, or the neighbourhood backend."""
        return self.async_show_menu(
            step_id="user", menu_options=["i2c", "uart", "simulated", "neighbourhood"]
        )

    # I2C ---------------------------------------------------------------------------

    async def async_step_i2c(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Pick a bus; it is scanned for the chips Hearth knows."""
        buses = await self.hass.async_add_executor_job(list_buses)
        if not buses:
            return self.async_abort(reason="no_i2c_bus")
        errors: dict[str, str] = {}
        if user_input is not None:
            self._bus = user_input[CONF_BUS]
            if (error := await self._async_scan()) is None:
                return await self.async_step_i2c_device()
            errors["base"] = error
        return self.async_show_form(
            step_id="i2c",
            data_schema=vol.Schema({vol.Required(CONF_BUS): _bus_selector(buses)}),
            errors=errors,
        )

    async def async_step_simulated(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """The demo bus: emulated chips, scanned like a real bus."""
        self._bus = SIMULATED_BUS
        await self._async_scan()
        return await self.async_step_i2c_device()

    async def _async_scan(self) -> str | None:
        try:
            async with bus_registry(self.hass).borrow(self._bus) as shared:
                self._found = await shared.run(scan, shared.bus)
        except (DeviceNodeError, OSError) as err:
            return error_key(err)
        return None

    async def async_step_i2c_device(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Confirm an identified chip, or choose to enter one by hand."""
        identified = {address: key for address, key in self._found.items() if key is not None}
        if not identified:
            return await self.async_step_i2c_manual()
        errors: dict[str, str] = {}
        if user_input is not None:
            if user_input[CONF_DEVICE] == MANUAL:
                return await self.async_step_i2c_manual()
            address_text, model = user_input[CONF_DEVICE].split(":")
            result = await self._async_add_i2c(int(address_text, 16), model)
            if not isinstance(result, str):
                return result
            errors["base"] = result
        options = [
            SelectOptionDict(
                value=f"{address:02x}:{key}", label=f"{I2C_DRIVERS[key].model} at 0x{address:02X}"
            )
            for address, key in sorted(identified.items())
        ]
        options.append(SelectOptionDict(value=MANUAL, label=MANUAL))
        return self.async_show_form(
            step_id="i2c_device",
            data_schema=vol.Schema(
                {vol.Required(CONF_DEVICE): _select(options, translation_key=CONF_DEVICE)}
            ),
            errors=errors,
            description_placeholders=self._scan_placeholders(),
        )

    def _scan_placeholders(self) -> dict[str, str]:
        unknown = [f"0x{address:02X}" for address, key in self._found.items() if key is None]
        return {"bus": _bus_name(self._bus), "unknown": ", ".join(unknown) or "-"}

    async def async_step_i2c_manual(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Bus address and chip, for chips the scan did not identify."""
        errors: dict[str, str] = {}
        if user_input is None:
            if not any(key is not None for key in self._found.values()):
                errors["base"] = "nothing_found"
        else:
            address = _parse_address(user_input[CONF_ADDRESS])
            model = user_input[CONF_MODEL]
            if address is None:
                errors[CONF_ADDRESS] = "invalid_address"
            elif address not in I2C_DRIVERS[model].addresses:
                errors[CONF_ADDRESS] = "address_not_possible"
            else:
                result = await self._async_add_i2c(address, model)
                if not isinstance(result, str):
                    return result
                errors["base"] = result
        schema = vol.Schema(
            {
                vol.Required(CONF_ADDRESS): TextSelector(),
                vol.Required(CONF_MODEL): _model_selector(I2C_DRIVERS),
            }
        )
        return self.async_show_form(
            step_id="i2c_manual",
            data_schema=self.add_suggested_values_to_schema(schema, user_input),
            errors=errors,
            description_placeholders=self._scan_placeholders(),
        )

    async def _async_add_i2c(self, address: int, model: str) -> ConfigFlowResult | str:
        """Create the entry for a chip, or return the error key of its test."""
        await self.async_set_unique_id(_i2c_unique_id(self._bus, address))
        self._abort_if_unique_id_configured()
        self._pending = {
            CONF_KIND: KIND_I2C,
            CONF_BUS: self._bus,
            CONF_ADDRESS: address,
            CONF_MODEL: model,
        }
        if model == "ina219":
            return await self.async_step_ina219()
        return await self._async_test_and_create()

    async def async_step_ina219(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """The INA219 needs its shunt resistor and the largest expected current."""
        errors: dict[str, str] = {}
        if user_input is not None:
            try:
                calibration_for(user_input[CONF_SHUNT_OHMS], user_input[CONF_MAX_CURRENT])
            except ValueError:
                errors["base"] = "invalid_shunt"
            else:
                self._pending.update(user_input)
                result = await self._async_test_and_create()
                if not isinstance(result, str):
                    return result
                errors["base"] = result
        schema = vol.Schema(
            {
                vol.Required(CONF_SHUNT_OHMS, default=DEFAULT_SHUNT_OHMS): _number(
                    0.0001, 100.0, "any", "Ω"
                ),
                vol.Required(CONF_MAX_CURRENT, default=DEFAULT_MAX_CURRENT): _number(
                    0.001, 100.0, 0.001, "A"
                ),
            }
        )
        return self.async_show_form(
            step_id="ina219",
            data_schema=self.add_suggested_values_to_schema(schema, user_input),
            errors=errors,
        )

    # UART --------------------------------------------------------------------------

    async def async_step_uart(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Pick (or type) a serial port and the sensor model on it."""
        errors: dict[str, str] = {}
        if user_input is not None:
            port = await self.hass.async_add_executor_job(stable_path, user_input[CONF_PORT])
            await self.async_set_unique_id(port)
            self._abort_if_unique_id_configured()
            self._pending = {
                CONF_KIND: KIND_UART,
                CONF_PORT: port,
                CONF_MODEL: user_input[CONF_MODEL],
            }
            result = await self._async_test_and_create()
            if not isinstance(result, str):
                return result
            errors["base"] = result
        schema = vol.Schema(
            {
                vol.Required(CONF_PORT): await _async_port_selector(),
                vol.Required(CONF_MODEL): _model_selector(SERIAL_DRIVERS),
            }
        )
        return self.async_show_form(
            step_id="uart",
            data_schema=self.add_suggested_values_to_schema(schema, user_input),
            errors=errors,
        )

    async def _async_test_and_create(self) -> ConfigFlowResult | str:
        if (error := await _async_test(create_device(self.hass, self._pending))) is not None:
            return error
        return self.async_create_entry(title=_entry_title(self._pending), data=self._pending)

    # Reconfigure -------------------------------------------------------------------

    async def async_step_reconfigure(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Move the sensor to another bus or port; model and address stay."""
        entry = self._get_reconfigure_entry()
        kind = entry.data[CONF_KIND]
        if kind == KIND_NEIGHBOURHOOD:
            return await self.async_step_neighbourhood_reconfigure()
        key = CONF_BUS if kind == KIND_I2C else CONF_PORT
        errors: dict[str, str] = {}
        if user_input is not None:
            if kind == KIND_I2C:
                new = user_input[CONF_BUS]
                unique_id = _i2c_unique_id(new, entry.data[CONF_ADDRESS])
            else:
                new = await self.hass.async_add_executor_job(stable_path, user_input[CONF_PORT])
                unique_id = new
            if new == entry.data[key]:
                # Unchanged: a reload retries the connection, nothing to test here (the
                # loaded entry holds the port).
                return self.async_update_reload_and_abort(entry)
            if any(
                other.unique_id == unique_id and other.entry_id != entry.entry_id
                for other in self._async_current_entries()
            ):
                return self.async_abort(reason="already_configured")
            data = {**entry.data, key: new}
            if (error := await _async_test(create_device(self.hass, data))) is None:
                title = entry.title
                if title == _entry_title(entry.data):
                    title = _entry_title(data)
                return self.async_update_reload_and_abort(
                    entry, unique_id=unique_id, title=title, data=data
                )
            errors["base"] = error
        if kind == KIND_I2C:
            buses = await self.hass.async_add_executor_job(list_buses)
            buses.append(BusChoice(SIMULATED_BUS, SIMULATED_BUS))
            selector: SelectSelector = _bus_selector(buses)
        else:
            selector = await _async_port_selector()
        schema = vol.Schema({vol.Required(key): selector})
        return self.async_show_form(
            step_id="reconfigure",
            data_schema=self.add_suggested_values_to_schema(
                schema, user_input or {key: entry.data[key]}
            ),
            errors=errors,
        )


def _number(
    low: float, high: float, step: float | Literal["any"], unit: str | None = None
) -> NumberSelector:
    config = NumberSelectorConfig(min=low, max=high, step=step, mode=NumberSelectorMode.BOX)
    if unit is not None:
        config["unit_of_measurement"] = unit
    return NumberSelector(config)


def _bus_selector(buses: list[BusChoice]) -> SelectSelector:
    return _select(
        [SelectOptionDict(value=b.path, label=b.label) for b in buses], translation_key=CONF_BUS
    )


async def _async_port_selector() -> SelectSelector:
    ports = await async_list_ports()
    return _select([SelectOptionDict(value=p.path, label=p.label) for p in ports], custom=True)


class HearthOptionsFlow(OptionsFlowWithReload):
    """Poll interval, outlier filter and per-quantity calibration; the entry reloads."""

    async def async_step_init(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """One form; calibration sections only for the quantities this sensor measures."""
        entry = self.config_entry
        device = create_device(self.hass, entry.data)
        errors: dict[str, str] = {}
        if user_input is not None:
            interval = int(user_input[CONF_SCAN_INTERVAL])
            if device.streaming and CONTINUOUS < interval < MIN_DUTY_CYCLE_INTERVAL:
                errors[CONF_SCAN_INTERVAL] = "duty_cycle_too_short"
            elif not device.streaming and interval < MIN_SCAN_INTERVAL:
                errors[CONF_SCAN_INTERVAL] = "scan_interval_too_short"
            elif (
                isinstance(device, I2CDevice)
                and device.applies_temperature_offset
                and not SCD4X_OFFSET_RANGE[0]
                <= user_input["temperature"][CONF_OFFSET]
                <= SCD4X_OFFSET_RANGE[1]
            ):
                errors["base"] = "temperature_offset_range"
            else:
                return self.async_create_entry(data=_options_from_form(user_input, device))
        schema = _options_schema(device)
        return self.async_show_form(
            step_id="init",
            data_schema=self.add_suggested_values_to_schema(
                schema, user_input or _form_from_options(entry.options, device)
            ),
            errors=errors,
            description_placeholders={
                "default": str(scan_interval({}, device)),
                "minimum": str(MIN_DUTY_CYCLE_INTERVAL if device.streaming else MIN_SCAN_INTERVAL),
            },
        )


def _options_schema(device: SensorDevice) -> vol.Schema:
    fields: dict[Any, Any] = {
        vol.Required(CONF_SCAN_INTERVAL): _number(0, MAX_SCAN_INTERVAL, 1, "s"),
        vol.Required(CONF_OUTLIER_FILTER): BooleanSelector(),
        vol.Required(CONF_FILTER_WINDOW): _number(MIN_FILTER_WINDOW, MAX_FILTER_WINDOW, 1),
    }
    for quantity in device.quantities:
        fields[vol.Required(quantity)] = section(
            vol.Schema(
                {
                    vol.Required(CONF_OFFSET): _number(-1000.0, 1000.0, "any"),
                    vol.Required(CONF_MULTIPLIER): _number(0.5, 2.0, "any"),
                }
            ),
            {"collapsed": True},
        )
    return vol.Schema(fields)


def _form_from_options(options: Mapping[str, Any], device: SensorDevice) -> dict[str, Any]:
    calibration = options.get(CONF_CALIBRATION, {})
    return {
        CONF_SCAN_INTERVAL: scan_interval(options, device),
        CONF_OUTLIER_FILTER: filter_window(options) is not None,
        CONF_FILTER_WINDOW: options.get(CONF_FILTER_WINDOW, DEFAULT_FILTER_WINDOW),
        **{
            quantity: {
                CONF_OFFSET: calibration.get(quantity, {}).get(CONF_OFFSET, 0.0),
                CONF_MULTIPLIER: calibration.get(quantity, {}).get(CONF_MULTIPLIER, 1.0),
            }
            for quantity in device.quantities
        },
    }


def _options_from_form(form: Mapping[str, Any], device: SensorDevice) -> dict[str, Any]:
    return {
        CONF_SCAN_INTERVAL: int(form[CONF_SCAN_INTERVAL]),
        CONF_OUTLIER_FILTER: form[CONF_OUTLIER_FILTER],
        CONF_FILTER_WINDOW: int(form[CONF_FILTER_WINDOW]),
        CONF_CALIBRATION: {
            quantity: {
                CONF_OFFSET: float(form[quantity][CONF_OFFSET]),
                CONF_MULTIPLIER: float(form[quantity][CONF_MULTIPLIER]),
            }
            for quantity in device.quantities
        },
    }
