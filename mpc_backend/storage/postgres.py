"""PostgreSQL storage: the same ``Storage`` semantics as SQLite, in a database server.

For a node whose load outgrows one machine's SQLite file: the database can live on its own
host, and several processes of one node can share it. One database per node: its tables
hold that node's secrets and state. The first node to open a database writes its id there
(meta ``node_id``); any other node is refused, so two nodes never share one by mistake.

Durability: a method returns only after its transaction committed, and every connection
runs with ``synchronous_commit = on`` (whatever the server's default), so a commit is
flushed to the WAL (and to a synchronous standby, if one is configured) before an
acknowledgement leaves. The server's ``fsync`` must be on; ``open`` warns if it is not.

Concurrency: several processes may open the same database. Schema creation runs under an
advisory lock; first-wins writes are single ``INSERT ... ON CONFLICT DO NOTHING``
statements; result sequence numbers come from an identity column allocated under an
advisory lock held to commit, so they are handed out in commit order and a reader
streaming ``since_seq`` never skips a result committed late with a lower number. Share
batches arriving in one process while a commit is in flight are written together in the
next transaction (group commit), as in SQLite, by one call of a PL/pgSQL function: one
round trip per group instead of two statements per batch (11x less time per envelope at
48 concurrent envelopes on a 2-core machine).
Batches are decided in arrival order; a group takes its row locks in key order, so two
processes' groups meeting the same keys do not deadlock (a group the server aborts for a
deadlock anyway, meeting a session that locks otherwise, is run again). A round marked
closing (``mark_closing``) takes no share from any process once the mark has committed:
the mark and the groups lock the round against each other (advisory locks).

Text: PostgreSQL cannot store NUL, which a member's message may bring into a misbehaviour
record; those columns hold it escaped and read back exactly.

Forgetting: a DELETE leaves the old row versions in the table's pages until a vacuum, and
even a plain VACUUM leaves their bytes in free page space. ``forget_contributions``
therefore rewrites the outbox tables (``VACUUM FULL``: new files, the old ones unlinked),
``forget_channels`` the channels table when it deleted expired secrets,
and ``prune`` (housekeeping, once a minute) rewrites the shares table when a round was
decided since its last rewrite (its shares, opened, were deleted with the decision). A
rewrite locks the table for the moment it takes; it then holds only open rounds' shares.
The shares table's rewrite waits at most ``_REWRITE_LOCK_TIMEOUT_MS`` for its lock (share
commits queue behind a waiting rewrite) and, when the table is busy, is left to the next
housekeeping.
What remains true, honestly: the rows' bytes stay in the WAL until a checkpoint recycles
the segment (and longer in WAL archives, replicas' WAL and base backups, if the server
keeps any), and in freed file-system blocks until they are reused; SQLite's
``secure_delete`` plus WAL truncation leaves less behind.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlsplit

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

if TYPE_CHECKING:
    import asyncpg

log = logging.getLogger(__name__)

INSTALL_HINT = "pip install 'hearth-mpc-backend[postgres]'"
CONNECT_TIMEOUT_S = 10.0
POOL_SIZE = 8
# pg_advisory_xact_lock keys (per database): schema creation, result sequence numbers.
_SCHEMA_LOCK: Final = 0x48656172_7468_01
_RESULTS_LOCK: Final = 0x48656172_7468_02
# Groups take their row locks in key order; one meeting a session that locks the same rows
# in another order deadlocks, and if the server aborts the group, it is run again.
_DEADLOCK_ATTEMPTS: Final = 3
# The last result (seq) whose round's deleted shares the shares table was rewritten after.
_SHARES_REWRITTEN_META: Final = "shares_rewritten_after_result"
_NODE_ID_META: Final = "node_id"  # the node this database belongs to
# How long the shares table's rewrite waits for its lock: meanwhile share commits queue.
_REWRITE_LOCK_TIMEOUT_MS: Final = 200

# JSON is kept as text, exactly as SQLite keeps it: jsonb would reorder keys, and a
# stored signed document is compared and handed out as it was written.
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS roster (
    id INTEGER PRIMARY KEY CHECK (id = 1), version BIGINT NOT NULL, wire TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS invites (
    key_id TEXT PRIMARY KEY, expires_at DOUBLE PRECISION NOT NULL, used_by TEXT,
    used_at DOUBLE PRECISION, mailbox TEXT);
CREATE TABLE IF NOT EXISTS shares (
    task TEXT NOT NULL, round BIGINT NOT NULL, sender TEXT NOT NULL, digest BYTEA NOT NULL,
    share BYTEA NOT NULL, received_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (task, round, sender));
CREATE TABLE IF NOT EXISTS commits (
    task TEXT NOT NULL, round BIGINT NOT NULL, senders TEXT NOT NULL, partial BYTEA NOT NULL,
    coordinator TEXT NOT NULL, committed_at DOUBLE PRECISION NOT NULL, dealers TEXT NOT NULL,
    statements TEXT NOT NULL, excluded TEXT NOT NULL, PRIMARY KEY (task, round));
CREATE TABLE IF NOT EXISTS noise_deals (
    task TEXT NOT NULL, round BIGINT NOT NULL, deal TEXT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL, PRIMARY KEY (task, round));
CREATE TABLE IF NOT EXISTS held_statements (
    task TEXT NOT NULL, round BIGINT NOT NULL, statement TEXT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL, PRIMARY KEY (task, round));
CREATE TABLE IF NOT EXISTS verify_seeds (
    task TEXT NOT NULL, round BIGINT NOT NULL, seed TEXT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL, PRIMARY KEY (task, round));
CREATE TABLE IF NOT EXISTS verify_bindings (
    task TEXT NOT NULL, round BIGINT NOT NULL, binding TEXT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL, PRIMARY KEY (task, round));
CREATE TABLE IF NOT EXISTS results (
    seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, task TEXT NOT NULL,
    round BIGINT NOT NULL, status TEXT NOT NULL, doc TEXT NOT NULL,
    received_at DOUBLE PRECISION NOT NULL, UNIQUE (task, round));
CREATE TABLE IF NOT EXISTS misbehaviour (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, member TEXT NOT NULL,
    kind TEXT NOT NULL, detail TEXT NOT NULL, at DOUBLE PRECISION NOT NULL);
CREATE TABLE IF NOT EXISTS contributions (
    task TEXT NOT NULL, round BIGINT NOT NULL, value_mac BYTEA NOT NULL, committee TEXT NOT NULL,
    round_end DOUBLE PRECISION NOT NULL, created_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (task, round));
CREATE TABLE IF NOT EXISTS deliveries (
    task TEXT NOT NULL, round BIGINT NOT NULL, member TEXT NOT NULL, ciphertext BYTEA,
    acked BOOLEAN NOT NULL DEFAULT FALSE, attempts INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (task, round, member));
CREATE TABLE IF NOT EXISTS admissions (
    seq BIGINT PRIMARY KEY, node_id TEXT NOT NULL UNIQUE, wire TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS closing (
    task TEXT NOT NULL, round BIGINT NOT NULL, created_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (task, round));
CREATE TABLE IF NOT EXISTS channels (
    direction TEXT NOT NULL, peer TEXT NOT NULL, channel TEXT NOT NULL, secret BYTEA NOT NULL,
    expires DOUBLE PRECISION NOT NULL, PRIMARY KEY (direction, peer, channel));
"""

