"""Storage for a node whose ingest runs in several processes: closing marks (a round a
member starts closing takes no share after the mark, in any process), crosswise share
groups from two processes (no failed group), and text PostgreSQL cannot hold."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from typing import TYPE_CHECKING

import pytest

from mpc_backend.storage import Misbehaviour, PostgresStorage, PutOutcome, ShareRecord, Storage

if TYPE_CHECKING:  # asyncpg is in the host env only; the 3.14 run collects this file too
    import asyncpg


def share(sender: str, round_id: int = 7, digest: bytes = b"d", task: str = "temp") -> ShareRecord:
    return ShareRecord(task, round_id, sender, digest, digest * 8, 1.0)


async def test_a_round_marked_closing_takes_no_more_shares(storage: Storage) -> None:
    assert await storage.put_shares([share("a")]) is PutOutcome.STORED
    await storage.mark_closing("temp", 7, 100.0)
    await storage.mark_closing("temp", 7, 101.0)  # idempotent
    assert await storage.put_shares([share("b")]) is PutOutcome.CLOSED
    # A batch with one item of a closing round stores none of its items.
    assert await storage.put_shares([share("c", 8), share("c", 7)]) is PutOutcome.CLOSED
    # In one group, only the batch touching the round is refused.
    outcomes = await asyncio.gather(storage.put_shares([share("d", 8)]),
                                    storage.put_shares([share("d")]),
                                    storage.put_shares([share("a")]))
    assert outcomes == [PutOutcome.STORED, PutOutcome.CLOSED, PutOutcome.CLOSED]
    assert await storage.held_senders("temp", 7) == ["a"]
    assert await storage.held_senders("temp", 8) == ["d"]
    assert await storage.put_shares([share("e", task="hum")]) is PutOutcome.STORED
    # The mark is a tombstone: pruned with the others.
    await storage.prune(0.0, 99.0)
    assert await storage.put_shares([share("b")]) is PutOutcome.CLOSED
    await storage.prune(0.0, 102.0)
    assert await storage.put_shares([share("b")]) is PutOutcome.STORED


async def _race(writers: list[Storage], marker: Storage, senders: int, round_id: int) -> None:
    """Writers put one share per sender of the round while ``marker`` marks it closing
    and then reads its senders, as a member signing its held statement does: every share
    acknowledged as stored must be among them, and every put that starts after the mark
    must be refused. A third of the puts start at once, a third at random around the mark,
    a third once it is made, so both sides of the race happen on a slow machine too."""
    marked, first_stored = asyncio.Event(), asyncio.Event()
    stored: list[str] = []
    late: list[PutOutcome] = []

    async def put(store: Storage, sender: str, when: int) -> None:
        if when == 1:
            await asyncio.sleep(random.random() * 0.05)
        elif when == 2:
            await marked.wait()
        after = marked.is_set()
        outcome = await store.put_shares([share(sender, round_id)])
        if outcome is PutOutcome.STORED:
            stored.append(sender)
            first_stored.set()
        if after:
            late.append(outcome)

    async def close() -> list[str]:
        await first_stored.wait()
        await asyncio.sleep(random.random() * 0.025)
        await marker.mark_closing("temp", round_id, 1.0)
        marked.set()
        return await marker.held_senders("temp", round_id)

    puts = [put(writers[i % len(writers)], f"h{i:03d}", i % 3) for i in range(senders)]
    *_, held = await asyncio.gather(*puts, close())
    assert set(stored) <= set(held), "a share was acknowledged but left out of the statement"
    assert sorted(held) == sorted(stored)
    assert late and all(o is PutOutcome.CLOSED for o in late)
    assert 0 < len(stored) < senders


async def test_closing_mark_and_puts_in_one_process_never_lose_an_ack(storage: Storage) -> None:
    await _race([storage], storage, 200, 7)


@pytest.mark.postgres
async def test_closing_mark_races_puts_of_other_processes(postgres_url: str) -> None:
    """Three pools (a main process and two ingest workers sharing the database)."""
    stores = [PostgresStorage(postgres_url) for _ in range(3)]
    await asyncio.gather(*(s.open() for s in stores))
    try:
        for round_id in range(3):  # the windows fall differently each time
            await _race(stores[1:], stores[0], 300, round_id)
    finally:
        for s in stores:
            await s.close()


async def _put_in(conn: asyncpg.Connection, record: ShareRecord) -> str:
    """One group of one batch through the storage's SQL function, on a session of ours."""
    outcomes = await conn.fetchval(
        "SELECT hearth_put_shares($1, $2, $3, $4, $5, $6, $7, 1)", [1], [record.task],
        [record.round], [record.sender], [record.digest], [record.share], [record.received_at])
    return str(outcomes[0])


