"""The admitted households this node knows: in memory, backed by the admission log in storage.

The founder and the members that compute (they check households' signatures at
ingest) keep the whole log; a household keeps only its own admission. The process
that writes the log holds all of it in memory (loaded at start, added to as it
stores), so its lookups never ask storage; on a miss the caller may ask for a
catch-up from the founder: one fetch at a time (callers that miss meanwhile wait
for it) and at most one per ``CATCH_UP_EVERY_S``, so requests from made-up sender
ids cannot make this node hammer the founder. A process that only reads a log
another one writes (an ingest worker) follows it (``follow``, on each poll).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from mpc_backend.storage import Storage

from .admission import AdmissionError, SignedAdmission, continuing, verify_admission
from .roster import MemberInfo, RosterError

log = logging.getLogger("mpc_backend.federation")

PAGE = 500  # admissions per push or fetch answer (a hybrid-suite record is ~2.3 KB)
CATCH_UP_EVERY_S = 5.0
# Verifying a large batch (~130 µs a signature) goes to a thread, off the event loop.
_VERIFY_INLINE = 16


class AdmissionDirectory:
    def __init__(self, storage: Storage) -> None:
        self.storage = storage
        self._members: dict[str, MemberInfo] = {}
        self.last_seq = 0  # of the log this node holds (0: none, or only its own record)
        self._adopt_lock = asyncio.Lock()
        self._catch_up: asyncio.Task[None] | None = None
        self._last_catch_up = -float("inf")
        self.catch_ups = 0  # fetches started (status and tests)

    async def follow(self) -> None:
        """Read the stored log into memory from where this directory is: all of it at
        start, then what another process (the one writing it) stored since."""
        while page := await self.storage.admissions_since(self.last_seq, 5000):
            for record in page:
                self._members[record.node_id] = _member_of(record.wire)
            self.last_seq = page[-1].seq

    def get(self, node_id: str) -> MemberInfo | None:
        return self._members.get(node_id)

    def members(self) -> list[MemberInfo]:
        return list(self._members.values())

    def __len__(self) -> int:
        return len(self._members)

    def add(self, member: MemberInfo) -> None:
        """Know ``member`` without holding the log (a household's own admission)."""
        self._members[member.node_id] = member

    def stored(self, admissions: Sequence[SignedAdmission]) -> None:
        """Admissions just stored in order by the founder (who checked and signed them)."""
        for admission in admissions:
            self._members[admission.member.node_id] = admission.member
        if admissions:
            self.last_seq = max(self.last_seq, admissions[-1].seq)

    async def adopt(self, wires: Any, founder_public: bytes, federation_id: str) -> int:
        """Store the founder-signed records of ``wires`` that continue the log; returns the
        log's last seq, which tells the sender where a gap starts. AdmissionError if a
        record that would continue the log is not authentic (nothing of the batch is kept)."""
        if not isinstance(wires, list):
            raise AdmissionError("admissions must be a list")
        async with self._adopt_lock:
            by_seq: dict[int, Any] = {}
            for wire in wires:
                seq = wire.get("admission", {}).get("seq") if isinstance(wire, dict) else None
                if isinstance(seq, int) and not isinstance(seq, bool):
                    by_seq.setdefault(seq, wire)
            wanted = [by_seq[s] for s in continuing(by_seq, self.last_seq)]
            if not wanted:
                return self.last_seq

            def check() -> list[SignedAdmission]:
                return [verify_admission(w, founder_public, federation_id) for w in wanted]

            admissions = check() if len(wanted) <= _VERIFY_INLINE else await asyncio.to_thread(
                check)
            await self.storage.put_admissions([a.record() for a in admissions])
            self.stored(admissions)
            return self.last_seq

    async def catch_up(self, fetch: Callable[[], Awaitable[None]]) -> None:
        """Run ``fetch`` (from the founder) unless one ran less than ``CATCH_UP_EVERY_S`` ago;
        if one is running, wait for it instead of starting another."""
        running = self._catch_up
        if running is None or running.done():
            now = time.monotonic()
            if now - self._last_catch_up < CATCH_UP_EVERY_S:
                return
            self._last_catch_up = now
            self.catch_ups += 1
            running = self._catch_up = asyncio.create_task(fetch())
        await asyncio.shield(running)


def _member_of(wire: dict[str, Any]) -> MemberInfo:
    """The member a stored record admits (checked when it was stored)."""
    try:
        return MemberInfo.from_dict(wire["admission"]["member"])
    except (KeyError, TypeError, RosterError) as err:
        raise AdmissionError(f"a stored admission is unreadable: {err}") from None
