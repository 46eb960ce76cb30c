"""Coordinators: polling for I2C and polled UART sensors, a reader task for streaming ones."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from contextlib import suppress
from datetime import timedelta
from typing import TypeAlias, TypeVar

from homeassistant.config_entries import ConfigEntry
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.event import async_call_later
from homeassistant.helpers.update_coordinator import DataUpdateCoordinator, UpdateFailed

from .access import DeviceNodeError
from .cleaning import Cleaner
from .const import DOMAIN, LOGGER
from .device import SensorDevice, SerialDevice
from .drivers.errors import DriverError
from .issues import async_clear_node_problem, async_report_node_problem
from .messages import error_key

T = TypeVar("T")

SensorConfigEntry: TypeAlias = ConfigEntry["SensorCoordinator"]

# Reconnect backoff for streaming devices: quick for a replugged adapter, then sparing.
BACKOFF_MIN_SECONDS = 1.0
BACKOFF_MAX_SECONDS = 300.0
# In continuous mode a PMS5003 sends a frame every 1-2.3 s; recording each would bloat
# the database for no information, so at most one frame per this many seconds is used.
CONTINUOUS_PUBLISH_SECONDS = 10.0


def _update_failed(err: Exception, device: SensorDevice) -> UpdateFailed:
    failure = UpdateFailed(
        translation_domain=DOMAIN,
        translation_key=error_key(err),
        translation_placeholders={"model": device.name, "error": str(err)},
    )
    failure.__cause__ = err
    return failure


class SensorCoordinator(DataUpdateCoordinator[dict[str, float]]):
    """Reads one sensor device and turns its readings into cleaned state values.

    `data` maps quantity to the latest accepted value; a rejected outlier leaves the
    previous value in place rather than making the entity unavailable.
    """

    config_entry: SensorConfigEntry

    def __init__(
        self,
        hass: HomeAssistant,
        entry: SensorConfigEntry,
        device: SensorDevice,
        cleaner: Cleaner,
        update_interval: timedelta | None,
    ) -> None:
        super().__init__(
            hass,
            LOGGER,
            config_entry=entry,
            name=entry.title,
            update_interval=update_interval,
        )
        self.device = device
        self.cleaner = cleaner

    async def _async_setup(self) -> None:
        await self._async_connect()

    async def _async_connect(self) -> None:
        try:
            await self.device.async_connect()
        except DeviceNodeError as err:
            async_report_node_problem(self.hass, self.config_entry, err)
            raise _update_failed(err, self.device) from err
        except (DriverError, OSError) as err:
            raise _update_failed(err, self.device) from err
        async_clear_node_problem(self.hass, self.config_entry)

    async def _async_call(self, step: Awaitable[T]) -> T:
        """Await a device operation, turning its failure into a translated UpdateFailed."""
        try:
            return await step
        except (DriverError, OSError) as err:
            raise _update_failed(err, self.device) from err

    async def _async_read(self) -> dict[str, float]:
        reading = await self._async_call(self.device.async_read())
        return {**(self.data or {}), **self.cleaner.clean(reading)}

    async def _async_update_data(self) -> dict[str, float]:
        if not self.device.connected:
            await self._async_connect()
        return await self._async_read()

    async def async_shutdown(self) -> None:
        """Release the bus or port when the entry unloads."""
        await super().async_shutdown()
        await self.device.async_disconnect()


class StreamingCoordinator(SensorCoordinator):
    """For sensors that push frames (PMS5003/7003, SDS011): a reader task feeds the data.

    Continuous mode reads every frame and publishes one per CONTINUOUS_PUBLISH_SECONDS.
    In duty-cycle mode the fan sleeps between readings and is woken `warmup_seconds`
    before the next one. When the port fails the
    entities go unavailable and the port is reopened with exponential backoff.
    """

    device: SerialDevice

    def __init__(
        self,
        hass: HomeAssistant,
        entry: SensorConfigEntry,
        device: SerialDevice,
        cleaner: Cleaner,
        duty_cycle_seconds: int | None,
    ) -> None:
        super().__init__(hass, entry, device, cleaner, None)
        self.duty_cycle_seconds = duty_cycle_seconds
        self._reader: asyncio.Task[None] | None = None
        self._published_at = 0.0
        # What the reader is doing, for diagnostics: reading, sleeping (fan off),
        # warming_up (fan on, readings not yet stable) or backoff (before reconnecting).
        self.phase = "reading"

    async def _async_connect(self) -> None:
        await super()._async_connect()
        if self.device.supports_duty_cycle:
            # It may still be asleep from a duty cycle before a restart.
            await self._async_call(self.device.async_wake())

    @callback
    def async_start(self) -> None:
        """Start reading; the task ends with the config entry."""
        self._published_at = self.hass.loop.time()  # the first refresh just published
        self._reader = self.config_entry.async_create_background_task(
            self.hass, self._async_stream(), f"{DOMAIN} {self.name} reader"
        )

    async def _async_update_data(self) -> dict[str, float]:
        if self._reader is None:
            return await super()._async_update_data()  # the first refresh reads itself
        # Afterwards the reader owns the port and publishes; a requested refresh (the
        # update_entity action) must not read alongside it, least of all while the fan
        # sleeps and no frame can come. It reports what the reader last found.
        if not self.last_update_success and isinstance(self.last_exception, UpdateFailed):
            raise self.last_exception
        return self.data

    async def async_shutdown(self) -> None:
        """Stop reading before the port closes, so closing is not mistaken for a failure."""
        if self._reader is not None:
            self._reader.cancel()
            with suppress(asyncio.CancelledError):
                await self._reader
        await super().async_shutdown()

    async def _async_stream(self) -> None:
        backoff = BACKOFF_MIN_SECONDS
        while True:
            try:
                if not self.device.connected:
                    await self._async_connect()
                    if self.duty_cycle_seconds is not None:
                        await self._async_wait(self.device.warmup_seconds, "warming_up")
                elif self.duty_cycle_seconds is not None:
                    await self._async_rest(self.duty_cycle_seconds)
                data = await self._async_read_fresh()
            except UpdateFailed as err:
                self.async_set_update_error(err)
                await self.device.async_disconnect()
                await self._async_wait(backoff, "backoff")
                backoff = min(backoff * 2, BACKOFF_MAX_SECONDS)
                continue
            backoff = BACKOFF_MIN_SECONDS
            if not self.last_update_success:
                LOGGER.info("%s: receiving data again", self.name)
            self.async_set_updated_data(data)

    async def _async_read_fresh(self) -> dict[str, float]:
        """The next reading due: in continuous mode, frames in between are skipped."""
        if self.duty_cycle_seconds is None:
            while self.hass.loop.time() - self._published_at < CONTINUOUS_PUBLISH_SECONDS:
                # Received (the stream stays in sync, a lost port is noticed) but not used.
                await self._async_call(self.device.async_read())
        data = await self._async_read()
        self._published_at = self.hass.loop.time()
        return data

    async def _async_rest(self, period: int) -> None:
        """Sleep the fan until `warmup_seconds` before the next reading is due, then wake it."""
        warmup = self.device.warmup_seconds
        await self._async_call(self.device.async_sleep())
        await self._async_wait(max(0.0, period - warmup), "sleeping")
        await self._async_call(self.device.async_wake())
        await self._async_wait(warmup, "warming_up")

    async def _async_wait(self, seconds: float, phase: str) -> None:
        """Sleep on Home Assistant's timer (so tests can move time forward) in `phase`."""
        done: asyncio.Future[None] = self.hass.loop.create_future()

        @callback
        def _wake(_now: object) -> None:
            if not done.done():
                done.set_result(None)

        cancel = async_call_later(self.hass, seconds, _wake)
        self.phase = phase
        try:
            await done
        finally:
            cancel()
            self.phase = "reading"
