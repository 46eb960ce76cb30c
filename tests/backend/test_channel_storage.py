"""Channel secrets in storage, on SQLite and on PostgreSQL (the ``storage`` fixture runs each
contract test on both): first wins, live ones longest-lived first, expired ones forgotten
without leaving their bytes in the database files."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from mpc_backend.storage import (
    DB_FILE_NAME,
    ChannelRecord,
    PostgresStorage,
    SQLiteStorage,
    Storage,
)
from tests.backend.test_node_outbox import files_of
from tests.backend.test_storage_postgres import _database_files
from tests.postgres import PostgresServer


def secret(tag: str) -> bytes:
    """32 recognisable bytes, to look for in the database files."""
    return f"SECRET-{tag}-".encode().ljust(32, b"#")


def record(tag: str, expires: float, direction: str = "out", peer: str = "m1",
           channel_no: int = 0) -> ChannelRecord:
    return ChannelRecord(direction, peer, f"{channel_no:032x}", secret(tag), expires)


async def test_channels_are_stored_first_wins(storage: Storage) -> None:
    first = record("first", 1000.5)
    assert await storage.get_channel("out", "m1", first.channel) is None
    assert await storage.put_channel(first)
    assert await storage.get_channel("out", "m1", first.channel) == first
    assert await storage.put_channel(first)  # a repeat of the same offer
    # Another secret or expiry for the key is refused, and the first is kept.
    assert not await storage.put_channel(record("other", 1000.5))
    assert not await storage.put_channel(record("first", 2000.0))
    assert await storage.get_channel("out", "m1", first.channel) == first


async def test_direction_and_peer_separate_channels(storage: Storage) -> None:
    keyed = [record(f"{d}-{p}", 100.0 + i, direction=d, peer=p)
             for i, (d, p) in enumerate([("out", "m1"), ("in", "m1"), ("out", "m2")])]
    for r in keyed:  # one channel id, three keys: none conflicts with another
        assert await storage.put_channel(r)
    for r in keyed:
        assert await storage.get_channel(r.direction, r.peer, r.channel) == r
        assert await storage.live_channels(r.direction, r.peer, 0.0) == [r]
    assert await storage.get_channel("in", "m2", keyed[0].channel) is None


async def test_live_channels_longest_lived_first(storage: Storage) -> None:
    expiring = [record(f"c{n}", expires, channel_no=n)
                for n, expires in enumerate([300.0, 100.0, 500.0, 200.0])]
    for r in expiring:
        await storage.put_channel(r)
    await storage.put_channel(record("in", 900.0, direction="in", channel_no=9))
    assert [r.expires for r in await storage.live_channels("out", "m1", 0.0)] == [
        500.0, 300.0, 200.0, 100.0]
    # Live means expiring after now: one expiring exactly now is not.
    live = await storage.live_channels("out", "m1", 200.0)
    assert live == [expiring[2], expiring[0]]
    assert await storage.live_channels("out", "m1", 500.0) == []
    assert await storage.live_channels("out", "nobody", 0.0) == []
    # With anyone: every peer's, in the same order.
    await storage.put_channel(record("c9", 400.0, peer="m2", channel_no=8))
    assert [(r.peer, r.expires) for r in await storage.live_channels("out", None, 150.0)] == [
        ("m1", 500.0), ("m2", 400.0), ("m1", 300.0), ("m1", 200.0)]
    assert [r.expires for r in await storage.live_channels("in", None, 0.0)] == [900.0]


async def test_forget_channels_deletes_only_expired_ones(
    storage_factory: Callable[[], Storage], storage: Storage
) -> None:
    kept = [record("kept", 300.0, channel_no=1), record("edge", 200.0, channel_no=2)]
    gone = [record("gone", 100.0, channel_no=3), record("gone-in", 150.0, direction="in")]
    for r in kept + gone:
        assert await storage.put_channel(r)
    assert await storage.forget_channels(200.0) == 2
    assert await storage.forget_channels(200.0) == 0
    for r in gone:
        assert await storage.get_channel(r.direction, r.peer, r.channel) is None
    await storage.close()
    reopened = storage_factory()  # durable: a restart sees the same
    await reopened.open()
    try:
        assert await reopened.live_channels("out", "m1", 0.0) == kept
        assert await reopened.live_channels("in", "m1", 0.0) == []
        # A forgotten key can be used again.
        assert await reopened.put_channel(record("new", 400.0, channel_no=3))
    finally:
        await reopened.close()


async def test_an_older_database_gains_the_channels_table(
    storage_factory: Callable[[], Storage]
) -> None:
    """Databases from before channels: opening creates the table (IF NOT EXISTS)."""
    store = storage_factory()
    await store.open()
    if isinstance(store, SQLiteStorage):
        await store._query("DROP TABLE channels")
    else:
        assert isinstance(store, PostgresStorage)
        await store._db.execute("DROP TABLE channels")
    await store.set_meta("kept", "yes")
    await store.close()
    reopened = storage_factory()
    await reopened.open()
    try:
        assert await reopened.get_meta("kept") == "yes"
        assert await reopened.put_channel(record("x", 10.0))
        assert await reopened.live_channels("out", "m1", 0.0) == [record("x", 10.0)]
    finally:
        await reopened.close()


def test_channel_records_are_checked() -> None:
    with pytest.raises(ValueError, match="direction"):
        record("x", 1.0, direction="both")
    with pytest.raises(ValueError, match="hex"):
        ChannelRecord("out", "m1", "AB" * 16, secret("x"), 1.0)
    with pytest.raises(ValueError, match="32 bytes"):
        ChannelRecord("out", "m1", "ab" * 16, b"short", 1.0)


async def test_forgotten_secrets_leave_the_sqlite_files(tmp_path: Path) -> None:
    storage = SQLiteStorage(tmp_path)
    await storage.open()
    try:
        await storage.put_channel(record("expired", 100.0, channel_no=1))
        await storage.put_channel(record("live", 300.0, channel_no=2))
        # On the same page as the live row; in the WAL and, checkpointed, in the file.
        assert secret("expired") in files_of(tmp_path)
        await storage._query("PRAGMA wal_checkpoint(TRUNCATE)")
        assert secret("expired") in (tmp_path / DB_FILE_NAME).read_bytes()
        assert await storage.forget_channels(200.0) == 1
        files = files_of(tmp_path)
        assert secret("expired") not in files and secret("live") in files
    finally:
        await storage.close()
    with sqlite3.connect(tmp_path / DB_FILE_NAME) as db:  # the live one is intact
        assert db.execute("SELECT secret FROM channels").fetchall() == [(secret("live"),)]
    db.close()


@pytest.mark.postgres
async def test_forgotten_secrets_leave_the_postgres_table_files(
    postgres_server: PostgresServer, postgres_url: str
) -> None:
    """A DELETE alone leaves the secret in the pages; forgetting rewrites the table (the WAL
    still holds it until recycled: see postgres.py)."""
    storage = PostgresStorage(postgres_url)
    await storage.open()
    try:
        await storage.put_channel(record("expired", 100.0, channel_no=1))
        await storage.put_channel(record("live", 300.0, channel_no=2))
        assert secret("expired") in _database_files(postgres_server, postgres_url)
        assert await storage.forget_channels(200.0) == 1
        files = _database_files(postgres_server, postgres_url)
        assert secret("expired") not in files and secret("live") in files
    finally:
        await storage.close()
