"""What PostgreSQL storage must do beyond the shared contract (tests/backend/
test_node_storage.py runs that on both backends): several processes of one node share the
database, forgotten rows leave the table files, and a bad URL fails clearly."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from mpc_backend.node.config import ConfigError, NodeConfig
from mpc_backend.storage import (
    DB_FILE_NAME,
    Contribution,
    Delivery,
    PostgresStorage,
    PutOutcome,
    ShareRecord,
    StorageUnavailableError,
    open_storage,
)
from mpc_backend.storage.postgres import _RESULTS_LOCK
from tests.backend.nodes import _ENV, REPO, cli, cli_json, free_port
from tests.postgres import PostgresServer

pytestmark = pytest.mark.postgres

SENDERS = [f"h{i:03d}" for i in range(60)]


def share(sender: str, digest: bytes, round_id: int = 7) -> ShareRecord:
    return ShareRecord("temp", round_id, sender, digest, digest * 8, 1.0)


async def test_two_writers_store_exactly_one_share_per_sender(postgres_url: str) -> None:
    """Two storages on one database (two pools: two server sessions each committing its own
    groups, as two processes of a node do) open it at once, then race to store a different
    share from every sender, one envelope each: per sender exactly one wins, the other sees
    a conflict."""
    first, second = PostgresStorage(postgres_url), PostgresStorage(postgres_url)
    await asyncio.gather(first.open(), second.open())  # both create the schema at once
    try:
        outcomes = await asyncio.gather(*(
            store.put_shares([share(s, tag), share(s, tag, round_id=8)])
            for s in SENDERS for store, tag in ((first, b"A"), (second, b"B"))))
        for i, sender in enumerate(SENDERS):
            pair = outcomes[2 * i: 2 * i + 2]
            assert sorted(o.value for o in pair) == ["conflict", "stored"], (sender, pair)
            winner = b"A" if pair[0] is PutOutcome.STORED else b"B"
            for round_id in (7, 8):  # the winner's whole batch, none of the loser's
                assert await first.load_shares("temp", round_id, [sender]) == [winner * 8]
        assert await second.held_senders("temp", 7) == SENDERS
        # Resending the winner's batch from either writer is a duplicate, not a second row.
        again = [share(SENDERS[0], b"A" if outcomes[0] is PutOutcome.STORED else b"B")]
        assert await second.put_shares(again) is PutOutcome.DUPLICATE
    finally:
        await first.close()
        await second.close()


async def test_result_sequence_numbers_are_handed_out_in_commit_order(
    postgres_url: str
) -> None:
    """Concurrent writers get distinct sequence numbers; a number is allocated only by the
    holder of the results lock, which it keeps to commit, so numbers become visible in
    order and a reader streaming ``since_seq`` skips none."""
    import asyncpg  # noqa: PLC0415 - only in the host env, where postgres tests run

    stores = [PostgresStorage(postgres_url) for _ in range(3)]
    for store in stores:
        await store.open()
    other = await asyncpg.connect(postgres_url)
    try:
        records = await asyncio.gather(*(
            stores[r % 3].put_result("temp", r, "released", {"result": {"round": r}, "sig": "s"},
                                     float(r))
            for r in range(30)))
        assert sorted(rec.seq for _, rec in records) == list(range(1, 31))
        # Another session in the middle of writing a result holds the lock: a writer waits.
        await other.execute("SELECT pg_advisory_lock($1)", _RESULTS_LOCK)
        waiting = asyncio.create_task(stores[0].put_result("temp", 99, "released", {}, 1.0))
        await asyncio.sleep(0.3)
        assert not waiting.done()
        await other.execute("SELECT pg_advisory_unlock($1)", _RESULTS_LOCK)
        assert (await waiting)[1].seq == 31
    finally:
        await other.close()
        for store in stores:
            await store.close()


def _database_files(server: PostgresServer, url: str) -> bytes:
    """Every byte of the database's table files (after a checkpoint wrote them out)."""
    name = url.rsplit("/", 1)[1]
    server.psql("CHECKPOINT")
    oid = server.psql(f"SELECT oid FROM pg_database WHERE datname = '{name}'").stdout.strip()
    return b"".join(p.read_bytes() for p in (server.data_dir / "base" / oid).iterdir()
                    if p.is_file())


