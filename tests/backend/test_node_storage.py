"""The storage contract, on SQLite and on PostgreSQL: durability, atomic share batches,
idempotence, one-time invites. The ``storage`` fixture runs each test on both backends."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import stat
from collections.abc import Callable
from pathlib import Path

import pytest

from mpc_backend.storage import (
    Contribution,
    Delivery,
    InviteStatus,
    PutOutcome,
    RoundCommit,
    ShareRecord,
    SQLiteStorage,
    Storage,
)


def share(sender: str, digest: bytes = b"d1", task: str = "temp", round_id: int = 7) -> ShareRecord:
    return ShareRecord(task, round_id, sender, digest, (123).to_bytes(8, "little"), 1.0)


async def test_sqlite_database_is_private_and_in_wal_mode(tmp_path: Path) -> None:
    storage = SQLiteStorage(tmp_path)
    await storage.open()
    await storage.put_shares([share("a")])
    for name in ("node.sqlite3", "node.sqlite3-wal"):
        assert stat.S_IMODE(os.stat(tmp_path / name).st_mode) == 0o600
    mode = await storage._query("PRAGMA journal_mode")
    assert mode[0][0] == "wal"
    await storage.close()


async def test_an_error_that_ended_its_transaction_is_the_one_raised(tmp_path: Path) -> None:
    """SQLite rolls a transaction back itself on some errors (a full disk, I/O): the error
    reaches the caller, not a failed ROLLBACK's, and the connection stays usable."""
    storage = SQLiteStorage(tmp_path)
    await storage.open()

    def ends_then_fails(db: sqlite3.Connection) -> None:
        db.execute("INSERT INTO meta (key, value) VALUES ('k', 'lost')")
        db.execute("ROLLBACK")  # as SQLite does on SQLITE_FULL
        raise sqlite3.OperationalError("database or disk is full")

    try:
        with pytest.raises(sqlite3.OperationalError, match="disk is full"):
            await storage._tx_async(ends_then_fails)
        assert await storage.get_meta("k") is None
        await storage.set_meta("k", "kept")
        assert await storage.get_meta("k") == "kept"
    finally:
        await storage.close()


async def test_a_commit_that_fails_leaves_no_transaction_open(tmp_path: Path) -> None:
    """A COMMIT can fail and leave its transaction open (here a deferred foreign key, as a
    busy database would): the error is raised, and the next transaction still begins."""
    storage = SQLiteStorage(tmp_path)
    await storage.open()

    def tables(db: sqlite3.Connection) -> None:
        db.execute("CREATE TABLE parent (id INTEGER PRIMARY KEY)")
        db.execute("CREATE TABLE child (p INTEGER REFERENCES parent (id) "
                   "DEFERRABLE INITIALLY DEFERRED)")

    try:
        await storage._run(lambda: storage._db.execute("PRAGMA foreign_keys = ON"))
        await storage._tx_async(tables)
        with pytest.raises(sqlite3.IntegrityError, match="FOREIGN KEY"):
            await storage._tx_async(lambda db: db.execute("INSERT INTO child VALUES (1)"))
        await storage.set_meta("k", "kept")
        assert await storage.get_meta("k") == "kept"
        assert await storage._query("SELECT count(*) FROM child") == [(0,)]
    finally:
        await storage.close()


async def test_shares_from_a_table_without_rowid_are_moved_on_open(tmp_path: Path) -> None:
    """Databases from before shares were a rowid table: opening moves every share across
    (nothing is lost, a duplicate is still a duplicate) and drops the old table."""
    with sqlite3.connect(tmp_path / "node.sqlite3") as db:
        db.execute("CREATE TABLE shares (task TEXT NOT NULL, round INTEGER NOT NULL, "
                   "sender TEXT NOT NULL, digest BLOB NOT NULL, share BLOB NOT NULL, "
                   "received_at REAL NOT NULL, PRIMARY KEY (task, round, sender)) WITHOUT ROWID")
        db.executemany("INSERT INTO shares VALUES (?, ?, ?, ?, ?, ?)",
                       [("temp", 7, s, b"d1", (123).to_bytes(8, "little"), 1.0) for s in "ab"])
    storage = SQLiteStorage(tmp_path)
    await storage.open()
    try:
        assert await storage.held_senders("temp", 7) == ["a", "b"]
        assert await storage.load_shares("temp", 7, ["b"]) == [(123).to_bytes(8, "little")]
        assert await storage.put_shares([share("a")]) is PutOutcome.DUPLICATE
        assert await storage.put_shares([share("a", digest=b"d2")]) is PutOutcome.CONFLICT
        tables = await storage._query("SELECT name, sql FROM sqlite_master WHERE type = 'table'")
        sql = dict(tables)
        assert "shares_without_rowid" not in sql
        assert "WITHOUT ROWID" not in sql["shares"]
    finally:
        await storage.close()


