"""Keeps Home Assistant's view of the neighbourhood current.

Two paths feed one data object: the backend's result stream (server-sent events,
so a released round shows up at once) and a poll every POLL_INTERVAL_S (status,
members online, committee load, and any result the stream missed). The stream
reconnects with exponential backoff; the poll keeps working meanwhile.

A backend that stops answering does not make the coordinator fail: the data
says ``online=False`` (the connectivity sensor turns off, aggregate sensors go
unavailable) and the log gets one warning; one info line when it is back. Only
the very first fetch fails the setup (ConfigEntryNotReady, so HA retries), and a
refused token starts reauthentication. Each poll also brings the entry's
misbehaviour repair issue in line with the backend's reports (see issues.py).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any

from homeassistant.config_entries import ConfigEntry
from homeassistant.core import HomeAssistant, callback
from homeassistant.exceptions import ConfigEntryAuthFailed
from homeassistant.helpers.update_coordinator import DataUpdateCoordinator, UpdateFailed

from ..const import DOMAIN, LOGGER
from .client import BackendClient
from .const import (
    EVENT_RESULT,
    POLL_INTERVAL_S,
    STREAM_BACKOFF_MAX_S,
    STREAM_BACKOFF_MIN_S,
)
from .errors import BackendError, BackendRejected, CannotConnect, InvalidAuth, NotInFederation
from .issues import async_sync_misbehaviour_issue
from .models import NodeStatus, TaskResult, TaskSpec

# How many recent rounds per task the poll reads to find the latest released one.
RESULTS_PER_TASK = 20


@dataclass(frozen=True, slots=True)
class NeighbourhoodData:
    """Everything the entities show; replaced, never mutated."""

    online: bool
    status: NodeStatus
    latest: dict[str, TaskResult] = field(default_factory=dict)  # newest outcome per task
    released: dict[str, TaskResult] = field(default_factory=dict)  # newest released per task

    @property
    def specs(self) -> dict[str, TaskSpec]:
        return {t.spec.task_id: t.spec for t in self.status.tasks}

    @property
    def max_seq(self) -> int:
        return max((r.seq for r in self.latest.values()), default=0)

    def with_results(self, results: list[TaskResult]) -> NeighbourhoodData:
        latest, released = dict(self.latest), dict(self.released)
        for result in results:
            if result.seq > getattr(latest.get(result.task), "seq", 0):
                latest[result.task] = result
            if result.released and result.seq > getattr(released.get(result.task), "seq", 0):
                released[result.task] = result
        return replace(self, latest=latest, released=released)


class NeighbourhoodCoordinator(DataUpdateCoordinator[NeighbourhoodData]):
    """The household backend's status and results, for one neighbourhood entry."""

    config_entry: ConfigEntry

    def __init__(self, hass: HomeAssistant, entry: ConfigEntry, client: BackendClient) -> None:
        super().__init__(
            hass,
            LOGGER,
            config_entry=entry,
            name=f"{DOMAIN} neighbourhood",
            update_interval=timedelta(seconds=POLL_INTERVAL_S),
        )
        self.client = client
        # Results up to this seq are known; events fire only for newer released ones,
        # so history present at start-up is shown but not announced again.
        self._announced_seq: int | None = None
        self._offline_reason: str | None = None

    async def _async_update_data(self) -> NeighbourhoodData:
        try:
            status = await self.client.status()
            if not status.in_federation:
                raise NotInFederation(f"{self.client.url} left its federation")
            results: list[TaskResult] = []
            for task in status.tasks:
                results += await self.client.results(
                    task.spec.task_id, limit=RESULTS_PER_TASK
                )
        except InvalidAuth as err:
            raise ConfigEntryAuthFailed(
                translation_domain=DOMAIN, translation_key="backend_invalid_auth"
            ) from err
        except NotInFederation as err:
            raise UpdateFailed(
                translation_domain=DOMAIN, translation_key="backend_not_in_federation"
            ) from err
        except (CannotConnect, BackendRejected) as err:
            if self.data is None:
                raise UpdateFailed(
                    translation_domain=DOMAIN,
                    translation_key="backend_unreachable",
                    translation_placeholders={"url": self.client.url, "error": str(err)},
                ) from err
            self._note_offline(err)
            return replace(self.data, online=False)
        base = self.data or NeighbourhoodData(online=True, status=status)
        data = replace(base, online=True, status=status).with_results(results)
        self._note_online()
        self._announce(data, results)
        await async_sync_misbehaviour_issue(
            self.hass, self.config_entry, status.misbehaviour, status.node_id
        )
        return data

    @callback
    def _note_offline(self, err: BackendError) -> None:
        if self._offline_reason is None:
            self._offline_reason = str(err)
            LOGGER.warning(
                "Hearth backend at %s is unavailable (%s); neighbourhood sensors are "
                "unavailable until it answers again",
                self.client.url,
                err,
            )

    @callback
    def _note_online(self) -> None:
        if self._offline_reason is not None:
            self._offline_reason = None
            LOGGER.info("Hearth backend at %s is reachable again", self.client.url)

    @callback
    def _announce(self, data: NeighbourhoodData, results: list[TaskResult]) -> None:
        if self._announced_seq is None:
            self._announced_seq = data.max_seq
            return
        for result in sorted(results, key=lambda r: r.seq):
            if result.seq <= self._announced_seq:
                continue
            self._announced_seq = result.seq
            if result.released:
                self.hass.bus.async_fire(
                    EVENT_RESULT,
                    {"config_entry_id": self.config_entry.entry_id, **result.as_dict()},
                )

    @callback
    def _on_stream_result(self, result: TaskResult) -> None:
        # The stream starts after the first refresh, so there is data to add to.
        data = replace(self.data.with_results([result]), online=True)
        self._note_online()
        self._announce(data, [result])
        self.async_set_updated_data(data)

    async def async_stream_results(self) -> None:
        """Follow the result stream for as long as the entry is loaded."""
        delay = STREAM_BACKOFF_MIN_S
        crash_logged = False

        @callback
        def opened() -> None:
            nonlocal delay, crash_logged
            delay = STREAM_BACKOFF_MIN_S
            crash_logged = False
            if self._offline_reason is not None:
                self.config_entry.async_create_task(self.hass, self.async_request_refresh())

        while True:
            try:
                async for result in self.client.stream_results(self._announced_seq or 0, opened):
                    self._on_stream_result(result)
            except CannotConnect as err:
                if self.data.online:
                    self._note_offline(err)
                    self.async_set_updated_data(replace(self.data, online=False))
            except BackendError as err:
                # A refused token or similar: the poll reports it (reauth); retry slowly.
                LOGGER.debug("Hearth result stream refused: %s", err)
                delay = STREAM_BACKOFF_MAX_S
            except Exception:
                # A bug must not end the stream for good: the poll still runs, and the
                # stream is retried slowly; the traceback is logged once, until it opens.
                if crash_logged:
                    LOGGER.debug("Hearth result stream failed again", exc_info=True)
                else:
                    LOGGER.exception("Hearth result stream failed; retrying")
                    crash_logged = True
                delay = STREAM_BACKOFF_MAX_S
            await asyncio.sleep(delay)
            delay = min(delay * 2, STREAM_BACKOFF_MAX_S)

    def diagnostics(self) -> dict[str, Any]:
        """Coordinator state for the diagnostics download (no secrets in here)."""
        return {
            "offline_reason": self._offline_reason,
            "announced_seq": self._announced_seq,
            "last_update_success": self.last_update_success,
        }