async def test_forgotten_contributions_leave_the_table_files(
    postgres_server: PostgresServer, postgres_url: str
) -> None:
    """A DELETE alone leaves the value MAC and sealed shares in the pages; forgetting must
    rewrite them away (the WAL still holds them until recycled: see postgres.py)."""
    storage = PostgresStorage(postgres_url)
    await storage.open()
    mac, sealed = b"MAC-d1c3f5a7-secret", b"SEALED-9b8e2f-share"
    try:
        await storage.put_contribution(
            Contribution("temp", 7, mac, ("m1",), round_end=100.0, created_at=1.0),
            [Delivery("temp", 7, "m1", sealed, False, 0)])
        await storage.mark_delivery("temp", 7, "m1", True)
        # A round still open keeps its rows, on the same pages: plain VACUUM would only
        # mark the dead rows' space free, and an empty table's pages would simply go.
        await storage.put_contribution(
            Contribution("temp", 8, b"mac-8", ("m1",), round_end=300.0, created_at=2.0),
            [Delivery("temp", 8, "m1", b"sealed-8", False, 0)])
        files = _database_files(postgres_server, postgres_url)
        assert mac in files and sealed in files  # the check can see them
        await storage.forget_contributions(ended_before=200.0)
        assert await storage.count_contributions() == 1
        files = _database_files(postgres_server, postgres_url)
        assert mac not in files and sealed not in files
    finally:
        await storage.close()


async def test_decided_rounds_shares_leave_the_table_files(
    postgres_server: PostgresServer, postgres_url: str
) -> None:
    """Deciding a round deletes its (opened) shares; housekeeping then rewrites the shares
    table, so their bytes leave the table files while an open round's stay readable."""
    storage = PostgresStorage(postgres_url)
    await storage.open()
    decided, still_open = b"SHARE-7c1e9d-decided", b"SHARE-30a6b4-open"
    try:
        await storage.put_shares([ShareRecord("temp", 7, s, s.encode(), decided, 1.0)
                                  for s in SENDERS[:3]])
        await storage.put_shares([ShareRecord("temp", 8, "h000", b"d", still_open, 1.0)])
        await storage.put_result("temp", 7, "released", {"result": {"round": 7}}, 2.0)
        assert await storage.held_senders("temp", 7) == []
        assert decided in _database_files(postgres_server, postgres_url)  # a dead row still
        await storage.prune(before=0.0, tombstones_before=0.0)
        files = _database_files(postgres_server, postgres_url)
        assert decided not in files and still_open in files
        assert await storage.load_shares("temp", 8, ["h000"]) == [still_open]
        # Nothing decided since: no second rewrite (the table keeps its file).
        filenode = "SELECT pg_relation_filenode('shares')"
        before = await storage._db.fetchval(filenode)
        await storage.prune(before=0.0, tombstones_before=0.0)
        assert await storage._db.fetchval(filenode) == before
    finally:
        await storage.close()


async def test_the_shares_rewrite_is_skipped_while_the_table_is_busy(postgres_url: str) -> None:
    """Housekeeping does not wait for the shares table (every share commit would queue
    behind it): while another session holds it, prune returns at once without rewriting,
    and the next prune after it is free does the rewrite."""
    import asyncpg  # noqa: PLC0415 - only in the host env, where postgres tests run

    storage = PostgresStorage(postgres_url)
    await storage.open()
    other = await asyncpg.connect(postgres_url)
    try:
        await storage.put_shares([share("h000", b"d")])
        await storage.put_result("temp", 7, "released", {"result": {"round": 7}}, 2.0)
        filenode = "SELECT pg_relation_filenode('shares')"
        before = await storage._db.fetchval(filenode)
        reader = other.transaction()
        await reader.start()
        await other.fetch("SELECT 1 FROM shares LIMIT 1")  # holds it until commit
        await asyncio.wait_for(storage.prune(before=0.0, tombstones_before=0.0), 2.0)
        assert await storage._db.fetchval(filenode) == before
        await reader.commit()
        await storage.prune(before=0.0, tombstones_before=0.0)
        assert await storage._db.fetchval(filenode) != before
    finally:
        await other.close()
        await storage.close()


async def test_a_database_belongs_to_the_first_node_that_opens_it(postgres_url: str) -> None:
    """One database per node: the first node to open it is stored there, and another node
    opening it is refused (before any of its state is read) in a line naming both."""
    first = PostgresStorage(postgres_url, "node-a")
    await first.open()
    await first.set_meta("k", "a's")
    await first.close()
    other = PostgresStorage(postgres_url, "node-b")
    with pytest.raises(StorageUnavailableError, match=r"holds the state of node node-a, not of "
                                                      r"this node \(node-b\): one database"):
        await other.open()
    again = PostgresStorage(postgres_url, "node-a")  # its own node, restarted: welcome
    await again.open()
    try:
        assert await again.get_meta("k") == "a's"
    finally:
        await again.close()


async def test_unreachable_server_fails_clearly_without_the_password(tmp_path: Path) -> None:
    url = f"postgresql://hearth:s3cret-pw@127.0.0.1:{free_port()}/node"
    storage = open_storage(tmp_path, url)
    with pytest.raises(StorageUnavailableError) as caught:
        await storage.open()
    message = str(caught.value)
    assert "hearth@127.0.0.1" in message and "pg_isready" in message
    assert "s3cret-pw" not in message and "s3cret-pw" not in repr(storage)


