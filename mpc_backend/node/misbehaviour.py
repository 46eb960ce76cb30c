"""What this node caught members doing: logged by name, stored, summed for ``status``.

Only authenticated messages lead here (a request or statement signed by a
roster member, or a result co-signed by a committee whose verdict names a
household's invalid report, this node's own included), so a record names who did
it. Details describe the act (which
round, which rule), never a reading or a share.
"""

from __future__ import annotations

import logging
from collections import Counter
from typing import Any

from mpc_backend.storage import Misbehaviour

from .context import NodeContext
from .timeline import iso

log = logging.getLogger("mpc_backend.misbehaviour")

KINDS = (
    "bad_signature",  # a statement, partial or result signature that does not verify
    "equivocation",  # two different signed held statements for one round
    "contributor_set_refused",  # asked to sum a set the held statements do not determine
    "forged_result",  # a result without t + 1 committee signatures, early, or not matching
    "invalid_report",  # a household's report failed its validity proof (co-signed verdict)
)


class MisbehaviourLog:
    def __init__(self, ctx: NodeContext) -> None:
        self.ctx = ctx

    async def report(self, member: str, kind: str, detail: str) -> None:
        assert kind in KINDS, kind
        info = self.ctx.member(member)
        name = info.name if info else member
        log.warning("misbehaviour by member %s (%s): %s: %s", name, member, kind, detail)
        await self.ctx.storage.add_misbehaviour(
            Misbehaviour(member, kind, detail, self.ctx.clock()))

    async def summary(self) -> dict[str, Any]:
        """The ``status`` block: a total and, per member, counts by kind and the latest act."""
        records = await self.ctx.storage.list_misbehaviour()
        by_member: dict[str, list[Misbehaviour]] = {}
        for record in records:  # newest first
            by_member.setdefault(record.member, []).append(record)
        members = []
        for member, acts in by_member.items():
            info = self.ctx.member(member)
            members.append({
                "node_id": member,
                "name": info.name if info else member,
                "count": len(acts),
                "kinds": dict(Counter(a.kind for a in acts)),
                "last_kind": acts[0].kind,
                "last_detail": acts[0].detail,
                "last_at": iso(acts[0].at),
            })
        members.sort(key=lambda m: (-m["count"], m["name"]))
        return {"total": len(records), "members": members}