_PUT_SHARES = """
-- A group of share batches (envelopes) in one call: rows come in arrival order, batch_of[i]
-- numbers row i's batch from 1. Each batch is stored all or nothing with its own outcome,
-- decided in arrival order (the first of two conflicting batches wins, as in SQLite).
-- INSERT ... ON CONFLICT DO NOTHING waits for a concurrent transaction writing the same
-- key (another process of this node) and then skips it, so one share per (task, round,
-- sender) is ever stored; the digest is then compared in a new statement, which sees
-- what that transaction committed.
-- Locks: first a shared advisory lock per (task, round) of the group, in one fixed order,
-- held to commit; mark_closing takes the exclusive one. So a mark waits for the groups in
-- flight, and a group that starts after it sees the mark (each statement here reads what
-- is committed when it starts): a batch with a marked round is 'closed'. Then the row
-- locks, in key order (two processes' groups meeting the same keys then wait for one
-- another, never crosswise): each key's first-arriving row is inserted (held[i]). The
-- batches are then decided in arrival order; a conflicting batch deletes the rows it
-- inserted (its own, uncommitted: a rollback without a subtransaction per batch), and a
-- later batch of the group may then store that key (it already holds its lock).
CREATE OR REPLACE FUNCTION hearth_put_shares(
    batch_of INTEGER[], tasks TEXT[], rounds BIGINT[], senders TEXT[], digests BYTEA[],
    shares_ BYTEA[], times DOUBLE PRECISION[], batches INTEGER) RETURNS TEXT[]
LANGUAGE plpgsql AS $$
DECLARE
    n INTEGER := coalesce(array_length(tasks, 1), 0);
    outcomes TEXT[] := array_fill('duplicate'::TEXT, ARRAY[batches]);
    held BOOLEAN[] := array_fill(FALSE, ARRAY[n]);  -- inserted in key order, for row i
    mine INTEGER[] := '{}';  -- rows the current batch inserted
    stored BYTEA;
    b INTEGER;
    k RECORD;
BEGIN
    FOR k IN SELECT DISTINCT t, r FROM unnest(tasks, rounds) AS u (t, r) ORDER BY t, r LOOP
        PERFORM pg_advisory_xact_lock_shared(1212370003, hashtext(k.t || '/' || k.r));
    END LOOP;
    FOR k IN SELECT DISTINCT u.b FROM unnest(batch_of, tasks, rounds) AS u (b, t, r)
             JOIN closing c ON c.task = u.t AND c.round = u.r LOOP
        outcomes[k.b] := 'closed';
    END LOOP;
    FOR k IN SELECT DISTINCT ON (u.t, u.r, u.s) u.i
             FROM unnest(batch_of, tasks, rounds, senders) WITH ORDINALITY AS u (b, t, r, s, i)
             WHERE outcomes[u.b] <> 'closed' ORDER BY u.t, u.r, u.s, u.i LOOP
        INSERT INTO shares (task, round, sender, digest, share, received_at)
            VALUES (tasks[k.i], rounds[k.i], senders[k.i], digests[k.i], shares_[k.i],
                    times[k.i])
            ON CONFLICT DO NOTHING;
        held[k.i] := FOUND;
    END LOOP;
    FOR i IN 1 .. n LOOP
        b := batch_of[i];
        IF i > 1 AND b <> batch_of[i - 1] THEN
            mine := '{}';
        END IF;
        CONTINUE WHEN outcomes[b] IN ('conflict', 'closed');
        IF held[i] THEN  -- stored above, the first of the group with this key
            outcomes[b] := 'stored';
            mine := mine || i;
            CONTINUE;
        END IF;
        INSERT INTO shares (task, round, sender, digest, share, received_at)
            VALUES (tasks[i], rounds[i], senders[i], digests[i], shares_[i], times[i])
            ON CONFLICT DO NOTHING;
        IF FOUND THEN
            outcomes[b] := 'stored';
            mine := mine || i;
            CONTINUE;
        END IF;
        SELECT digest INTO stored FROM shares
            WHERE task = tasks[i] AND round = rounds[i] AND sender = senders[i];
        IF stored IS DISTINCT FROM digests[i] THEN
            outcomes[b] := 'conflict';
            -- Its rows so far, and those inserted above that it has not reached yet.
            DELETE FROM shares s USING generate_subscripts(batch_of, 1) AS m (j)
                WHERE batch_of[m.j] = b AND (m.j = ANY (mine) OR held[m.j])
                AND s.task = tasks[m.j] AND s.round = rounds[m.j] AND s.sender = senders[m.j];
        END IF;
    END LOOP;
    RETURN outcomes;
END $$;

-- 1212370003 ("HCLS"): the closing locks' class in the two-integer advisory key space, apart
-- from the single-bigint keys of the schema and results. A hash collision only makes two
-- rounds wait on each other.
CREATE OR REPLACE FUNCTION hearth_mark_closing(t TEXT, r BIGINT, at DOUBLE PRECISION)
RETURNS VOID LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(1212370003, hashtext(t || '/' || r));
    INSERT INTO closing (task, round, created_at) VALUES (t, r, at) ON CONFLICT DO NOTHING;
END $$;
"""


