"""Simulated households that are not running Home Assistant: they sample their sensors and
send each task's period mean to their own node, as the integration does for a real home."""

from __future__ import annotations

import asyncio
import logging
import statistics
import time
from collections import defaultdict

import aiohttp

from .backends import Node
from .sensors import HouseholdSensors

_LOGGER = logging.getLogger(__name__)

SAMPLE_S = 5.0
SEND_AT = 0.6  # fraction of the period after which the period's mean is sent


async def contribute_forever(node: Node, sensors: HouseholdSensors, period: int) -> None:
    samples: dict[str, list[float]] = defaultdict(list)
    sent_round = -1
    headers = {"Authorization": f"Bearer {node.token}"}
    async with aiohttp.ClientSession(headers=headers) as session:
        while True:
            for task, value in (await sensors.read()).items():
                samples[task].append(value)
            sensors.advance(SAMPLE_S)
            now = time.time()
            round_id = int(now // period)
            if round_id != sent_round and now - round_id * period >= SEND_AT * period:
                await _send_means(session, node, samples)
                samples.clear()
                sent_round = round_id
            await asyncio.sleep(SAMPLE_S)


async def _send_means(
    session: aiohttp.ClientSession, node: Node, samples: dict[str, list[float]]
) -> None:
    for task, values in samples.items():
        body = {"task": task, "value": round(statistics.fmean(values), 2)}
        try:
            async with session.post(f"{node.url}/api/v1/readings", json=body) as response:
                if response.status >= 400:
                    text = await response.text()
                    # A task added moments ago starts with the next round: not worth a warning.
                    level = logging.DEBUG if "outside_round_window" in text else logging.WARNING
                    _LOGGER.log(level, "%s: %s refused: %s", node.name, task, text)
        except aiohttp.ClientError as err:
            _LOGGER.warning("%s: could not reach its node: %s", node.name, err)
