"""One physical sensor behind a uniform async interface, whatever its bus.

I2C drivers block, so their calls run in the executor under the bus lock; serial
drivers are asyncio already. Both count failed transfers for the diagnostic sensor.
"""

from __future__ import annotations

import asyncio
import errno
import inspect
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from typing import Any, Protocol, TypeVar, cast

from homeassistant.core import HomeAssistant

from .bus import SharedBus, bus_registry
from .const import (
    CONF_ADDRESS,
    CONF_BUS,
    CONF_KIND,
    CONF_MAX_CURRENT,
    CONF_MODEL,
    CONF_PORT,
    CONF_SHUNT_OHMS,
    KIND_I2C,
)
from .drivers.base import I2CDriver
from .drivers.errors import DriverError, NotReadyError
from .drivers.i2c_catalog import I2C_DRIVERS
from .drivers.scd4x import Scd4x
from .drivers.serial_catalog import SERIAL_DRIVERS
from .drivers.serial_framing import FramedSerialDriver
from .serial_port import async_open

T = TypeVar("T")

# SCD4x: first result 5 s after measurement starts; INA219: one read after a reset.
NOT_READY_ATTEMPTS = 8
NOT_READY_WAIT_SECONDS = 1.0
# Longer than any supported device's frame period (PMS5003 2.3 s) or reply time.
SERIAL_READ_TIMEOUT_SECONDS = 10.0
# The SCD4x subtracts its own self-heating from temperature (and recomputes humidity
# from it); a user's temperature offset shifts this factory value on the chip.
SCD4X_DEFAULT_TEMPERATURE_OFFSET = 4.0


class _SerialCO2(Protocol):
    async def calibrate(self, target_ppm: float) -> None: ...
    async def set_abc(self, enabled: bool) -> None: ...


class _DutyCycled(Protocol):
    warmup_seconds: float

    async def sleep(self) -> None: ...
    async def wake(self) -> None: ...


class SensorDevice(ABC):
    """A sensor the coordinators connect to, read and disconnect."""

    def __init__(self, model: str, driver_cls: type[I2CDriver] | type[FramedSerialDriver]) -> None:
        self.model = model  # catalog key
        self.name = driver_cls.model
        self.manufacturer = driver_cls.manufacturer
        self.quantities = driver_cls.quantities
        self.default_scan_interval = driver_cls.default_poll_seconds
        self.streaming = False
        self.supports_co2_calibration = False
        self.transfer_errors = 0
        self.connected = False

    @abstractmethod
    async def async_connect(self) -> None:
        """Open the bus/port and bring the chip into measuring state."""

    @abstractmethod
    async def async_read(self) -> dict[str, float]:
        """One measurement; DriverError or OSError on failure (counted)."""

    @abstractmethod
    async def async_disconnect(self) -> None:
        """Release the bus/port; safe when not connected."""

    @abstractmethod
    async def async_calibrate_co2(self, target_ppm: int) -> None:
        """Declare the current air to hold `target_ppm` CO2 (if supports_co2_calibration)."""

    @abstractmethod
    async def async_set_automatic_calibration(self, enabled: bool) -> None:
        """Automatic baseline correction on or off (if supports_co2_calibration)."""


class I2CDevice(SensorDevice):
    """A chip at one address on one (real or simulated) bus."""

    def __init__(self, hass: HomeAssistant, data: dict[str, Any]) -> None:
        driver_cls = I2C_DRIVERS[data[CONF_MODEL]]
        super().__init__(data[CONF_MODEL], driver_cls)
        self.hass = hass
        self.driver_cls = driver_cls
        self.bus_id: str = data[CONF_BUS]
        self.address: int = data[CONF_ADDRESS]
        self.supports_co2_calibration = issubclass(driver_cls, Scd4x)
        # Set by the coordinator from the options; the SCD4x applies it on the chip.
        self.chip_temperature_offset: float | None = None
        self._driver_kwargs = {
            key: data[key] for key in (CONF_SHUNT_OHMS, CONF_MAX_CURRENT) if key in data
        }
        self._shared: SharedBus | None = None
        self._driver: I2CDriver | None = None

    @property
    def applies_temperature_offset(self) -> bool:
        """Whether the chip, rather than the cleaning pipeline, applies a temperature offset."""
        return issubclass(self.driver_cls, Scd4x)

    def _make_driver(self, shared: SharedBus) -> I2CDriver:
        kwargs: dict[str, Any] = dict(self._driver_kwargs)
        if "sleep" in inspect.signature(self.driver_cls).parameters:
            kwargs["sleep"] = shared.sleep
        return self.driver_cls(shared.bus, self.address, **kwargs)

    def _bring_up(self, driver: I2CDriver) -> None:
        driver.identify()
        driver.initialize()
        if isinstance(driver, Scd4x) and self.chip_temperature_offset is not None:
            driver.set_temperature_offset(
                SCD4X_DEFAULT_TEMPERATURE_OFFSET - self.chip_temperature_offset
            )

    async def _run(self, func: Callable[..., T], *args: Any) -> T:
        if self._shared is None:
            # Released by an unload racing an action: report it like a vanished chip.
            raise OSError(errno.ENODEV, f"{self.name}: the I2C bus was released")
        try:
            return await self._shared.run(func, *args)
        except NotReadyError:
            raise
        except (DriverError, OSError):
            # The chip may have lost power: identify and initialize it again next time.
            self.transfer_errors += 1
            self.connected = False
            raise

    async def async_connect(self) -> None:
        if self._shared is None:
            self._shared = await bus_registry(self.hass).acquire(self.bus_id)
        driver = self._make_driver(self._shared)
        await self._run(self._bring_up, driver)
        self._driver = driver
        self.connected = True

    async def async_read(self) -> dict[str, float]:
        assert self._shared is not None and self._driver is not None
        for _ in range(NOT_READY_ATTEMPTS - 1):
            try:
                return await self._run(self._driver.read)
            except NotReadyError:
                # Not holding the bus lock: other chips on the bus go on meanwhile.
                await self.hass.async_add_executor_job(self._shared.sleep, NOT_READY_WAIT_SECONDS)
        try:
            return await self._run(self._driver.read)
        except NotReadyError:
            # Still nothing: the chip may have been power-cycled into idle, so bring it
            # up again next time.
            self.transfer_errors += 1
            self.connected = False
            raise

    async def async_disconnect(self) -> None:
        self._driver = None
        self.connected = False
        if self._shared is not None:
            shared, self._shared = self._shared, None
            await bus_registry(self.hass).release(shared)

    def _scd4x(self) -> Scd4x:
        if self._driver is None:
            raise OSError(
                errno.ENODEV, f"{self.name} is not connected; it reconnects at the next poll"
            )
        return cast(Scd4x, self._driver)

    async def async_calibrate_co2(self, target_ppm: int) -> None:
        await self._run(self._scd4x().forced_recalibration, target_ppm)

    async def async_set_automatic_calibration(self, enabled: bool) -> None:
        driver = self._scd4x()
        # Persisted: the user asked for a setting and expects it to survive a power cut.
        await self._run(lambda: driver.set_automatic_self_calibration(enabled, persist=True))


