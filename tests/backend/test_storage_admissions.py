"""Storage contract for the admission log: ordered, idempotent, looked up by node id.

The ``storage`` fixture (tests/backend/conftest.py) runs each test on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable

from mpc_backend.storage import Storage
from mpc_backend.storage.base import Admission


def record(seq: int, node_id: str | None = None) -> Admission:
    node = node_id or f"node{seq}"
    return Admission(seq, node, {"admission": {"seq": seq, "member": {"node_id": node}},
                                 "sig": f"sig{seq}"})


async def test_empty_log(storage: Storage) -> None:
    assert await storage.last_admission_seq() == 0
    assert await storage.admissions_since(0, 10) == []
    assert await storage.get_admission("node1") is None
    await storage.put_admissions([])  # nothing to store is not an error
    assert await storage.last_admission_seq() == 0


async def test_records_come_back_in_seq_order_and_paged(storage: Storage) -> None:
    await storage.put_admissions([record(3), record(1), record(2)])
    await storage.put_admissions([record(4), record(5)])
    assert await storage.last_admission_seq() == 5
    assert [r.seq for r in await storage.admissions_since(0, 3)] == [1, 2, 3]
    assert [r.seq for r in await storage.admissions_since(3, 3)] == [4, 5]
    assert await storage.admissions_since(5, 3) == []
    assert await storage.admissions_since(1, 1) == [record(2)]  # wire comes back as stored
    assert await storage.get_admission("node4") == record(4)


async def test_a_stored_seq_or_node_is_left_as_it_is(storage: Storage) -> None:
    await storage.put_admissions([record(1), record(2)])
    # Same seq, other node; other seq, same node: both ignored, the rest of the batch stored.
    await storage.put_admissions([record(2, "intruder"), record(3, "node1"), record(4)])
    assert await storage.get_admission("intruder") is None
    assert (await storage.get_admission("node1")) == record(1)
    assert [r.node_id for r in await storage.admissions_since(0, 10)] == [
        "node1", "node2", "node4"]


async def test_admissions_survive_reopening(storage_factory: Callable[[], Storage]) -> None:
    first = storage_factory()
    await first.open()
    await first.put_admissions([record(1), record(2)])
    await first.close()
    second = storage_factory()
    await second.open()
    assert await second.last_admission_seq() == 2
    assert await second.get_admission("node2") == record(2)
    await second.close()