async def test_acknowledged_shares_survive_reopening(
    storage_factory: Callable[[], Storage]
) -> None:
    first = storage_factory()
    await first.open()
    assert await first.put_shares([share("a"), share("b", task="hum")]) is PutOutcome.STORED
    # No clean close: a new connection must still see the committed rows.
    second = storage_factory()
    await second.open()
    assert await second.held_senders("temp", 7) == ["a"]
    assert await second.load_shares("hum", 7, ["b"]) == [(123).to_bytes(8, "little")]
    await second.close()
    await first.close()


async def test_batches_are_atomic_and_idempotent(storage: Storage) -> None:
    assert await storage.put_shares([share("a")]) is PutOutcome.STORED
    assert await storage.put_shares([share("a")]) is PutOutcome.DUPLICATE
    # A batch with one conflicting item stores nothing at all.
    outcome = await storage.put_shares([share("b"), share("a", digest=b"other")])
    assert outcome is PutOutcome.CONFLICT
    assert await storage.held_senders("temp", 7) == ["a"]
    # Concurrent batches are group-committed but keep their own outcomes.
    outcomes = await asyncio.gather(
        storage.put_shares([share("c")]),
        storage.put_shares([share("a", digest=b"x")]),
        storage.put_shares([share("d")]),
    )
    assert outcomes == [PutOutcome.STORED, PutOutcome.CONFLICT, PutOutcome.STORED]
    assert await storage.held_senders("temp", 7) == ["a", "c", "d"]
    # A batch that conflicts after storing a row takes that row back but keeps the rows it
    # only repeated; a batch after it in the same group may then store the same key.
    outcomes = await asyncio.gather(
        storage.put_shares([share("a"), share("b"), share("d", digest=b"other")]),
        storage.put_shares([share("b", digest=b"mine")]),
    )
    assert outcomes == [PutOutcome.CONFLICT, PutOutcome.STORED]
    assert await storage.held_senders("temp", 7) == ["a", "b", "c", "d"]
    assert await storage.load_shares("temp", 7, ["a", "b"]) == [
        (123).to_bytes(8, "little")] * 2
    assert await storage.put_shares([share("b", digest=b"mine")]) is PutOutcome.DUPLICATE
    with pytest.raises(KeyError, match="zz"):
        await storage.load_shares("temp", 7, ["a", "zz"])


async def test_conflicting_batches_in_one_group_are_decided_in_arrival_order(
    storage: Storage
) -> None:
    """Two envelopes from one sender with different shares, committed in one group: the
    first to arrive wins on both backends, whatever order their keys sort in (PostgreSQL
    takes its row locks in key order: the later batch's round 7 sorts first)."""
    outcomes = await asyncio.gather(
        storage.put_shares([share("s", b"first", round_id=8)]),
        storage.put_shares([share("s", b"second", round_id=7),
                            share("s", b"second", round_id=8)]),
        storage.put_shares([share("t", b"third", round_id=7)]),
    )
    assert outcomes == [PutOutcome.STORED, PutOutcome.CONFLICT, PutOutcome.STORED]
    assert await storage.held_senders("temp", 7) == ["t"]  # the loser kept nothing
    assert await storage.held_senders("temp", 8) == ["s"]
    assert await storage.put_shares([share("s", b"first", round_id=8)]) is PutOutcome.DUPLICATE
    assert storage.share_commit_s > 0  # the commits are timed (status load.ingest.commit_s)


async def test_first_result_wins_and_retires_the_shares(storage: Storage) -> None:
    await storage.put_shares([share("a")])
    assert await storage.rounds_holding_shares() == [("temp", 7)]
    doc = {"result": {"status": "released"}, "sig": "s1"}
    outcome, record = await storage.put_result("temp", 7, "released", doc, 5.0)
    assert outcome is PutOutcome.STORED and record.seq == 1
    assert (await storage.put_result("temp", 7, "released", doc, 6.0))[0] is PutOutcome.DUPLICATE
    other = {"result": {"status": "failed"}, "sig": "s2"}
    outcome, record = await storage.put_result("temp", 7, "failed", other, 6.0)
    assert outcome is PutOutcome.CONFLICT and record.doc == doc
    assert await storage.rounds_holding_shares() == []
    assert await storage.held_senders("temp", 7) == []