class SerialDevice(SensorDevice):
    """A UART sensor on a serial port; the port is reopened after it disappears."""

    def __init__(self, data: dict[str, Any]) -> None:
        driver_cls = SERIAL_DRIVERS[data[CONF_MODEL]]
        super().__init__(data[CONF_MODEL], driver_cls)
        self.port: str = data[CONF_PORT]
        self.streaming = driver_cls.streaming
        self.supports_co2_calibration = hasattr(driver_cls, "calibrate")
        # Fan-driven sensors can sleep between readings and need a warm-up after waking.
        self.supports_duty_cycle = hasattr(driver_cls, "sleep") and hasattr(driver_cls, "wake")
        self.warmup_seconds: float = getattr(driver_cls, "warmup_seconds", 0.0)
        self._driver: FramedSerialDriver | None = None
        # One exchange at a time: a calibration must not interleave with a poll's request.
        self._exchange = asyncio.Lock()
        # Checksum failures counted by the drivers of earlier connections.
        self._past_checksum_errors = 0
        self._failed_reads = 0

    def _count_errors(self) -> None:
        current = self._driver.checksum_errors if self._driver is not None else 0
        self.transfer_errors = self._past_checksum_errors + current + self._failed_reads

    async def async_connect(self) -> None:
        self._driver = await async_open(self.model, self.port)
        self.connected = True

    async def async_read(self) -> dict[str, float]:
        assert self._driver is not None
        try:
            async with self._exchange:
                return await self._driver.measure(SERIAL_READ_TIMEOUT_SECONDS)
        except OSError:
            # The port is gone (adapter unplugged): reopen it on the next attempt.
            self._failed_reads += 1
            await self.async_disconnect()
            raise
        except DriverError:
            self._failed_reads += 1
            raise
        finally:
            self._count_errors()

    async def async_disconnect(self) -> None:
        driver, self._driver = self._driver, None
        self.connected = False
        if driver is not None:
            self._past_checksum_errors += driver.checksum_errors
            await driver.close()
        self._count_errors()

    def _open_driver(self) -> FramedSerialDriver:
        """The driver, checked under the exchange lock: a poll that failed while an
        action waited for the lock has closed the port."""
        if self._driver is None:
            raise OSError(errno.ENODEV, f"{self.port} is closed; it is reopened at the next poll")
        return self._driver

    async def async_calibrate_co2(self, target_ppm: int) -> None:
        async with self._exchange:
            await cast(_SerialCO2, self._open_driver()).calibrate(target_ppm)

    async def async_set_automatic_calibration(self, enabled: bool) -> None:
        async with self._exchange:
            await cast(_SerialCO2, self._open_driver()).set_abc(enabled)

    async def async_sleep(self) -> None:
        """Stop the fan until async_wake() (if supports_duty_cycle)."""
        await cast(_DutyCycled, self._driver).sleep()

    async def async_wake(self) -> None:
        """Start the fan; readings are stable `warmup_seconds` later (if supports_duty_cycle)."""
        await cast(_DutyCycled, self._driver).wake()


def create_device(hass: HomeAssistant, data: Mapping[str, Any]) -> SensorDevice:
    """The device a sensor entry's data describes."""
    if data[CONF_KIND] == KIND_I2C:
        return I2CDevice(hass, dict(data))
    return SerialDevice(dict(data))
