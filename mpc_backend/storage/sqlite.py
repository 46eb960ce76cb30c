"""SQLite storage (WAL) in the node's data dir.

One connection, used from one dedicated thread so the event loop never blocks
on disk. ``synchronous=FULL``: in WAL mode NORMAL may lose the last commits on
power loss, and an acknowledged share must survive that. ``secure_delete``: rows
that are deleted because they must not outlive their round (the household's
value MAC, sealed shares) are overwritten, not left in free pages; the WAL is
truncated after such deletions. The fsync per commit is
amortised by group commit: share batches that arrive while a commit is in
flight are written together in the next transaction (each batch of several shares in its
own savepoint, so one conflicting batch does not sink the others; a single share's
conflict inserts nothing).
"""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from mpc_backend.batching import Coalescer

from .base import (
    ONCE_COLUMNS,
    Admission,
    ChannelRecord,
    Contribution,
    Delivery,
    InviteStatus,
    Misbehaviour,
    PutOutcome,
    ResultRecord,
    RoundCommit,
    ShareRecord,
    Storage,
)

DB_FILE_NAME = "node.sqlite3"
_T = TypeVar("_T")

# A rowid table: shares arrive in random sender order and are ~1 KB, so keyed by
# (task, round, sender) itself each insert landed on a random leaf of a few rows and rewrote
# it into the WAL (53 -> 20 us per row at 10 000 rows, 48 to a commit); now rows append and
# only the small key index is random.
SHARES_TABLE = """CREATE TABLE IF NOT EXISTS shares (
    task TEXT NOT NULL, round INTEGER NOT NULL, sender TEXT NOT NULL,
    digest BLOB NOT NULL, share BLOB NOT NULL, received_at REAL NOT NULL,
    PRIMARY KEY (task, round, sender));"""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS roster (
    id INTEGER PRIMARY KEY CHECK (id = 1), version INTEGER NOT NULL, wire TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS invites (  -- secret_hash: the invite key id (an older name)
    secret_hash TEXT PRIMARY KEY, expires_at REAL NOT NULL, used_by TEXT, used_at REAL,
    mailbox TEXT);
CREATE TABLE IF NOT EXISTS commits (
    task TEXT NOT NULL, round INTEGER NOT NULL, senders TEXT NOT NULL, partial BLOB NOT NULL,
    coordinator TEXT NOT NULL, committed_at REAL NOT NULL, dealers TEXT NOT NULL DEFAULT '[]',
    statements TEXT NOT NULL DEFAULT '[]', excluded TEXT NOT NULL DEFAULT '[]',
    PRIMARY KEY (task, round));
CREATE TABLE IF NOT EXISTS noise_deals (
    task TEXT NOT NULL, round INTEGER NOT NULL, deal TEXT NOT NULL, created_at REAL NOT NULL,
    PRIMARY KEY (task, round));
CREATE TABLE IF NOT EXISTS results (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, task TEXT NOT NULL, round INTEGER NOT NULL,
    status TEXT NOT NULL, doc TEXT NOT NULL, received_at REAL NOT NULL, UNIQUE (task, round));
CREATE TABLE IF NOT EXISTS held_statements (
    task TEXT NOT NULL, round INTEGER NOT NULL, statement TEXT NOT NULL, created_at REAL NOT NULL,
    PRIMARY KEY (task, round));
CREATE TABLE IF NOT EXISTS verify_seeds (
    task TEXT NOT NULL, round INTEGER NOT NULL, seed TEXT NOT NULL, created_at REAL NOT NULL,
    PRIMARY KEY (task, round));
CREATE TABLE IF NOT EXISTS verify_bindings (
    task TEXT NOT NULL, round INTEGER NOT NULL, binding TEXT NOT NULL, created_at REAL NOT NULL,
    PRIMARY KEY (task, round));
CREATE TABLE IF NOT EXISTS misbehaviour (
    id INTEGER PRIMARY KEY AUTOINCREMENT, member TEXT NOT NULL, kind TEXT NOT NULL,
    detail TEXT NOT NULL, at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS contributions (
    task TEXT NOT NULL, round INTEGER NOT NULL, value_mac BLOB NOT NULL, committee TEXT NOT NULL,
    round_end REAL NOT NULL, created_at REAL NOT NULL, PRIMARY KEY (task, round));
CREATE TABLE IF NOT EXISTS deliveries (
    task TEXT NOT NULL, round INTEGER NOT NULL, member TEXT NOT NULL, ciphertext BLOB,
    acked INTEGER NOT NULL DEFAULT 0, attempts INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (task, round, member));
CREATE TABLE IF NOT EXISTS admissions (
    seq INTEGER PRIMARY KEY, node_id TEXT NOT NULL UNIQUE, wire TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS closing (
    task TEXT NOT NULL, round INTEGER NOT NULL, created_at REAL NOT NULL,
    PRIMARY KEY (task, round)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS channels (
    direction TEXT NOT NULL, peer TEXT NOT NULL, channel TEXT NOT NULL, secret BLOB NOT NULL,
    expires REAL NOT NULL, PRIMARY KEY (direction, peer, channel)) WITHOUT ROWID;
""" + SHARES_TABLE


def _migrate_shares(db: sqlite3.Connection) -> None:
    """Move a database's shares from before SHARES_TABLE into it (checked in the
    transaction, so a second process opening at once finds it done)."""
    (sql,) = db.execute(
        "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'shares'").fetchone()
    if "WITHOUT ROWID" not in sql.upper():
        return
    db.execute("ALTER TABLE shares RENAME TO shares_without_rowid")
    db.execute(SHARES_TABLE)
    db.execute("INSERT INTO shares (task, round, sender, digest, share, received_at) "
               "SELECT task, round, sender, digest, share, received_at FROM shares_without_rowid")
    db.execute("DROP TABLE shares_without_rowid")


# Measured with bench_round (2 000 households, one node at a time): ingest CPU per report
# 0.35 -> 0.27 ms at 1 ms; 3 ms and more cost wall time again (the clients' requests in
# flight wait out the linger). A household alone waits 1 ms longer for its ack.
SHARES_LINGER_S = 0.001


class SQLiteStorage(Storage):
    """Storage in ``data_dir/node.sqlite3``; created 0600 on first open."""

    def __init__(self, data_dir: Path) -> None:
        self.path = Path(data_dir) / DB_FILE_NAME
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite")
        self._conn: sqlite3.Connection | None = None
        # Share batches arriving while a commit is in flight go into the next transaction,
        # and each waits SHARES_LINGER_S first: without it a commit's fsync is quick enough
        # to take one or two envelopes under load, and each costs its own commit.
        self._shares = Coalescer(self._commit_group, SHARES_LINGER_S)

    # -- plumbing -----------------------------------------------------------
    async def _run(self, fn: Callable[..., _T], *args: Any) -> _T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, fn, *args)

    @property
    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            raise RuntimeError("storage is not open")
        return self._conn

    def _open_sync(self) -> None:
        if not self.path.exists():
            # The -wal and -shm files inherit this mode from the database file.
            os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o600))
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA busy_timeout=5000")
        conn.execute("PRAGMA secure_delete=ON")
        conn.executescript(_SCHEMA)
        columns = {row[1] for row in conn.execute("PRAGMA table_info(commits)")}
        # databases from before these were recorded
        for column in ("dealers", "statements", "excluded"):
            if column not in columns:
                conn.execute(f"ALTER TABLE commits ADD COLUMN {column} TEXT NOT NULL DEFAULT '[]'")
        if "mailbox" not in {row[1] for row in conn.execute("PRAGMA table_info(invites)")}:
            conn.execute("ALTER TABLE invites ADD COLUMN mailbox TEXT")
        self._conn = conn
        self._tx(_migrate_shares)

    async def open(self) -> None:
        await self._run(self._open_sync)

    async def close(self) -> None:
        await self._shares.drain()
        if self._conn is not None:
            await self._run(self._conn.close)
            self._conn = None
        self._executor.shutdown(wait=True)

    def _tx(self, fn: Callable[[sqlite3.Connection], _T]) -> _T:
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            out = fn(db)
            db.execute("COMMIT")
        except BaseException:
            # Only if still open: SQLite ends a transaction itself on some errors (a full
            # disk, I/O), where a ROLLBACK would fail and hide the error that matters; a
            # failed COMMIT (a deferred constraint, SQLITE_BUSY) leaves it open.
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        return out

    async def _tx_async(self, fn: Callable[[sqlite3.Connection], _T]) -> _T:
        return await self._run(self._tx, fn)

    async def _query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return await self._run(lambda: self._db.execute(sql, params).fetchall())

    # -- meta -------------------------------------------------------------
    async def get_meta(self, key: str) -> str | None:
        rows = await self._query("SELECT value FROM meta WHERE key = ?", (key,))
        return rows[0][0] if rows else None

    async def set_meta(self, key: str, value: str) -> None:
        await self._tx_async(
            lambda db: db.execute(
                "INSERT INTO meta (key, value) VALUES (?, ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (key, value),
            )
        )

    # -- roster -----------------------------------------------------------
    async def get_roster(self) -> dict[str, Any] | None:
        rows = await self._query("SELECT wire FROM roster WHERE id = 1")
        return json.loads(rows[0][0]) if rows else None

    async def put_roster(self, version: int, wire: dict[str, Any]) -> bool:
        text = json.dumps(wire, separators=(",", ":"))

        def put(db: sqlite3.Connection) -> bool:
            row = db.execute("SELECT version FROM roster WHERE id = 1").fetchone()
            if row is not None and row[0] >= version:
                return False
            db.execute(
                "INSERT INTO roster (id, version, wire) VALUES (1, ?, ?) ON CONFLICT (id) "
                "DO UPDATE SET version = excluded.version, wire = excluded.wire",
                (version, text),
            )
            return True

        return await self._tx_async(put)

    # -- invites ----------------------------------------------------------
    async def add_invite(self, key_id: str, expires_at: float,
                         mailbox: str | None = None) -> None:
        await self._tx_async(
            lambda db: db.execute(
                "INSERT INTO invites (secret_hash, expires_at, mailbox) VALUES (?, ?, ?)",
                (key_id, expires_at, mailbox),
            )
        )

    async def lapsed_invite_mailboxes(self, now: float) -> list[tuple[str, str]]:
        rows = await self._query(
            "SELECT secret_hash, mailbox FROM invites WHERE used_by IS NULL AND expires_at <= ? "
            "AND mailbox IS NOT NULL", (now,))
        return [(str(key), str(mailbox)) for key, mailbox in rows]

    async def forget_invite_mailbox(self, key_id: str) -> None:
        await self._tx_async(lambda db: db.execute(
            "UPDATE invites SET mailbox = NULL WHERE secret_hash = ?", (key_id,)))

    async def consume_invite(self, key_id: str, now: float, node_id: str) -> InviteStatus:
        def consume(db: sqlite3.Connection) -> InviteStatus:
            row = db.execute(
                "SELECT expires_at, used_by FROM invites WHERE secret_hash = ?", (key_id,)
            ).fetchone()
            if row is None:
                return InviteStatus.UNKNOWN
            expires_at, used_by = row
            if used_by is not None:
                return InviteStatus.OK if used_by == node_id else InviteStatus.USED
            if now >= expires_at:
                return InviteStatus.EXPIRED
            db.execute(
                "UPDATE invites SET used_by = ?, used_at = ? WHERE secret_hash = ?",
                (node_id, now, key_id),
            )
            return InviteStatus.OK

        return await self._tx_async(consume)

    # -- shares -------------------------------------------------------------
    async def put_shares(self, records: Sequence[ShareRecord]) -> PutOutcome:
        return await self._shares.submit(records)

    async def _commit_group(self, group: list[Sequence[ShareRecord]]) -> list[PutOutcome]:
        return await self._run(self._commit_shares, group)

    def _commit_shares(self, group: list[Sequence[ShareRecord]]) -> list[PutOutcome]:
        started = time.perf_counter()
        try:
            return self._tx(lambda db: _put_batches(db, group))
        finally:  # in the one storage thread: no other writer of the counter
            self.share_commit_s += time.perf_counter() - started

    async def held_senders(self, task: str, round_id: int) -> list[str]:
        rows = await self._query(
            "SELECT sender FROM shares WHERE task = ? AND round = ? ORDER BY sender",
            (task, round_id),
        )
        return [r[0] for r in rows]

    async def load_shares(self, task: str, round_id: int, senders: Sequence[str]) -> list[bytes]:
        def load() -> list[bytes]:
            rows = dict(
                self._db.execute(
                    "SELECT sender, share FROM shares WHERE task = ? AND round = ?",
                    (task, round_id),
                ).fetchall()
            )
            missing = [s for s in senders if s not in rows]
            if missing:
                raise KeyError(f"no share from {missing[0]} for {task} round {round_id}")
            return [rows[s] for s in senders]

        return await self._run(load)

    async def rounds_holding_shares(self) -> list[tuple[str, int]]:
        rows = await self._query(
            "SELECT DISTINCT s.task, s.round FROM shares s WHERE NOT EXISTS "
            "(SELECT 1 FROM results r WHERE r.task = s.task AND r.round = s.round)"
        )
        return [(r[0], int(r[1])) for r in rows]

    # -- commitments and noise ----------------------------------------------
    async def get_commit(self, task: str, round_id: int) -> RoundCommit | None:
        rows = await self._query(
            "SELECT senders, partial, coordinator, committed_at, dealers, statements, excluded "
            "FROM commits "
            "WHERE task = ? AND round = ?",
            (task, round_id),
        )
        if not rows:
            return None
        senders, partial, coordinator, committed_at, dealers, statements, excluded = rows[0]
        return RoundCommit(task, round_id, tuple(json.loads(senders)), partial, coordinator,
                           committed_at, tuple(json.loads(dealers)),
                           tuple(json.loads(statements)),
                           tuple((h, v) for h, v in json.loads(excluded)))

    async def put_commit(self, commit: RoundCommit) -> RoundCommit:
        def put(db: sqlite3.Connection) -> None:
            db.execute(
                "INSERT INTO commits (task, round, senders, partial, coordinator, committed_at, "
                "dealers, statements, excluded) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (task, round) DO NOTHING",
                (commit.task, commit.round, json.dumps(list(commit.senders)), commit.partial,
                 commit.coordinator, commit.committed_at, json.dumps(list(commit.dealers)),
                 json.dumps(list(commit.statements)),
                 json.dumps([list(e) for e in commit.excluded])),
            )

        await self._tx_async(put)
        stored = await self.get_commit(commit.task, commit.round)
        assert stored is not None
        return stored

    async def _get_once(self, table: str, task: str, round_id: int) -> Any:
        rows = await self._query(
            f"SELECT {ONCE_COLUMNS[table]} FROM {table} WHERE task = ? AND round = ?",  # noqa: S608
            (task, round_id),
        )
        return json.loads(rows[0][0]) if rows else None

    async def _put_once(self, table: str, task: str, round_id: int, value: Any, now: float) -> Any:
        await self._tx_async(
            lambda db: db.execute(
                f"INSERT INTO {table} (task, round, {ONCE_COLUMNS[table]}, created_at) "  # noqa: S608
                "VALUES (?, ?, ?, ?) ON CONFLICT (task, round) DO NOTHING",
                (task, round_id, json.dumps(value), now),
            )
        )
        stored = await self._get_once(table, task, round_id)
        assert stored is not None
        return stored

    # -- misbehaviour -------------------------------------------------------
    async def add_misbehaviour(self, record: Misbehaviour) -> None:
        await self._tx_async(
            lambda db: db.execute(
                "INSERT INTO misbehaviour (member, kind, detail, at) VALUES (?, ?, ?, ?)",
                (record.member, record.kind, record.detail, record.at),
            )
        )

    async def list_misbehaviour(self, limit: int = 1000) -> list[Misbehaviour]:
        rows = await self._query(
            "SELECT member, kind, detail, at FROM misbehaviour ORDER BY id DESC LIMIT ?", (limit,)
        )
        return [Misbehaviour(*row) for row in rows]

    # -- results ------------------------------------------------------------
    async def put_result(
        self, task: str, round_id: int, status: str, doc: dict[str, Any], now: float
    ) -> tuple[PutOutcome, ResultRecord]:
        text = json.dumps(doc, separators=(",", ":"), sort_keys=True)

        def put(db: sqlite3.Connection) -> tuple[PutOutcome, ResultRecord]:
            row = db.execute(
                "SELECT seq, status, doc, received_at FROM results WHERE task = ? AND round = ?",
                (task, round_id),
            ).fetchone()
            if row is not None and (row[1] != "failed" or status == "failed"):
                outcome = PutOutcome.DUPLICATE if row[2] == text else PutOutcome.CONFLICT
                return outcome, ResultRecord(row[0], task, round_id, row[1], json.loads(row[2]),
                                             row[3])
            if row is not None:  # a co-signed outcome replaces a deadline failure
                db.execute("DELETE FROM results WHERE seq = ?", (row[0],))
            cur = db.execute(
                "INSERT INTO results (task, round, status, doc, received_at) "
                "VALUES (?, ?, ?, ?, ?)",
                (task, round_id, status, text, now),
            )
            # The round is decided: the shares have no further use, so do not keep them.
            db.execute("DELETE FROM shares WHERE task = ? AND round = ?", (task, round_id))
            seq = cur.lastrowid
            assert seq is not None
            return PutOutcome.STORED, ResultRecord(seq, task, round_id, status, doc, now)

        return await self._tx_async(put)

    async def get_result(self, task: str, round_id: int) -> ResultRecord | None:
        rows = await self._query(
            "SELECT seq, status, doc, received_at FROM results WHERE task = ? AND round = ?",
            (task, round_id),
        )
        if not rows:
            return None
        seq, status, doc, received_at = rows[0]
        return ResultRecord(seq, task, round_id, status, json.loads(doc), received_at)

    async def list_results(
        self, task: str | None = None, since_seq: int = 0, limit: int = 100
    ) -> list[ResultRecord]:
        sql = "SELECT seq, task, round, status, doc, received_at FROM results WHERE seq > ?"
        params: list[Any] = [since_seq]
        if task is not None:
            sql += " AND task = ?"
            params.append(task)
        sql += " ORDER BY seq DESC LIMIT ?"
        params.append(limit)
        rows = await self._query(sql, params)
        return [ResultRecord(r[0], r[1], r[2], r[3], json.loads(r[4]), r[5]) for r in rows]

    # -- household outbox ---------------------------------------------------
    async def get_contribution(self, task: str, round_id: int) -> Contribution | None:
        rows = await self._query(
            "SELECT value_mac, committee, round_end, created_at FROM contributions "
            "WHERE task = ? AND round = ?",
            (task, round_id),
        )
        if not rows:
            return None
        mac, committee, round_end, created_at = rows[0]
        return Contribution(task, round_id, mac, tuple(json.loads(committee)), round_end,
                            created_at)

    async def put_contribution(
        self, contribution: Contribution, deliveries: Sequence[Delivery]
    ) -> bool:
        def put(db: sqlite3.Connection) -> bool:
            cur = db.execute(
                "INSERT INTO contributions (task, round, value_mac, committee, round_end, "
                "created_at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (task, round) DO NOTHING",
                (contribution.task, contribution.round, contribution.value_mac,
                 json.dumps(list(contribution.committee)), contribution.round_end,
                 contribution.created_at),
            )
            if cur.rowcount == 0:
                return False
            db.executemany(
                "INSERT INTO deliveries (task, round, member, ciphertext, acked, attempts) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                [(d.task, d.round, d.member, d.ciphertext, int(d.acked), d.attempts)
                 for d in deliveries],
            )
            return True

        return await self._tx_async(put)

    async def deliveries(self, task: str, round_id: int) -> list[Delivery]:
        rows = await self._query(
            "SELECT member, ciphertext, acked, attempts FROM deliveries "
            "WHERE task = ? AND round = ? AND ciphertext IS NOT NULL",
            (task, round_id),
        )
        return [Delivery(task, round_id, r[0], r[1], bool(r[2]), r[3]) for r in rows]

    async def pending_deliveries(self, min_round_end: float) -> list[Delivery]:
        rows = await self._query(
            "SELECT d.task, d.round, d.member, d.ciphertext, d.attempts FROM deliveries d "
            "JOIN contributions c ON c.task = d.task AND c.round = d.round "
            "WHERE d.acked = 0 AND d.ciphertext IS NOT NULL AND c.round_end > ?",
            (min_round_end,),
        )
        return [Delivery(r[0], r[1], r[2], r[3], False, r[4]) for r in rows]

    async def mark_delivery(self, task: str, round_id: int, member: str, acked: bool) -> None:
        await self._tx_async(
            lambda db: db.execute(
                "UPDATE deliveries SET acked = MAX(acked, ?), attempts = attempts + 1 "
                "WHERE task = ? AND round = ? AND member = ?",
                (int(acked), task, round_id, member),
            )
        )

    async def count_contributions(self) -> int:
        rows = await self._query("SELECT COUNT(*) FROM contributions")
        return int(rows[0][0])

    # -- housekeeping ---------------------------------------------------------
    async def prune(self, before: float, tombstones_before: float) -> None:
        def prune(db: sqlite3.Connection) -> None:
            db.execute(
                "UPDATE deliveries SET ciphertext = NULL WHERE ciphertext IS NOT NULL AND "
                "EXISTS (SELECT 1 FROM contributions c WHERE c.task = deliveries.task AND "
                "c.round = deliveries.round AND c.round_end < ?)",
                (before,),
            )
            db.execute("DELETE FROM commits WHERE committed_at < ?", (tombstones_before,))
            db.execute("DELETE FROM held_statements WHERE created_at < ?", (tombstones_before,))
            for table in ("noise_deals", "verify_seeds", "verify_bindings", "closing"):
                db.execute(f"DELETE FROM {table} WHERE created_at < ?",  # noqa: S608
                           (tombstones_before,))

        await self._tx_async(prune)

    async def forget_contributions(self, ended_before: float) -> None:
        def forget(db: sqlite3.Connection) -> None:
            db.execute(
                "DELETE FROM deliveries WHERE EXISTS (SELECT 1 FROM contributions c WHERE "
                "c.task = deliveries.task AND c.round = deliveries.round AND c.round_end < ?)",
                (ended_before,),
            )
            db.execute("DELETE FROM contributions WHERE round_end < ?", (ended_before,))

        await self._tx_async(forget)
        # The WAL still holds the pages as they were before the deletion.
        await self._run(lambda: self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall())

    # -- admissions -----------------------------------------------------------
    async def put_admissions(self, records: Sequence[Admission]) -> None:
        rows = [(r.seq, r.node_id, json.dumps(r.wire, separators=(",", ":"))) for r in records]
        if rows:
            await self._tx_async(lambda db: db.executemany(
                "INSERT OR IGNORE INTO admissions (seq, node_id, wire) VALUES (?, ?, ?)", rows))

    async def admissions_since(self, seq: int, limit: int) -> list[Admission]:
        rows = await self._query(
            "SELECT seq, node_id, wire FROM admissions WHERE seq > ? ORDER BY seq LIMIT ?",
            (seq, limit))
        return [Admission(int(r[0]), r[1], json.loads(r[2])) for r in rows]

    async def last_admission_seq(self) -> int:
        rows = await self._query("SELECT COALESCE(MAX(seq), 0) FROM admissions")
        return int(rows[0][0])

    async def get_admission(self, node_id: str) -> Admission | None:
        rows = await self._query(
            "SELECT seq, node_id, wire FROM admissions WHERE node_id = ?", (node_id,))
        return Admission(int(rows[0][0]), rows[0][1], json.loads(rows[0][2])) if rows else None

    # -- closing marks ----------------------------------------------------------
    async def mark_closing(self, task: str, round_id: int, now: float) -> None:
        await self._tx_async(lambda db: db.execute(
            "INSERT OR IGNORE INTO closing (task, round, created_at) VALUES (?, ?, ?)",
            (task, round_id, now)))


    # -- channels ---------------------------------------------------------------
    async def put_channel(self, record: ChannelRecord) -> bool:
        def put(db: sqlite3.Connection) -> bool:
            db.execute(
                "INSERT INTO channels (direction, peer, channel, secret, expires) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                (record.direction, record.peer, record.channel, record.secret, record.expires))
            stored = db.execute(
                "SELECT secret, expires FROM channels WHERE direction = ? AND peer = ? "
                "AND channel = ?", (record.direction, record.peer, record.channel)).fetchone()
            return bool(stored == (record.secret, record.expires))

        return await self._tx_async(put)

    async def get_channel(self, direction: str, peer: str, channel: str) -> ChannelRecord | None:
        rows = await self._query(
            "SELECT secret, expires FROM channels WHERE direction = ? AND peer = ? "
            "AND channel = ?", (direction, peer, channel))
        return ChannelRecord(direction, peer, channel, *rows[0]) if rows else None

    async def live_channels(self, direction: str, peer: str | None,
                            now: float) -> list[ChannelRecord]:
        rows = await self._query(
            "SELECT peer, channel, secret, expires FROM channels WHERE direction = ? "
            "AND (? IS NULL OR peer = ?) AND expires > ? ORDER BY expires DESC, channel",
            (direction, peer, peer, now))
        return [ChannelRecord(direction, *row) for row in rows]

    async def forget_channels(self, before: float) -> int:
        deleted = await self._tx_async(lambda db: db.execute(
            "DELETE FROM channels WHERE expires < ?", (before,)).rowcount)
        if deleted:  # secure_delete zeroed the rows; the WAL still holds the pages before
            await self._run(lambda: self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall())
        return deleted


def _put_batches(db: sqlite3.Connection, group: list[Sequence[ShareRecord]]) -> list[PutOutcome]:
    outcomes: list[PutOutcome] = []
    # In this transaction, so serialised with mark_closing (one writer at a time).
    closed = {key for key in {(r.task, r.round) for records in group for r in records}
              if db.execute("SELECT 1 FROM closing WHERE task = ? AND round = ?", key).fetchone()}
    for records in group:
        if closed and any((r.task, r.round) in closed for r in records):
            outcomes.append(PutOutcome.CLOSED)
            continue
        # One statement per share; a savepoint only where a conflict could have inserts to
        # undo (a lone share's inserts nothing).
        many = len(records) > 1
        if many:
            db.execute("SAVEPOINT batch")
        outcome = PutOutcome.DUPLICATE
        for rec in records:
            one = _put_one(db, rec)
            if one is PutOutcome.CONFLICT:
                outcome = one
                break
            if one is PutOutcome.STORED:
                outcome = one
        if many:
            if outcome is PutOutcome.CONFLICT:
                db.execute("ROLLBACK TO batch")
            db.execute("RELEASE batch")
        outcomes.append(outcome)
    return outcomes


def _put_one(db: sqlite3.Connection, rec: ShareRecord) -> PutOutcome:
    if db.execute(
        "INSERT INTO shares (task, round, sender, digest, share, received_at) "
        "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (task, round, sender) DO NOTHING",
        (rec.task, rec.round, rec.sender, rec.digest, rec.share, rec.received_at),
    ).rowcount:
        return PutOutcome.STORED
    row = db.execute("SELECT digest FROM shares WHERE task = ? AND round = ? AND sender = ?",
                     (rec.task, rec.round, rec.sender)).fetchone()
    return PutOutcome.DUPLICATE if row[0] == rec.digest else PutOutcome.CONFLICT