def test_database_url_setting_stays_out_of_repr_and_default_config() -> None:
    config = NodeConfig(name="h", listen_host="127.0.0.1", listen_port=8731, public_url=None)
    assert "database_url" not in config.to_dict()  # existing config files keep their shape
    url = "postgresql://hearth:s3cret-pw@db.lan/node"
    with_db = dataclasses.replace(config, database_url=url)
    assert NodeConfig.from_dict(with_db.to_dict()) == with_db
    assert "s3cret-pw" not in repr(with_db)
    with pytest.raises(ConfigError, match="postgresql://"):
        dataclasses.replace(config, database_url="mysql://db.lan/node")


def test_serve_reports_an_unreachable_database_and_the_environment_wins(
    tmp_path: Path
) -> None:
    """``init --database-url`` stores the setting; ``serve`` fails in one line naming the
    database without its password; HEARTH_DATABASE_URL overrides the stored URL."""
    data_dir = tmp_path / "node"
    stored = f"postgresql://hearth:s3cret-pw@127.0.0.1:{free_port()}/stored"
    info = cli_json("init", "--data-dir", str(data_dir), "--name", "h", "--listen",
                    f"127.0.0.1:{free_port()}", "--database-url", stored)
    assert info["node_id"]
    assert json.loads((data_dir / "config.json").read_text())["database_url"] == stored
    assert stat.S_IMODE((data_dir / "config.json").stat().st_mode) == 0o600
    for env, name in (({}, "stored"), ({"HEARTH_DATABASE_URL": stored.replace(
            "stored", "from_env")}, "from_env")):
        proc = subprocess.run(
            [sys.executable, "-m", "mpc_backend", "serve", "--data-dir", str(data_dir)],
            capture_output=True, text=True, timeout=60, cwd=REPO, env={**_ENV, **env},
            check=False)
        assert proc.returncode == 1, proc.stderr
        assert "error: cannot use the PostgreSQL database hearth@127.0.0.1" in proc.stderr
        assert f"/{name} " in proc.stderr and "s3cret-pw" not in proc.stderr
        assert not (data_dir / DB_FILE_NAME).exists()


@pytest.mark.parametrize(("url", "problem"), [
    ("postgresql://hearth:s3cret-pw@127.0.0.1:99999/node", "has a port that is not a number"),
    ("postgresql://hearth:s3cret-pw@[::1/node", "cannot be read"),
])
def test_a_malformed_database_url_is_one_clear_line(tmp_path: Path, url: str,
                                                     problem: str) -> None:
    """Refused when given (init) and when it comes from the environment (serve): one
    ``error:`` line naming the problem, no traceback, no password."""
    data_dir = tmp_path / "node"
    init = cli("init", "--data-dir", str(data_dir), "--name", "h", "--listen",
               f"127.0.0.1:{free_port()}", "--database-url", url, check=False)
    cli("init", "--data-dir", str(data_dir), "--name", "h", "--listen",
        f"127.0.0.1:{free_port()}", "--database-url", "postgresql://hearth@127.0.0.1/node")
    serve = subprocess.run(
        [sys.executable, "-m", "mpc_backend", "serve", "--data-dir", str(data_dir)],
        capture_output=True, text=True, timeout=60, cwd=REPO,
        env={**_ENV, "HEARTH_DATABASE_URL": url}, check=False)
    for proc in (init, serve):
        assert proc.returncode != 0
        assert f"error: the database URL (--database-url or HEARTH_DATABASE_URL) {problem}" \
            in proc.stderr, proc.stderr
        assert "Traceback" not in proc.stderr and "s3cret-pw" not in proc.stderr


def test_the_environment_never_moves_a_sqlite_node_onto_a_database(tmp_path: Path) -> None:
    """HEARTH_DATABASE_URL replaces a stored database URL only: a node initialised on SQLite
    refuses to serve with it (it would start on an empty database) and touches nothing."""
    data_dir = tmp_path / "node"
    cli("init", "--data-dir", str(data_dir), "--name", "h", "--listen",
        f"127.0.0.1:{free_port()}")
    proc = subprocess.run(
        [sys.executable, "-m", "mpc_backend", "serve", "--data-dir", str(data_dir)],
        capture_output=True, text=True, timeout=60, cwd=REPO,
        env={**_ENV, "HEARTH_DATABASE_URL": "postgresql://hearth:s3cret-pw@127.0.0.1/x"},
        check=False)
    assert proc.returncode == 1
    assert proc.stderr.startswith(f"error: this node keeps its state in SQLite in {data_dir}; "
                                  "unset HEARTH_DATABASE_URL"), proc.stderr
    assert "s3cret-pw" not in proc.stderr and not (data_dir / DB_FILE_NAME).exists()
