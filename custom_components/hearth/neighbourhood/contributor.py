"""This home's readings for the tasks it opted into: one period mean per round.

A task's rounds are the backend's: round r spans [r * period, (r + 1) * period)
in Unix time. During a round the contributor collects the chosen entity's valid
states (the state in force when the round starts, then every change) and, just
before the round ends, sends their mean, so the value lands in the round it
describes. States that are unavailable, unknown, not numeric, or in a unit that
cannot be converted to the task's are skipped; a round with no valid state
sends nothing. The mean is clipped to the task's range, as the backend's
fixed-point encoding requires.

Only the backend ever sees the value; it leaves the hub only as secret shares.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from datetime import datetime
from statistics import fmean

from homeassistant.core import CALLBACK_TYPE, Event, EventStateChangedData, HomeAssistant, callback
from homeassistant.helpers.event import (
    async_track_point_in_utc_time,
    async_track_state_change_event,
)
from homeassistant.util import dt as dt_util

from ..const import LOGGER
from .client import BackendClient
from .const import CONTRIBUTE_MARGIN_FRACTION, CONTRIBUTE_MARGIN_MAX_S, CONTRIBUTE_MARGIN_MIN_S
from .errors import BackendError, BackendRejected, CannotConnect
from .models import Receipt, TaskSpec
from .units import state_value


class NoValidState(Exception):
    """The source entity has no usable value right now."""


def send_margin(period_s: int) -> float:
    """Seconds before a round's end at which its mean is sent."""
    return min(
        max(period_s * CONTRIBUTE_MARGIN_FRACTION, CONTRIBUTE_MARGIN_MIN_S),
        CONTRIBUTE_MARGIN_MAX_S,
    )


def clip(value: float, spec: TaskSpec) -> float:
    return min(max(value, spec.low), spec.high)


class TaskContributor:
    """Feeds one task from one entity, once per round."""

    def __init__(
        self, hass: HomeAssistant, client: BackendClient, spec: TaskSpec, entity_id: str
    ) -> None:
        self.hass = hass
        self.client = client
        self.spec = spec
        self.entity_id = entity_id
        self.samples: list[float] = []
        self.last_receipt: Receipt | None = None
        self._unsubs: list[CALLBACK_TYPE] = []
        self._unsub_send: CALLBACK_TYPE | None = None
        # Refusals already warned about since the last accepted reading: a lasting cause
        # (say a range the sensor is outside of) would otherwise warn every period.
        self._warned_refusals: set[str] = set()

    def round_of(self, when: datetime) -> int:
        return math.floor(when.timestamp() / self.spec.period_s)

    def send_time(self, round_id: int) -> datetime:
        end = (round_id + 1) * self.spec.period_s - send_margin(self.spec.period_s)
        return dt_util.utc_from_timestamp(end)

    @callback
    def start(self) -> Callable[[], None]:
        """Begin collecting; returns the function that stops it."""
        self._begin_round()
        self._unsubs.append(
            async_track_state_change_event(self.hass, [self.entity_id], self._on_state)
        )
        now = dt_util.utcnow()
        round_id = self.round_of(now)
        if now >= self.send_time(round_id):
            round_id += 1  # too late to send for this round: collect for the next one
        self._schedule(round_id)
        return self.stop

    @callback
    def stop(self) -> None:
        for unsub in self._unsubs:
            unsub()
        self._unsubs.clear()
        if self._unsub_send is not None:
            self._unsub_send()
            self._unsub_send = None

    @callback
    def _begin_round(self) -> None:
        value = state_value(self.hass.states.get(self.entity_id), self.spec)
        self.samples = [] if value is None else [value]

    @callback
    def _on_state(self, event: Event[EventStateChangedData]) -> None:
        old, new = event.data["old_state"], event.data["new_state"]
        if old is not None and new is not None and old.state == new.state:
            return  # only attributes changed: counting it again would weight the mean
        value = state_value(new, self.spec)
        if value is not None:
            self.samples.append(value)

    @callback
    def _schedule(self, round_id: int) -> None:
        async def send(_now: datetime) -> None:
            await self._send_round(round_id)

        self._unsub_send = async_track_point_in_utc_time(
            self.hass, send, self.send_time(round_id)
        )

    async def _send_round(self, round_id: int) -> None:
        samples = self.samples
        self._begin_round()
        self._schedule(round_id + 1)
        if not samples:
            LOGGER.debug("%s: no valid state of %s in round %d; nothing sent",
                         self.spec.task_id, self.entity_id, round_id)
            return
        if self.last_receipt is not None and self.last_receipt.round == round_id:
            return  # contribute_now already sent this round's value
        try:
            await self._contribute(clip(fmean(samples), self.spec))
        except CannotConnect as err:
            # The coordinator already warns once about an unreachable backend.
            LOGGER.debug("%s: round %d not sent: %s", self.spec.task_id, round_id, err)
        except BackendRejected as err:
            level = logging.DEBUG if err.code in self._warned_refusals else logging.WARNING
            self._warned_refusals.add(err.code)
            LOGGER.log(level, "Hearth backend refused this home's %s reading for round %d: %s",
                       self.spec.metric, round_id, err.message)
        except BackendError as err:
            LOGGER.debug("%s: round %d not sent: %s", self.spec.task_id, round_id, err)

    async def _contribute(self, value: float) -> Receipt:
        receipt = await self.client.contribute(self.spec.task_id, value)
        self.last_receipt = receipt
        self._warned_refusals.clear()
        LOGGER.debug("%s: sent a reading to round %d (%d committee acknowledgements)",
                     self.spec.task_id, receipt.round, receipt.acknowledged_by)
        return receipt

    async def contribute_now(self) -> Receipt:
        """Send the entity's current value to the current round (the action)."""
        value = state_value(self.hass.states.get(self.entity_id), self.spec)
        if value is None:
            raise NoValidState(self.entity_id)
        return await self._contribute(clip(value, self.spec))
