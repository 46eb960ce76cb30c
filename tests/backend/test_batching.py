"""The coalescer behind share storage, roster publication and admissions."""

from __future__ import annotations

import asyncio

import pytest

from mpc_backend.batching import Coalescer


async def test_items_arriving_during_a_batch_form_the_next_one() -> None:
    batches: list[list[int]] = []
    release = asyncio.Event()

    async def process(items: list[int]) -> list[int]:
        batches.append(items)
        if len(batches) == 1:
            await release.wait()  # the first batch is "committing"
        return [i * 10 for i in items]

    coalescer: Coalescer[int, int] = Coalescer(process)
    first = [asyncio.create_task(coalescer.submit(i)) for i in (1, 2)]
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    later = [asyncio.create_task(coalescer.submit(i)) for i in (3, 4, 5)]
    await asyncio.sleep(0)
    release.set()
    assert await asyncio.gather(*first, *later) == [10, 20, 30, 40, 50]
    assert batches == [[1, 2], [3, 4, 5]]
    await coalescer.drain()


async def test_a_failing_batch_fails_its_items_only() -> None:
    calls = 0

    async def process(items: list[str]) -> list[str | BaseException]:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise OSError("disk full")
        return [ValueError(i) if i == "bad" else i.upper() for i in items]

    coalescer: Coalescer[str, str] = Coalescer(process)
    failed = await asyncio.gather(coalescer.submit("a"), coalescer.submit("b"),
                                  return_exceptions=True)
    assert [type(e) for e in failed] == [OSError, OSError]
    # The next batch is processed as usual; an exception as a result fails just its item.
    results = await asyncio.gather(coalescer.submit("c"), coalescer.submit("bad"),
                                   return_exceptions=True)
    assert results[0] == "C" and isinstance(results[1], ValueError)


async def test_lingering_gathers_a_burst_into_one_batch() -> None:
    batches: list[list[int]] = []

    async def process(items: list[int]) -> list[int]:
        batches.append(items)
        return items

    coalescer: Coalescer[int, int] = Coalescer(process, linger_s=0.05)
    first = asyncio.create_task(coalescer.submit(1))
    await asyncio.sleep(0.01)  # after the first, within the linger
    assert await asyncio.gather(first, coalescer.submit(2)) == [1, 2]
    assert batches == [[1, 2]]


async def test_a_wrong_number_of_results_fails_the_batch() -> None:
    async def process(items: list[int]) -> list[int]:
        return items[:1]

    coalescer: Coalescer[int, int] = Coalescer(process)
    with pytest.raises(RuntimeError, match="1 results for a batch of 2"):
        await asyncio.gather(coalescer.submit(1), coalescer.submit(2))