class StorageUnavailableError(Exception):
    """The database cannot be used; the message says what to check (never the password)."""


def _asyncpg() -> Any:
    try:
        import asyncpg  # noqa: PLC0415 - an optional dependency
    except ImportError:
        raise StorageUnavailableError(
            f"a PostgreSQL database URL is set but asyncpg is not installed; run: {INSTALL_HINT}"
        ) from None
    return asyncpg


def describe(url: str) -> str:
    """``user@host:port/database`` of a database URL, without the password."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or "localhost"
        port = parts.port or 5432
    except ValueError:
        return "(an unparsable database URL)"
    user = f"{parts.username}@" if parts.username else ""
    return f"{user}{host}:{port}{parts.path or '/'}"


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


# PostgreSQL text cannot hold NUL, which a member's message may carry into a misbehaviour
# detail: those columns keep it escaped (backslash first, so the escape reverses exactly).
_ESCAPED: Final = re.compile(r"\\(.)", re.DOTALL)


def _escape_nul(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\0", "\\0")


def _unescape_nul(text: str) -> str:
    return _ESCAPED.sub(lambda m: "\0" if m[1] == "0" else m[1], text) if "\\" in text else text


class PostgresStorage(Storage):
    """Storage in the PostgreSQL database at ``url`` (``postgresql://user:pw@host:port/db``);
    ``node_id``: the node opening it (``open`` claims the database for it, or refuses one
    another node claimed)."""

    def __init__(self, url: str, node_id: str | None = None) -> None:
        self._asyncpg = _asyncpg()
        self._url = url
        self._node_id = node_id
        self._pool: asyncpg.Pool | None = None
        # Share batches arriving while a group is in flight go into the next one.
        self._shares = Coalescer(self._put_group)

    def __repr__(self) -> str:
        return f"PostgresStorage({describe(self._url)})"

    # -- plumbing -----------------------------------------------------------
    async def open(self) -> None:
        pg = self._asyncpg
        try:
            self._pool = await pg.create_pool(
                self._url, min_size=1, max_size=POOL_SIZE, timeout=CONNECT_TIMEOUT_S,
                server_settings={"synchronous_commit": "on", "application_name": "hearth"})
            async with self._tx() as conn:
                await conn.execute("SELECT pg_advisory_xact_lock($1)", _SCHEMA_LOCK)
                await conn.execute(_SCHEMA)
                await conn.execute(_PUT_SHARES)
                fsync = await conn.fetchval("SHOW fsync")
                owner = self._node_id
                if owner is not None:
                    await conn.execute("INSERT INTO meta (key, value) VALUES ($1, $2) "
                                       "ON CONFLICT (key) DO NOTHING", _NODE_ID_META, owner)
                    owner = await conn.fetchval("SELECT value FROM meta WHERE key = $1",
                                                _NODE_ID_META)
        except (OSError, TimeoutError, ValueError, OverflowError, pg.PostgresError,
                pg.InterfaceError) as err:
            await self.close()
            detail = f"{type(err).__name__}: {err}"
            try:
                password = urlsplit(self._url).password
            except ValueError:  # the config refuses such URLs; still, quote nothing of it
                password, detail = None, "the database URL cannot be read"
            if password:
                detail = detail.replace(password, "***")
            raise StorageUnavailableError(
                f"cannot use the PostgreSQL database {describe(self._url)} ({detail}); check "
                "that the server is running and reachable there (pg_isready -h HOST -p PORT), "
                "that the database exists and that the user and password in the database URL "
                "(config.json database_url or HEARTH_DATABASE_URL) are right") from None
        if owner != self._node_id:
            await self.close()
            raise StorageUnavailableError(
                f"the PostgreSQL database {describe(self._url)} holds the state of node {owner}, "
                f"not of this node ({self._node_id}): one database per node; give this node "
                "a database of its own (init --database-url)")
        if fsync != "on":
            log.warning("the PostgreSQL server runs with fsync=%s: acknowledged shares can be "
                        "lost in a power cut; turn fsync on", fsync)

    async def close(self) -> None:
        await self._shares.drain()
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await pool.close()

    @property
    def _db(self) -> asyncpg.Pool:
        if self._pool is None:
            raise RuntimeError("storage is not open")
        return self._pool

    @asynccontextmanager
    async def _tx(self) -> AsyncIterator[asyncpg.Connection]:
        async with self._db.acquire() as conn, conn.transaction():
            yield conn

    # -- meta -------------------------------------------------------------
    async def get_meta(self, key: str) -> str | None:
        value: str | None = await self._db.fetchval("SELECT value FROM meta WHERE key = $1", key)
        return value

    async def set_meta(self, key: str, value: str) -> None:
        await self._db.execute(
            "INSERT INTO meta (key, value) VALUES ($1, $2) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value", key, value)

    # -- roster -----------------------------------------------------------
    async def get_roster(self) -> dict[str, Any] | None:
        wire = await self._db.fetchval("SELECT wire FROM roster WHERE id = 1")
        return None if wire is None else json.loads(wire)

    async def put_roster(self, version: int, wire: dict[str, Any]) -> bool:
        stored = await self._db.fetchval(
            "INSERT INTO roster (id, version, wire) VALUES (1, $1, $2) ON CONFLICT (id) "
            "DO UPDATE SET version = excluded.version, wire = excluded.wire "
            "WHERE roster.version < excluded.version RETURNING 1", version, _dumps(wire))
        return stored is not None

    # -- invites ----------------------------------------------------------
    async def add_invite(self, key_id: str, expires_at: float,
                         mailbox: str | None = None) -> None:
        await self._db.execute(
            "INSERT INTO invites (key_id, expires_at, mailbox) VALUES ($1, $2, $3)",
            key_id, expires_at, mailbox)

    async def lapsed_invite_mailboxes(self, now: float) -> list[tuple[str, str]]:
        rows = await self._db.fetch(
            "SELECT key_id, mailbox FROM invites WHERE used_by IS NULL AND expires_at <= $1 "
            "AND mailbox IS NOT NULL", now)
        return [(row[0], row[1]) for row in rows]

    async def forget_invite_mailbox(self, key_id: str) -> None:
        await self._db.execute("UPDATE invites SET mailbox = NULL WHERE key_id = $1", key_id)

    async def consume_invite(self, key_id: str, now: float, node_id: str) -> InviteStatus:
        async with self._tx() as conn:
            row = await conn.fetchrow(
                "SELECT expires_at, used_by FROM invites WHERE key_id = $1 FOR UPDATE", key_id)
            if row is None:
                return InviteStatus.UNKNOWN
            expires_at, used_by = row
            if used_by is not None:
                return InviteStatus.OK if used_by == node_id else InviteStatus.USED
            if now >= expires_at:
                return InviteStatus.EXPIRED
            await conn.execute("UPDATE invites SET used_by = $1, used_at = $2 WHERE key_id = $3",
                               node_id, now, key_id)
            return InviteStatus.OK

    # -- shares -------------------------------------------------------------
    async def put_shares(self, records: Sequence[ShareRecord]) -> PutOutcome:
        return await self._shares.submit(records)

    async def _put_group(self, group: list[Sequence[ShareRecord]]) -> list[PutOutcome]:
        """All batches of a group in one statement (one transaction, one round trip), in
        arrival order (the statement takes its row locks in key order)."""
        batches = [(records, index) for index, records in enumerate(group) if records]
        rows = [(b, r) for b, (records, _) in enumerate(batches, start=1) for r in records]
        args = ([b for b, _ in rows], [r.task for _, r in rows], [r.round for _, r in rows],
                [r.sender for _, r in rows], [r.digest for _, r in rows],
                [r.share for _, r in rows], [r.received_at for _, r in rows], len(batches))
        started = time.perf_counter()
        try:
            for attempt in range(1, _DEADLOCK_ATTEMPTS + 1):
                try:
                    stored = await self._db.fetchval(
                        "SELECT hearth_put_shares($1, $2, $3, $4, $5, $6, $7, $8)", *args)
                    break
                except self._asyncpg.DeadlockDetectedError:
                    if attempt == _DEADLOCK_ATTEMPTS:
                        raise
                    log.info("share group met another session's crosswise; storing it again")
        finally:  # one group at a time (the coalescer), so no other writer of the counter
            self.share_commit_s += time.perf_counter() - started
        outcomes = [PutOutcome.DUPLICATE] * len(group)  # an empty batch stores nothing
        for (_, index), outcome in zip(batches, stored or (), strict=True):
            outcomes[index] = PutOutcome(outcome)
        return outcomes

    async def mark_closing(self, task: str, round_id: int, now: float) -> None:
        # Its exclusive lock waits for the groups storing shares of this round to commit.
        await self._db.execute("SELECT hearth_mark_closing($1, $2, $3)", task, round_id, now)

    async def roster_version(self) -> int | None:
        version = await self._db.fetchval("SELECT version FROM roster WHERE id = 1")
        return None if version is None else int(version)

    async def held_senders(self, task: str, round_id: int) -> list[str]:
        # COLLATE "C": byte order, as SQLite sorts, whatever the database's collation.
        rows = await self._db.fetch(
            'SELECT sender FROM shares WHERE task = $1 AND round = $2 ORDER BY sender COLLATE "C"',
            task, round_id)
        return [row[0] for row in rows]

    async def load_shares(self, task: str, round_id: int, senders: Sequence[str]) -> list[bytes]:
        rows = dict(await self._db.fetch(
            "SELECT sender, share FROM shares WHERE task = $1 AND round = $2", task, round_id))
        missing = [s for s in senders if s not in rows]
        if missing:
            raise KeyError(f"no share from {missing[0]} for {task} round {round_id}")
        return [rows[s] for s in senders]

    async def rounds_holding_shares(self) -> list[tuple[str, int]]:
        rows = await self._db.fetch(
            "SELECT DISTINCT s.task, s.round FROM shares s WHERE NOT EXISTS "
            "(SELECT 1 FROM results r WHERE r.task = s.task AND r.round = s.round)")
        return [(row[0], int(row[1])) for row in rows]

    # -- commitments and noise ----------------------------------------------
    async def get_commit(self, task: str, round_id: int) -> RoundCommit | None:
        row = await self._db.fetchrow(
            "SELECT senders, partial, coordinator, committed_at, dealers, statements, excluded "
            "FROM commits WHERE task = $1 AND round = $2", task, round_id)
        if row is None:
            return None
        senders, partial, coordinator, committed_at, dealers, statements, excluded = row
        return RoundCommit(task, round_id, tuple(json.loads(senders)), partial, coordinator,
                           committed_at, tuple(json.loads(dealers)),
                           tuple(json.loads(statements)),
                           tuple((h, v) for h, v in json.loads(excluded)))

    async def put_commit(self, commit: RoundCommit) -> RoundCommit:
        await self._db.execute(
            "INSERT INTO commits (task, round, senders, partial, coordinator, committed_at, "
            "dealers, statements, excluded) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) "
            "ON CONFLICT (task, round) DO NOTHING",
            commit.task, commit.round, json.dumps(list(commit.senders)), commit.partial,
            commit.coordinator, commit.committed_at, json.dumps(list(commit.dealers)),
            json.dumps(list(commit.statements)), json.dumps([list(e) for e in commit.excluded]))
        stored = await self.get_commit(commit.task, commit.round)
        assert stored is not None
        return stored

    async def _get_once(self, table: str, task: str, round_id: int) -> Any:
        text = await self._db.fetchval(
            f"SELECT {ONCE_COLUMNS[table]} FROM {table} WHERE task = $1 AND round = $2",  # noqa: S608
            task, round_id)
        return None if text is None else json.loads(text)

    async def _put_once(self, table: str, task: str, round_id: int, value: Any, now: float) -> Any:
        await self._db.execute(
            f"INSERT INTO {table} (task, round, {ONCE_COLUMNS[table]}, created_at) "  # noqa: S608
            "VALUES ($1, $2, $3, $4) ON CONFLICT (task, round) DO NOTHING",
            task, round_id, json.dumps(value), now)
        stored = await self._get_once(table, task, round_id)
        assert stored is not None
        return stored

    # -- misbehaviour -------------------------------------------------------
    async def add_misbehaviour(self, record: Misbehaviour) -> None:
        await self._db.execute(
            "INSERT INTO misbehaviour (member, kind, detail, at) VALUES ($1, $2, $3, $4)",
            _escape_nul(record.member), _escape_nul(record.kind), _escape_nul(record.detail),
            record.at)

    async def list_misbehaviour(self, limit: int = 1000) -> list[Misbehaviour]:
        rows = await self._db.fetch(
            "SELECT member, kind, detail, at FROM misbehaviour ORDER BY id DESC LIMIT $1", limit)
        return [Misbehaviour(_unescape_nul(r[0]), _unescape_nul(r[1]), _unescape_nul(r[2]), r[3])
                for r in rows]

    # -- results ------------------------------------------------------------
    async def put_result(
        self, task: str, round_id: int, status: str, doc: dict[str, Any], now: float
    ) -> tuple[PutOutcome, ResultRecord]:
        text = json.dumps(doc, separators=(",", ":"), sort_keys=True)
        async with self._tx() as conn:
            # Held to commit: sequence numbers are allocated (and become visible) in order,
            # and concurrent writers of one round see each other's result.
            await conn.execute("SELECT pg_advisory_xact_lock($1)", _RESULTS_LOCK)
            row = await conn.fetchrow(
                "SELECT seq, status, doc, received_at FROM results WHERE task = $1 AND round = $2",
                task, round_id)
            if row is not None and (row[1] != "failed" or status == "failed"):
                outcome = PutOutcome.DUPLICATE if row[2] == text else PutOutcome.CONFLICT
                return outcome, ResultRecord(row[0], task, round_id, row[1], json.loads(row[2]),
                                             row[3])
            if row is not None:  # a co-signed outcome replaces a deadline failure
                await conn.execute("DELETE FROM results WHERE seq = $1", row[0])
            seq = await conn.fetchval(
                "INSERT INTO results (task, round, status, doc, received_at) "
                "VALUES ($1, $2, $3, $4, $5) RETURNING seq", task, round_id, status, text, now)
            # The round is decided: the shares have no further use, so do not keep them.
            await conn.execute("DELETE FROM shares WHERE task = $1 AND round = $2",
                               task, round_id)
        return PutOutcome.STORED, ResultRecord(seq, task, round_id, status, doc, now)

    async def get_result(self, task: str, round_id: int) -> ResultRecord | None:
        row = await self._db.fetchrow(
            "SELECT seq, status, doc, received_at FROM results WHERE task = $1 AND round = $2",
            task, round_id)
        if row is None:
            return None
        seq, status, doc, received_at = row
        return ResultRecord(seq, task, round_id, status, json.loads(doc), received_at)

    async def list_results(
        self, task: str | None = None, since_seq: int = 0, limit: int = 100
    ) -> list[ResultRecord]:
        rows = await self._db.fetch(
            "SELECT seq, task, round, status, doc, received_at FROM results "
            "WHERE seq > $1 AND ($2::text IS NULL OR task = $2) ORDER BY seq DESC LIMIT $3",
            since_seq, task, limit)
        return [ResultRecord(r[0], r[1], r[2], r[3], json.loads(r[4]), r[5]) for r in rows]

    # -- household outbox ---------------------------------------------------
    async def get_contribution(self, task: str, round_id: int) -> Contribution | None:
        row = await self._db.fetchrow(
            "SELECT value_mac, committee, round_end, created_at FROM contributions "
            "WHERE task = $1 AND round = $2", task, round_id)
        if row is None:
            return None
        mac, committee, round_end, created_at = row
        return Contribution(task, round_id, mac, tuple(json.loads(committee)), round_end,
                            created_at)

    async def put_contribution(
        self, contribution: Contribution, deliveries: Sequence[Delivery]
    ) -> bool:
        async with self._tx() as conn:
            stored = await conn.fetchval(
                "INSERT INTO contributions (task, round, value_mac, committee, round_end, "
                "created_at) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (task, round) "
                "DO NOTHING RETURNING 1",
                contribution.task, contribution.round, contribution.value_mac,
                json.dumps(list(contribution.committee)), contribution.round_end,
                contribution.created_at)
            if stored is None:
                return False
            await conn.executemany(
                "INSERT INTO deliveries (task, round, member, ciphertext, acked, attempts) "
                "VALUES ($1, $2, $3, $4, $5, $6)",
                [(d.task, d.round, d.member, d.ciphertext, d.acked, d.attempts)
                 for d in deliveries])
            return True

    async def deliveries(self, task: str, round_id: int) -> list[Delivery]:
        rows = await self._db.fetch(
            "SELECT member, ciphertext, acked, attempts FROM deliveries "
            "WHERE task = $1 AND round = $2 AND ciphertext IS NOT NULL", task, round_id)
        return [Delivery(task, round_id, r[0], r[1], r[2], r[3]) for r in rows]

    async def pending_deliveries(self, min_round_end: float) -> list[Delivery]:
        rows = await self._db.fetch(
            "SELECT d.task, d.round, d.member, d.ciphertext, d.attempts FROM deliveries d "
            "JOIN contributions c ON c.task = d.task AND c.round = d.round "
            "WHERE NOT d.acked AND d.ciphertext IS NOT NULL AND c.round_end > $1",
            min_round_end)
        return [Delivery(r[0], r[1], r[2], r[3], False, r[4]) for r in rows]

    async def mark_delivery(self, task: str, round_id: int, member: str, acked: bool) -> None:
        await self._db.execute(
            "UPDATE deliveries SET acked = acked OR $1, attempts = attempts + 1 "
            "WHERE task = $2 AND round = $3 AND member = $4", acked, task, round_id, member)

    async def count_contributions(self) -> int:
        return int(await self._db.fetchval("SELECT COUNT(*) FROM contributions"))

    # -- housekeeping ---------------------------------------------------------
    async def prune(self, before: float, tombstones_before: float) -> None:
        async with self._tx() as conn:
            await conn.execute(
                "UPDATE deliveries SET ciphertext = NULL WHERE ciphertext IS NOT NULL AND "
                "EXISTS (SELECT 1 FROM contributions c WHERE c.task = deliveries.task AND "
                "c.round = deliveries.round AND c.round_end < $1)", before)
            for table, column in (("commits", "committed_at"), ("held_statements", "created_at"),
                                  ("noise_deals", "created_at"), ("verify_seeds", "created_at"),
                                  ("verify_bindings", "created_at"), ("closing", "created_at")):
                await conn.execute(f"DELETE FROM {table} WHERE {column} < $1",  # noqa: S608
                                   tombstones_before)
        # Stored in the database, so a rewrite missed before a restart is not forgotten.
        latest = await self._db.fetchval("SELECT COALESCE(MAX(seq), 0) FROM results")
        if (latest > int(await self.get_meta(_SHARES_REWRITTEN_META) or 0)
                and await self._rewrite_shares()):
            await self.set_meta(_SHARES_REWRITTEN_META, str(latest))

    async def _rewrite_shares(self) -> bool:
        """VACUUM FULL the shares table unless a session holds it (False: skipped, to be
        tried at the next housekeeping). Waiting for its lock would queue every share
        commit of every process behind the rewrite; the rewrite itself still holds the
        table while it runs (it then holds only open rounds' shares)."""
        async with self._db.acquire() as conn:
            await conn.execute(f"SET lock_timeout = '{_REWRITE_LOCK_TIMEOUT_MS}ms'")
            try:
                await conn.execute("VACUUM FULL shares")
            except self._asyncpg.LockNotAvailableError:
                log.info("the shares table is in use; rewriting it at the next housekeeping")
                return False
            finally:
                await conn.execute("RESET lock_timeout")
        return True

    async def forget_contributions(self, ended_before: float) -> None:
        async with self._tx() as conn:
            await conn.execute(
                "DELETE FROM deliveries WHERE EXISTS (SELECT 1 FROM contributions c WHERE "
                "c.task = deliveries.task AND c.round = deliveries.round AND c.round_end < $1)",
                ended_before)
            deleted = await conn.execute("DELETE FROM contributions WHERE round_end < $1",
                                         ended_before)
        if deleted != "DELETE 0":
            # The deleted versions (and those prune's UPDATE left) stay in the pages until
            # rewritten; VACUUM FULL writes new files and unlinks the old ones. It locks the
            # two outbox tables for the moment it takes (they hold only open rounds' rows).
            await self._db.execute("VACUUM FULL contributions, deliveries")

    # -- admissions -----------------------------------------------------------
    async def put_admissions(self, records: Sequence[Admission]) -> None:
        if not records:
            return
        async with self._tx() as conn:
            await conn.executemany(
                "INSERT INTO admissions (seq, node_id, wire) VALUES ($1, $2, $3) "
                "ON CONFLICT DO NOTHING",
                [(r.seq, r.node_id, _dumps(r.wire)) for r in records])

    async def admissions_since(self, seq: int, limit: int) -> list[Admission]:
        rows = await self._db.fetch(
            "SELECT seq, node_id, wire FROM admissions WHERE seq > $1 ORDER BY seq LIMIT $2",
            seq, limit)
        return [Admission(row[0], row[1], json.loads(row[2])) for row in rows]

    async def last_admission_seq(self) -> int:
        return int(await self._db.fetchval("SELECT COALESCE(MAX(seq), 0) FROM admissions"))

    async def get_admission(self, node_id: str) -> Admission | None:
        row = await self._db.fetchrow(
            "SELECT seq, node_id, wire FROM admissions WHERE node_id = $1", node_id)
        return None if row is None else Admission(row[0], row[1], json.loads(row[2]))

    # -- channels ---------------------------------------------------------------
    async def put_channel(self, record: ChannelRecord) -> bool:
        await self._db.execute(
            "INSERT INTO channels (direction, peer, channel, secret, expires) "
            "VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
            record.direction, record.peer, record.channel, record.secret, record.expires)
        # A statement of its own: it sees a row another process committed meanwhile.
        stored = await self.get_channel(record.direction, record.peer, record.channel)
        return stored == record

    async def get_channel(self, direction: str, peer: str, channel: str) -> ChannelRecord | None:
        row = await self._db.fetchrow(
            "SELECT secret, expires FROM channels WHERE direction = $1 AND peer = $2 "
            "AND channel = $3", direction, peer, channel)
        return None if row is None else ChannelRecord(direction, peer, channel, *row)

    async def live_channels(self, direction: str, peer: str | None,
                            now: float) -> list[ChannelRecord]:
        rows = await self._db.fetch(
            "SELECT peer, channel, secret, expires FROM channels WHERE direction = $1 "
            "AND ($2::text IS NULL OR peer = $2) AND expires > $3 "
            'ORDER BY expires DESC, channel COLLATE "C"', direction, peer, now)
        return [ChannelRecord(direction, *row) for row in rows]

    async def forget_channels(self, before: float) -> int:
        status = await self._db.execute("DELETE FROM channels WHERE expires < $1", before)
        deleted = int(status.split()[-1])
        if deleted:
            # As forget_contributions: the deleted versions stay in the pages until rewritten.
            await self._db.execute("VACUUM FULL channels")
        return deleted
