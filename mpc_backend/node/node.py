"""A running household node: its services, background loops and status.

Background loops: the round scheduler (closes rounds this node sits on the
committee of), the outbox (re-sends unacknowledged shares), the founder's
roster and admission pushers, and housekeeping (on a relay founder, removes the broker accounts of
invites that expired unused; deletes the household's own outbox, value
MAC included, once its round has ended, and round tombstones (commitments,
held statements) after ``KEEP_TOMBSTONES_S``; shares go when a round is decided,
at its deadline at the latest). At start, and whenever its relay connection comes
back, a member fetches the latest roster from the founder and the results it missed
from another member.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from mpc_backend import __version__
from mpc_backend.crypto import NodeKeys
from mpc_backend.relay.endpoint import RelayConfigError
from mpc_backend.relay.provision import configured_admin
from mpc_backend.relay.settings import RELAY_FILE_NAME, RelaySettings, load_relay_settings
from mpc_backend.storage import Storage

from .channels import ChannelService
from .config import ConfigError, NodeConfig
from .context import NodeContext
from .federation import FederationService, task_view
from .forwarding import Forwarder
from .household import ContributionService, round_of
from .ingest import IngestService
from .misbehaviour import MisbehaviourLog
from .peers import Peers
from .results import ResultService
from .rounds import RoundService
from .timeline import iso

log = logging.getLogger("mpc_backend.node")

PRUNE_EVERY_S = 60.0
KEEP_ROUND_STATE_S = 24 * 3600.0
# Far beyond any decision deadline: by then a round's shares are long deleted, so
# a tombstone only documents what this member answered.
KEEP_TOMBSTONES_S = 30 * 24 * 3600.0
_ONLINE_CACHE_S = 5.0
CHANNELS_FORGET_EVERY_S = 3600.0


class Node:
    def __init__(
        self,
        data_dir: Path,
        config: NodeConfig,
        keys: NodeKeys,
        storage: Storage,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.ctx = NodeContext(data_dir, config, keys, storage, Peers(config.timing), clock)
        self.federation = FederationService(self.ctx)
        self.misbehaviour = MisbehaviourLog(self.ctx)
        self.results = ResultService(self.ctx, self.misbehaviour)
        self.rounds = RoundService(self.ctx, self.results, self.misbehaviour)
        self.forwarder = Forwarder(self.ctx)
        self.ingest = IngestService(self.ctx, self.rounds.closing, self.forwarder)
        self.channels = ChannelService(self.ctx)
        self.household = ContributionService(self.ctx, self.ingest.handle_shares, self.channels)
        self.federation.on_relay_connected = self.catch_up
        self.started_at = clock()
        self._channels_forgotten = 0.0
        self._loops: list[asyncio.Task[None]] = []
        self._online: tuple[float, dict[str, bool]] = (0.0, {})
        # Counters of ingest worker processes (serve --ingest-workers), for status.
        self.worker_view: Callable[[], list[dict[str, Any]]] | None = None

    async def start(self) -> None:
        await self.ctx.storage.open()
        await self.federation.load()
        await self.channels.load()
        await self.rounds.restore()
        self.ctx.relay = self._relay_settings()
        await self.ctx.peers.start()
        loops = [self.rounds.scheduler_loop, self.household.retry_loop,
                 self.federation.push_loop, self.federation.admissions_push_loop,
                 self._housekeeping]
        if self.ctx.relay is not None and self.ctx.signed_roster is not None:
            # In the background (it retries by itself); it catches up once connected.
            await self.federation.connect_relay(self.ctx.federation_id)
        else:
            loops.append(self.catch_up)
        for loop in loops:
            self._spawn(loop)
        roster = self.ctx.signed_roster.roster if self.ctx.signed_roster else None
        log.info(
            "node %s (%s) started; %s", self.ctx.config.name, self.ctx.node_id,
            f"federation {roster.name} roster v{roster.version}" if roster else "no federation yet",
        )

    def _relay_settings(self) -> RelaySettings | None:
        """This node's relay account; ConfigError (one line) if it is unreadable, or missing
        while the roster says this node is reached through the relay."""
        try:
            settings = load_relay_settings(self.ctx.data_dir)
        except RelayConfigError as err:
            raise ConfigError(str(err)) from None
        me = self.ctx.member(self.ctx.node_id)
        if settings is None and me is not None and me.mailbox is not None:
            raise ConfigError(
                f"{self.ctx.data_dir / RELAY_FILE_NAME} is missing, and this node is reached "
                "through the federation's relay: restore it from a backup of the data dir")
        return settings

    async def catch_up(self) -> None:
        """The roster, then the results, pushed while this node was away (and a pending
        broker password change)."""
        await self.federation.refresh_from_founder()
        await self.federation.confirm_relay_password()
        await self.results.catch_up()

    def _spawn(self, loop: Callable[[], Coroutine[Any, Any, None]]) -> None:
        self._loops.append(asyncio.create_task(loop()))

    async def stop(self) -> None:
        for task in self._loops:
            task.cancel()
        for task in self._loops:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.rounds.drain()
        await self.results.drain()
        await self.channels.close()
        await self.forwarder.close()
        await self.ctx.peers.close()
        await self.ctx.storage.close()
        log.info("node stopped")

    async def _housekeeping(self) -> None:
        while True:
            await asyncio.sleep(PRUNE_EVERY_S)
            try:
                await self.housekeep()
            except Exception:  # housekeeping failures must not stop the node
                log.exception("housekeeping failed")

    async def housekeep(self) -> None:
        now = self.ctx.clock()
        # Past the grace a round takes no more shares: its outbox has no further use.
        await self.ctx.storage.forget_contributions(now - self.ctx.config.timing.grace_s)
        before = now - KEEP_ROUND_STATE_S
        await self.ctx.storage.prune(before, now - KEEP_TOMBSTONES_S)
        self.rounds.forget_before(before)
        # An expired channel is refused at once; its secret has no further use. Deleted in
        # hourly batches: each deletion rewrites the table (PostgreSQL) or the WAL.
        if now >= self._channels_forgotten + CHANNELS_FORGET_EVERY_S:
            await self.ctx.storage.forget_channels(now)
            self._channels_forgotten = now
        self.channels.forget_before(now)
        await self.federation.retire_lapsed_invites()

    async def members_online(self) -> dict[str, bool]:
        stamp, cached = self._online
        now = time.monotonic()
        if now - stamp < _ONLINE_CACHE_S:
            return cached
        # Households that only contribute are not asked: through a relay each would cost a
        # round trip per status call.
        members = [m for m in self.ctx.roster.members
                   if self.ctx.peers.reachable(m) and not (m.input_only and m.url is None)]
        checks = await asyncio.gather(*(
            self.ctx.peers.ping(m) if m.node_id != self.ctx.node_id else _true()
            for m in members
        ))
        online = {m.node_id: ok for m, ok in zip(members, checks, strict=True)}
        self._online = (now, online)
        return online

    async def status(self, households: bool = False) -> dict[str, Any]:
        """This node's view; ``households``: list every admitted household it knows (on the
        founder and on members that compute, all of them: a long list, so only when asked)."""
        ctx = self.ctx
        now = ctx.clock()
        identity = {
            "node_id": ctx.node_id,
            "name": ctx.config.name,
            "fingerprint": ctx.keys.fingerprint,
            "hpke_suite": ctx.keys.hpke_suite,
            "url": ctx.config.peer_url,
            "capacity": ctx.config.capacity,
            "input_only": ctx.config.input_only,
            "version": __version__,
            "uptime_s": round(now - self.started_at, 1),
            "relay_admin": await asyncio.to_thread(_relay_admin_view, ctx.data_dir),
        }
        load = {
            "shares_accepted": self.ingest.accepted,
            "shares_rejected": self.ingest.rejected,
            "rounds_closed_as_coordinator": self.rounds.closed,
            "contributions_sent": self.household.accepted,
            "rounds_holding_shares": len(await ctx.storage.rounds_holding_shares()),
            "ingest": self.ingest.counters(),  # cumulative, for benchmarks
            "forwarding": self.forwarder.counters(),  # households' shares passed on in bulk
            # Fetches from the founder for senders this node did not know (rate-limited).
            "admission_catch_ups": ctx.directory.catch_ups,
        }
        if self.worker_view is not None:
            load["ingest_workers"] = self.worker_view()
        relay = ctx.peers.relay_status()
        if relay is not None:
            relay["since"] = iso(relay["since"])
        if ctx.signed_roster is None:
            return {"identity": identity, "federation": None, "members": [], "tasks": [],
                    "load": load, "misbehaviour": {"total": 0, "members": []}, "relay": relay}
        roster = ctx.roster
        online = await self.members_online()
        # The roster's members, then admitted households: this node itself if it is one,
        # or, when asked, every one it knows.
        own = ctx.directory.get(ctx.node_id)
        admitted = ctx.directory.members() if households else [own] if own else []
        members = [
            {
                "node_id": m.node_id,
                "name": m.name,
                "url": m.url,
                "mailbox": m.mailbox,
                "capacity": m.capacity,
                "input_only": m.input_only,
                "hpke_suite": m.hpke_suite,
                "post_quantum": m.post_quantum,
                "founder": m.node_id == roster.founder,
                "online": online.get(m.node_id),
            }
            for m in (*roster.members, *admitted)
        ]
        tasks = []
        for rtask in roster.tasks:
            spec = rtask.spec
            current = round_of(spec, now)
            seats: list[str] = []
            if current >= rtask.first_round():
                try:
                    seats = [m.node_id for m in roster.committee(spec.task_id, current)]
                except ValueError:
                    seats = []
            latest = await ctx.storage.list_results(spec.task_id, 0, 1)
            tasks.append({
                **task_view(rtask),
                "current_round": current,
                "round_ends_at": iso((current + 1) * spec.period_s),
                "committee": seats,
                "on_committee": ctx.node_id in seats,
                "last_round": None if not latest else {
                    "round": latest[0].round, "status": latest[0].status,
                    "reason": latest[0].doc["result"].get("reason"),
                },
            })
        load["committee_seats_now"] = sum(t["on_committee"] for t in tasks)
        return {
            "identity": identity,
            "federation": {
                "id": roster.federation_id,
                "name": roster.name,
                "founder": roster.founder,
                "is_founder": ctx.is_founder,
                "roster_version": roster.version,
                "hpke_policy": roster.hpke_policy,
                "members": len(roster.members),
                "households": len(ctx.directory),
                "members_online": sum(1 for v in online.values() if v),
            },
            "members": members,
            "tasks": tasks,
            "load": load,
            "misbehaviour": await self.misbehaviour.summary(),
            "relay": relay,
        }


async def _true() -> bool:
    return True


def _relay_admin_view(data_dir: Path) -> dict[str, str | None] | None:
    """Which broker admin account is configured beside the node (never its password)."""
    try:
        configured = configured_admin(data_dir)
    except RelayConfigError as err:
        return {"url": None, "problem": str(err)}
    return None if configured is None else {"url": configured[0].url}
