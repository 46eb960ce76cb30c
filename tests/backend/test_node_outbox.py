"""The household outbox: nothing derived from a reading outlives its round; clean failures."""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path
from typing import Any

import pytest

from mpc_backend.crypto import UnsupportedSuiteError
from mpc_backend.node import household
from mpc_backend.node.errors import Conflict, NodeError
from mpc_backend.storage import Contribution
from tests.backend.conftest import PERIOD, FakeClock, LiveNode
from tests.backend.test_node_rounds import contribute_all, wait_result


def files_of(data_dir: Path) -> bytes:
    """Every byte the node keeps on disk (database, WAL, shared memory, keys, config)."""
    return b"".join(p.read_bytes() for p in sorted(data_dir.rglob("*")) if p.is_file())


async def test_after_a_round_no_value_mac_or_sealed_share_is_left_on_disk(
    trio: list[LiveNode], clock: FakeClock
) -> None:
    """The MAC key sits in the same database: a stored MAC would let anyone test guesses."""
    values = [21.37, 18.93, 24.61]
    round_id = await contribute_all(trio, values)
    needles: dict[str, list[bytes]] = {}
    for live, value in zip(trio, values, strict=True):
        storage = live.node.ctx.storage
        key = bytes.fromhex(await storage.get_meta(household.MAC_KEY_META) or "")
        guess = hmac.new(key, f"temp\x00{round_id}\x00{value!r}".encode(), hashlib.sha256)
        stored = await storage.get_contribution("temp", round_id)
        assert stored is not None and stored.value_mac == guess.digest(), "a guess is testable"
        sealed = [d.ciphertext for d in await storage.deliveries("temp", round_id)]
        assert len(sealed) == 3
        needles[live.node_id] = [guess.digest(), *sealed]
        assert all(n in files_of(live.node.ctx.data_dir) for n in needles[live.node_id])
    clock.advance(PERIOD + 2)
    for live in trio:
        assert (await wait_result(live))["status"] == "released"
    for live in trio:
        await live.node.housekeep()
        assert await live.node.ctx.storage.get_contribution("temp", round_id) is None
        on_disk = files_of(live.node.ctx.data_dir)
        for needle in needles[live.node_id]:
            assert needle not in on_disk


async def test_contribution_locks_are_released_on_errors(
    trio: list[LiveNode]
) -> None:
    service = trio[0].node.household
    await service.contribute("temp", 20.0)
    with pytest.raises(Conflict):
        await service.contribute("temp", 21.0)
    assert service._locks == {}


async def test_a_racing_different_contribution_is_not_reported_accepted(
    trio: list[LiveNode], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another ingest worker stored a different value for the round between check and insert."""
    service = trio[0].node.household
    storage = trio[0].node.ctx.storage
    first = await service.contribute("temp", 20.0)
    real_get = storage.get_contribution
    misses = [None]

    async def not_yet_visible(task: str, round_id: int) -> Contribution | None:
        return misses.pop() if misses else await real_get(task, round_id)

    monkeypatch.setattr(storage, "get_contribution", not_yet_visible)
    with pytest.raises(Conflict) as err:
        await service.contribute("temp", 21.0)
    assert err.value.code == "duplicate_contribution"
    # The same value in the same race is the idempotent duplicate it is.
    misses.append(None)
    again = await service.contribute("temp", 20.0)
    assert again["duplicate"] is True and again["round"] == first["round"]


async def test_a_sealing_failure_is_not_blamed_on_the_value(
    trio: list[LiveNode], monkeypatch: pytest.MonkeyPatch
) -> None:
    def unsupported(*args: Any) -> bytes:
        raise UnsupportedSuiteError("HPKE suite MLKEM768-X25519 is not available here")

    monkeypatch.setattr(household, "seal_share", unsupported)
    with pytest.raises(NodeError) as err:
        await trio[0].node.household.contribute("temp", 20.0)
    assert err.value.code == "unsupported_suite" and err.value.field is None
    assert "MLKEM768-X25519" in err.value.message
