"""Ingest's group commit and counters.

Share batches that arrive while a commit is in flight wait for the next one and
share it: each keeps its own outcome, none is answered before its transaction
has committed, and a failed commit fails every batch in it (none of them is
acknowledged). A node's ``load.ingest`` counters grow with each delivery, and a
delivery without a verified request (this node's own seat) still has its
envelope's signature checked.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import threading
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from mpc_backend.crypto import b64url_encode
from mpc_backend.node.errors import Forbidden
from mpc_backend.node.household import shares_envelope
from mpc_backend.storage import PutOutcome, ShareRecord, SQLiteStorage
from mpc_backend.storage import sqlite as sqlite_storage
from mpc_backend.storage.sqlite import DB_FILE_NAME
from tests.backend.conftest import PERIOD, FakeClock, LiveNode


def share(sender: str, digest: bytes = b"d1") -> ShareRecord:
    return ShareRecord("temp", 7, sender, digest, (123).to_bytes(8, "little"), 1.0)


class HeldCommits:
    """Wraps the share transaction: the first one waits (inside its open transaction) until
    released; ``fail`` makes the next ones raise, as a full disk would."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.entered, self.release = threading.Event(), threading.Event()
        self.groups: list[int] = []  # batches per transaction
        self.fail = False
        real = sqlite_storage._put_batches

        def put_batches(db: sqlite3.Connection, batch: list[Any]) -> list[PutOutcome]:
            self.groups.append(len(batch))
            if len(self.groups) == 1:
                self.entered.set()
                assert self.release.wait(10)
            elif self.fail:
                raise sqlite3.OperationalError("database or disk is full")
            return real(db, batch)

        monkeypatch.setattr(sqlite_storage, "_put_batches", put_batches)

    async def wait_entered(self) -> None:
        assert await asyncio.to_thread(self.entered.wait, 10)


@pytest.fixture
async def storage(tmp_path: Path) -> AsyncIterator[SQLiteStorage]:
    store = SQLiteStorage(tmp_path)
    await store.open()
    yield store
    await store.close()


def committed(tmp_path: Path) -> list[str]:
    """Senders whose shares another connection can read: committed ones only."""
    # closing(): a connection's own context manager ends a transaction, not the connection.
    with contextlib.closing(sqlite3.connect(tmp_path / DB_FILE_NAME)) as db:
        return [row[0] for row in db.execute("SELECT sender FROM shares ORDER BY sender")]


async def test_batches_arriving_during_a_commit_share_the_next_and_wait_for_it(
    storage: SQLiteStorage, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert await storage.put_shares([share("x")]) is PutOutcome.STORED
    held = HeldCommits(monkeypatch)
    first = asyncio.create_task(storage.put_shares([share("a")]))
    await held.wait_entered()
    late: Sequence[asyncio.Task[PutOutcome]] = [
        asyncio.create_task(storage.put_shares(records))
        for records in ([share("b")], [share("x", digest=b"other")], [share("c"), share("d")])]
    await asyncio.sleep(0.05)
    assert not first.done() and not any(task.done() for task in late)
    assert committed(tmp_path) == ["x"]  # "a" is in an open transaction: not answered yet
    held.release.set()
    assert await first is PutOutcome.STORED
    # The three that came during the first commit went into one transaction together, and
    # the conflicting one did not take the others with it.
    assert await asyncio.gather(*late) == [PutOutcome.STORED, PutOutcome.CONFLICT,
                                           PutOutcome.STORED]
    assert held.groups == [1, 3]
    assert committed(tmp_path) == ["a", "b", "c", "d", "x"]
    assert storage.share_commit_s > 0


async def test_a_failed_commit_fails_every_batch_in_it_and_the_next_commit_works(
    storage: SQLiteStorage, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    held = HeldCommits(monkeypatch)
    first = asyncio.create_task(storage.put_shares([share("a")]))
    await held.wait_entered()
    late = [asyncio.create_task(storage.put_shares([share(s)])) for s in "bcd"]
    held.fail = True
    held.release.set()
    assert await first is PutOutcome.STORED
    for task in late:
        with pytest.raises(sqlite3.OperationalError, match="disk is full"):
            await task
    assert held.groups == [1, 3]
    assert committed(tmp_path) == ["a"]
    held.fail = False
    assert await storage.put_shares([share("b")]) is PutOutcome.STORED
    assert committed(tmp_path) == ["a", "b"]


async def test_counters_grow_and_an_unverified_delivery_has_its_signature_checked(
    trio: list[LiveNode], clock: FakeClock
) -> None:
    household = trio[0]
    before = {live.node_id: (await live.node.status())["load"]["ingest"] for live in trio}
    assert all(set(c) == {"envelopes", "reports", "verify_s", "open_s", "commit_s",
                          "handler_s"} for c in before.values())
    answer = await household.node.household.contribute("temp", 21.0)
    assert answer["acknowledged_by"] == 3
    for live in trio:
        after = (await live.node.status())["load"]["ingest"]
        was = before[live.node_id]
        assert (after["envelopes"], after["reports"]) == (was["envelopes"] + 1,
                                                          was["reports"] + 1)
        for key in ("verify_s", "open_s", "commit_s", "handler_s"):
            assert after[key] > was[key], key

    # In-process delivery (no request signature): a forged envelope signature is refused.
    member = trio[1]
    ctx = household.node.ctx
    round_id = int(clock() // PERIOD)
    envelope = shares_envelope(ctx.keys, ctx.federation_id, [("temp", round_id, b"x" * 64)],
                               now=clock())
    envelope["sig"] = b64url_encode(bytes(64))
    with pytest.raises(Forbidden, match="signature does not verify"):
        await member.node.ingest.handle_shares(envelope, "local")