@pytest.mark.postgres
async def test_a_mark_waits_for_shares_being_stored_and_puts_wait_for_a_mark(
        postgres_url: str) -> None:
    """Both orders made to happen, with a session held open in the middle of its work."""
    store = PostgresStorage(postgres_url)
    await store.open()
    import asyncpg  # noqa: PLC0415 - see the TYPE_CHECKING import

    other = await asyncpg.connect(postgres_url)
    try:
        async with other.transaction():  # a worker's group, stored but not yet committed
            assert await _put_in(other, share("late")) == "stored"
            mark = asyncio.create_task(store.mark_closing("temp", 7, 1.0))
            await asyncio.sleep(0.3)
            assert not mark.done(), "the mark must wait for the group to commit"
        await mark
        assert await store.held_senders("temp", 7) == ["late"]  # so the statement names it

        async with other.transaction():  # a mark in progress
            await other.execute("SELECT hearth_mark_closing('temp', 8, 1.0)")
            put = asyncio.create_task(store.put_shares([share("early", 8)]))
            await asyncio.sleep(0.3)
            assert not put.done(), "a put must wait for the mark to commit"
        assert await put is PutOutcome.CLOSED
        assert await store.held_senders("temp", 8) == []
    finally:
        await other.close()
        await store.close()


@pytest.mark.postgres
async def test_share_groups_crossing_another_process_are_stored_again(postgres_url: str) -> None:
    """A group waiting on a row another session holds, while that session waits on one of
    the group's rows, is a deadlock the server breaks by aborting one of them; when that is
    the group, put_shares runs it again instead of failing every envelope in it."""
    store = PostgresStorage(postgres_url)
    await store.open()
    import asyncpg  # noqa: PLC0415 - see the TYPE_CHECKING import

    other = await asyncpg.connect(postgres_url)
    try:
        # The group's session finds the cycle (after 1 s, the default), not this one.
        await other.execute("SET deadlock_timeout = '60s'")
        other_tx = other.transaction()
        await other_tx.start()

        await _put_in(other, share("z"))  # holds z, uncommitted
        group = asyncio.gather(store.put_shares([share("a")]), store.put_shares([share("z")]))
        # The group stores a, then waits on z.
        waiting = ("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'hearth' "
                   "AND wait_event_type = 'Lock'")
        for _ in range(500):
            if await other.fetchval(waiting):
                break
            await asyncio.sleep(0.01)
        await _put_in(other, share("a"))  # waits on the group's a until the group is aborted
        await other_tx.commit()
        # Run again after the other session committed the same shares.
        assert await group == [PutOutcome.DUPLICATE, PutOutcome.DUPLICATE]
        assert await store.held_senders("temp", 7) == ["a", "z"]
    finally:
        await other.close()
        await store.close()


@pytest.mark.postgres
async def test_two_processes_putting_the_same_shares_in_any_order_all_succeed(
        postgres_url: str) -> None:
    """Resends of the same envelopes reaching two processes (two workers) in opposite
    orders: every put answers STORED or DUPLICATE, none fails."""
    first, second = PostgresStorage(postgres_url), PostgresStorage(postgres_url)
    await asyncio.gather(first.open(), second.open())
    try:
        for round_id in range(0, 10, 2):  # new keys each time
            batches = [[share(f"h{i:03d}", round_id), share(f"h{i:03d}", round_id + 1)]
                       for i in range(100)]
            shuffled = random.sample(batches, len(batches))
            outcomes = await asyncio.gather(
                *(first.put_shares(batch) for batch in batches),
                *(second.put_shares(batch) for batch in shuffled))
            assert set(outcomes) <= {PutOutcome.STORED, PutOutcome.DUPLICATE}
            assert len(await first.held_senders("temp", round_id)) == 100
    finally:
        await first.close()
        await second.close()


async def test_misbehaviour_text_with_nul_round_trips(
        storage_factory: Callable[[], Storage]) -> None:
    """A member's message can carry NUL into a detail; PostgreSQL text cannot hold it."""
    storage = storage_factory()
    await storage.open()
    try:
        odd = Misbehaviour("m\x00ember", "bad_signature",
                           "round 7: \x00 then \\0 and a lone \\ and \\\x00", 5.0)
        await storage.add_misbehaviour(odd)
        await storage.add_misbehaviour(Misbehaviour("m", "equivocation", "plain \\n", 6.0))
        listed = await storage.list_misbehaviour()
        assert listed == [Misbehaviour("m", "equivocation", "plain \\n", 6.0), odd]
    finally:
        await storage.close()
