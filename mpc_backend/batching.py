"""Coalescing: callers submit items one by one; one task processes them in batches.

Items submitted while a batch is being processed form the next batch, so under load each
batch amortises one costly step (a commit, a signature) over many callers, and alone a
caller waits for nothing but its own batch. Used by share storage (one transaction per
batch), roster publication (one signed version) and admissions (one transaction).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

_T = TypeVar("_T")
_R = TypeVar("_R")


class Coalescer(Generic[_T, _R]):
    """``process`` turns a batch of items into one result per item, in order; a result that
    is an exception fails just that item, and an exception ``process`` raises fails every
    item of its batch. ``linger_s``: wait this long before taking each batch, so a burst
    lands in one."""

    def __init__(self, process: Callable[[list[_T]], Awaitable[Sequence[_R | BaseException]]],
                 linger_s: float = 0.0) -> None:
        self._process = process
        self._linger_s = linger_s
        self._pending: list[tuple[_T, asyncio.Future[_R]]] = []
        self._task: asyncio.Task[None] | None = None

    async def submit(self, item: _T) -> _R:
        """``item``'s result, once its batch is processed."""
        future: asyncio.Future[_R] = asyncio.get_running_loop().create_future()
        self._pending.append((item, future))
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run())
        return await future

    async def drain(self) -> None:
        """Wait until every item submitted so far is processed."""
        if self._task is not None:
            await asyncio.shield(self._task)

    async def _run(self) -> None:
        while self._pending:
            if self._linger_s:
                await asyncio.sleep(self._linger_s)
            batch, self._pending = self._pending, []
            try:
                results = list(await self._process([item for item, _ in batch]))
                if len(results) != len(batch):
                    raise RuntimeError(f"{len(results)} results for a batch of {len(batch)}")
            except Exception as err:
                results = [err] * len(batch)
            for (_, future), result in zip(batch, results, strict=True):
                if future.done():  # its caller was cancelled
                    continue
                if isinstance(result, BaseException):
                    future.set_exception(result)
                else:
                    future.set_result(result)