async def test_commitments_and_noise_deals_are_first_wins(storage: Storage) -> None:
    first = RoundCommit("temp", 7, ("a", "b"), b"p1", "c1", 1.0)
    assert await storage.put_commit(first) == first
    assert await storage.put_commit(RoundCommit("temp", 7, ("a",), b"p2", "c2", 2.0)) == first
    assert await storage.put_noise_deal("temp", 7, {"m": "x"}, 1.0) == {"m": "x"}
    assert await storage.put_noise_deal("temp", 7, {"m": "y"}, 2.0) == {"m": "x"}


async def test_verification_seeds_bindings_and_verdicts_are_kept_first_wins(
    storage_factory: Callable[[], Storage], storage: Storage
) -> None:
    """A member's seed and the statements it revealed it for never change once stored, and
    survive a restart; a commitment keeps its verdicts; housekeeping drops all three."""
    assert await storage.put_verify_seed("temp", 7, "aa" * 32, 1.0) == "aa" * 32
    assert await storage.put_verify_seed("temp", 7, "bb" * 32, 2.0) == "aa" * 32
    binding = {"statements": "d1", "wires": [{"statement": {"member": "m0"}, "sig": "s"}]}
    assert await storage.put_verify_binding("temp", 7, binding, 1.0) == binding
    other = {"statements": "d2", "wires": []}
    assert await storage.put_verify_binding("temp", 7, other, 2.0) == binding
    commit = RoundCommit("temp", 7, ("a", "b"), b"p", "c", 1.0, (), ("m0",),
                         (("x", "invalid"), ("y", "inconsistent")))
    assert await storage.put_commit(commit) == commit
    await storage.close()
    reopened = storage_factory()
    await reopened.open()
    try:
        assert await reopened.put_verify_seed("temp", 7, "cc" * 32, 3.0) == "aa" * 32
        assert await reopened.get_verify_binding("temp", 7) == binding
        assert await reopened.get_commit("temp", 7) == commit
        await reopened.prune(before=0.0, tombstones_before=1.5)
        assert await reopened.get_verify_binding("temp", 7) is None
        assert await reopened.get_commit("temp", 7) is None
        assert await reopened.put_verify_seed("temp", 7, "dd" * 32, 4.0) == "dd" * 32
    finally:
        await reopened.close()


async def test_invites_are_one_time_and_expire(storage: Storage) -> None:
    await storage.add_invite("h1", expires_at=100.0)
    await storage.add_invite("h2", expires_at=100.0)
    assert await storage.consume_invite("nope", 1.0, "n1") is InviteStatus.UNKNOWN
    assert await storage.consume_invite("h1", 1.0, "n1") is InviteStatus.OK
    assert await storage.consume_invite("h1", 2.0, "n1") is InviteStatus.OK  # same node retrying
    assert await storage.consume_invite("h1", 2.0, "n2") is InviteStatus.USED
    assert await storage.consume_invite("h2", 100.0, "n2") is InviteStatus.EXPIRED


async def test_roster_versions_only_go_up(storage: Storage) -> None:
    assert await storage.put_roster(2, {"v": 2})
    assert not await storage.put_roster(2, {"v": "other"})
    assert not await storage.put_roster(1, {"v": 1})
    assert await storage.get_roster() == {"v": 2}


async def test_outbox_keeps_ciphertexts_until_pruned(storage: Storage) -> None:
    contribution = Contribution("temp", 7, b"mac", ("m1", "m2"), round_end=100.0, created_at=1.0)
    deliveries = [Delivery("temp", 7, m, b"ct-" + m.encode(), False, 0) for m in ("m1", "m2")]
    assert await storage.put_contribution(contribution, deliveries)
    assert not await storage.put_contribution(contribution, deliveries)
    await storage.mark_delivery("temp", 7, "m1", True)
    pending = await storage.pending_deliveries(min_round_end=50.0)
    assert [(d.member, d.ciphertext) for d in pending] == [("m2", b"ct-m2")]
    assert await storage.pending_deliveries(min_round_end=100.0) == []
    await storage.prune(before=200.0, tombstones_before=0.0)
    assert await storage.deliveries("temp", 7) == []
    assert (await storage.get_contribution("temp", 7)) == contribution
