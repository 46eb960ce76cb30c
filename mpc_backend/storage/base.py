"""The one storage interface the node uses; SQLite now, PostgreSQL later.

Everything is async so a networked database fits behind the same methods.
What is stored, and why each thing is durable:

* ``meta``: small key/value facts about this node (federation, pinned founder key,
  the local MAC key for contribution de-duplication).
* the signed roster (latest version only: members and tasks carry the time they
  were added, so a round's committee is computed from the latest roster alone).
* invites: only a hash of the invite key (``invite_key_id``) and the expiry; consumed once.
* shares a committee member holds: the opened share (raw little-endian uint64),
  keyed by (task, round, sender) with the sha256 of the ciphertext that carried
  it, so an identical resend is recognised and a different one refused.
  ``put_shares`` returns only after the commit: acknowledging means on disk.
* round commitments: the one contributor set (and partial sum, and with DP the
  noise dealers it includes) a member agreed to for a round. A member never
  answers for a second set, otherwise the difference of two partial sums would
  expose one household's share.
* held statements: the one signed set of senders this member attested for a
  round. Signing two different sets would let a coordinator pick between them,
  so the first is kept and handed out again (a tombstone that outlives shares).
* closing marks: the rounds this member has started closing. From the mark on no
  share of that round is stored, by any process sharing the database, so every
  share acknowledged is one the member's held statement can name.
* misbehaviour: what this node caught other members doing (member, kind, a
  detail without any reading), for ``status`` and Home Assistant.
* noise deals: the sealed DP noise shares a member dealt for a round, so a
  repeated request gets the same noise rather than fresh noise.
* results: signed round outcomes, with a local sequence number for streaming.
* admissions: the founder-signed records admitting households that only
  contribute (``seq`` from 1, no gaps), kept as received so a member can check
  a sender it does not find in the core roster and hand the log on to others.
* the household outbox: this node's own contributions (a MAC of the value, never
  the value) and the sealed share for each committee member until it is acked.
  Both only matter while the round accepts shares, and the MAC key sits in the
  same database (a MAC of a low-entropy reading is brute-forceable), so they are
  deleted once the round has ended (``forget_contributions``).
* channels: the 32-byte secret a household (``out``) and a committee member (``in``) agreed
  once, so each report is sealed and authenticated with symmetric keys derived from it.
  First wins (a replayed or forged offer cannot swap the secret); deleted once expired
  (``forget_channels``), with the same care as the outbox.
"""

from __future__ import annotations

import abc
import enum
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Final

# Per-round values written once and then handed out unchanged (a member's noise deal, its
# held statement, its verification seed and binding): table -> JSON column, in both SQL
# backends. SQL names come from here, never from input.
ONCE_COLUMNS: Final = MappingProxyType({"noise_deals": "deal", "held_statements": "statement",
                                        "verify_seeds": "seed", "verify_bindings": "binding"})


class PutOutcome(enum.Enum):
    """What happened to one batch of shares."""

    STORED = "stored"
    DUPLICATE = "duplicate"  # every item was already stored with the same digest
    CONFLICT = "conflict"  # some (task, round, sender) holds a different share
    CLOSED = "closed"  # some item's round was marked closing (``mark_closing``): nothing stored


class InviteStatus(enum.Enum):
    OK = "ok"
    UNKNOWN = "unknown"
    EXPIRED = "expired"
    USED = "used"


@dataclass(frozen=True)
class ShareRecord:
    task: str
    round: int
    sender: str
    digest: bytes  # sha256 of the ciphertext the share arrived in
    share: bytes  # opened share: raw little-endian uint64 field elements
    received_at: float


@dataclass(frozen=True)
class RoundCommit:
    task: str
    round: int
    senders: tuple[str, ...]
    partial: bytes  # raw little-endian uint64
    coordinator: str
    committed_at: float
    dealers: tuple[str, ...] = ()  # DP noise dealers whose shares the partial includes
    statements: tuple[str, ...] = ()  # members whose held statements determined ``senders``
    excluded: tuple[tuple[str, str], ...] = ()  # (household, verdict) left out by verification


@dataclass(frozen=True)
class ResultRecord:
    seq: int
    task: str
    round: int
    status: str
    doc: dict[str, Any]  # {"result": {...}, "sig": "..."}
    received_at: float


@dataclass(frozen=True)
class Misbehaviour:
    member: str
    kind: str
    detail: str
    at: float


@dataclass(frozen=True)
class Contribution:
    task: str
    round: int
    value_mac: bytes
    committee: tuple[str, ...]
    round_end: float
    created_at: float


@dataclass(frozen=True)
class Delivery:
    task: str
    round: int
    member: str
    ciphertext: bytes
    acked: bool
    attempts: int


@dataclass(frozen=True)
class Admission:
    """One founder-signed admission of a household that only contributes."""

    seq: int  # 1, 2, 3 ... in the founder's order, no gaps
    node_id: str  # the admitted member's id (``admission.member.node_id``)
    wire: dict[str, Any]  # {"admission": {...}, "sig": "..."} exactly as received


_CHANNEL_ID: Final = re.compile(r"[0-9a-f]{32}")


@dataclass(frozen=True)
class ChannelRecord:
    """A channel secret shared with one peer node."""

    direction: str  # "out": this node sends (household side); "in": this node receives
    peer: str  # the other node's id
    channel: str  # 32 lowercase hex digits
    secret: bytes = field(repr=False)  # 32 bytes
    expires: float  # Unix time

    def __post_init__(self) -> None:
        if self.direction not in ("in", "out"):
            raise ValueError(f"channel direction must be 'in' or 'out', not {self.direction!r}")
        if not _CHANNEL_ID.fullmatch(self.channel):
            raise ValueError("a channel id is 32 lowercase hex digits")
        if len(self.secret) != 32:
            raise ValueError("a channel secret is 32 bytes")


class Storage(abc.ABC):
    """Durable state of one node. Implementations must be safe to call concurrently."""

    # Seconds spent in the transactions of put_shares, cumulative (status load.ingest);
    # a backend that does not time them leaves it at 0.
    share_commit_s: float = 0.0

    @abc.abstractmethod
    async def open(self) -> None: ...

    @abc.abstractmethod
    async def close(self) -> None: ...

    # -- meta -------------------------------------------------------------
    @abc.abstractmethod
    async def get_meta(self, key: str) -> str | None: ...

    @abc.abstractmethod
    async def set_meta(self, key: str, value: str) -> None: ...

    # -- roster -----------------------------------------------------------
    @abc.abstractmethod
    async def get_roster(self) -> dict[str, Any] | None:
        """The stored signed roster wire form ``{"roster": {...}, "sig": "..."}``."""

    @abc.abstractmethod
    async def put_roster(self, version: int, wire: dict[str, Any]) -> bool:
        """Store ``wire`` if ``version`` is higher than the stored one; True if stored."""

    # -- invites ----------------------------------------------------------
    @abc.abstractmethod
    async def add_invite(self, key_id: str, expires_at: float,
                         mailbox: str | None = None) -> None:
        """Store an invite; ``mailbox``: the broker account made for it, in a relay federation."""

    @abc.abstractmethod
    async def consume_invite(self, key_id: str, now: float, node_id: str) -> InviteStatus:
        """Mark the invite used by ``node_id``; using it again by the same node is OK."""

    @abc.abstractmethod
    async def lapsed_invite_mailboxes(self, now: float) -> list[tuple[str, str]]:
        """(key id, mailbox) of invites that expired unused and still have a broker account."""

    @abc.abstractmethod
    async def forget_invite_mailbox(self, key_id: str) -> None:
        """The invite's broker account is gone."""

    # -- shares (committee side) -----------------------------------------
    @abc.abstractmethod
    async def put_shares(self, records: Sequence[ShareRecord]) -> PutOutcome:
        """Store all records atomically (all or nothing), durable before returning.

        Of two concurrent calls holding different shares for one key, the first to arrive
        in this process wins (the other gets CONFLICT), on every backend."""

    @abc.abstractmethod
    async def held_senders(self, task: str, round_id: int) -> list[str]: ...

    @abc.abstractmethod
    async def load_shares(self, task: str, round_id: int, senders: Sequence[str]) -> list[bytes]:
        """The shares from ``senders`` (in that order); KeyError naming a missing one."""

    @abc.abstractmethod
    async def rounds_holding_shares(self) -> list[tuple[str, int]]:
        """(task, round) pairs with stored shares and no stored result."""

    # -- round commitments and noise -------------------------------------
    @abc.abstractmethod
    async def get_commit(self, task: str, round_id: int) -> RoundCommit | None: ...

    @abc.abstractmethod
    async def put_commit(self, commit: RoundCommit) -> RoundCommit:
        """Store unless one exists; returns whichever commitment is now stored."""

    # Values written once per round (``ONCE_COLUMNS``): the backends store and read them,
    # the methods below name the table.
    @abc.abstractmethod
    async def _get_once(self, table: str, task: str, round_id: int) -> Any:
        """The value stored in ``table`` for (task, round), or None."""

    @abc.abstractmethod
    async def _put_once(self, table: str, task: str, round_id: int, value: Any, now: float) -> Any:
        """Store ``value`` in ``table`` for (task, round) unless one is stored; return the
        stored one."""

    async def get_noise_deal(self, task: str, round_id: int) -> dict[str, str] | None:
        return await self._get_once("noise_deals", task, round_id)

    async def put_noise_deal(
        self, task: str, round_id: int, deal: dict[str, str], now: float
    ) -> dict[str, str]:
        """Store unless one exists; returns whichever deal is now stored."""
        return await self._put_once("noise_deals", task, round_id, deal, now)

    async def get_held_statement(self, task: str, round_id: int) -> dict[str, Any] | None:
        return await self._get_once("held_statements", task, round_id)

    async def put_held_statement(
        self, task: str, round_id: int, statement: dict[str, Any], now: float
    ) -> dict[str, Any]:
        """Store unless one exists; returns whichever statement is now stored."""
        return await self._put_once("held_statements", task, round_id, statement, now)

    async def put_verify_seed(self, task: str, round_id: int, seed: str, now: float) -> str:
        """Store this member's secret verification seed (hex) unless one exists; return it."""
        return await self._put_once("verify_seeds", task, round_id, seed, now)

    async def get_verify_binding(self, task: str, round_id: int) -> dict[str, Any] | None:
        return await self._get_once("verify_bindings", task, round_id)

    async def put_verify_binding(
        self, task: str, round_id: int, binding: dict[str, Any], now: float
    ) -> dict[str, Any]:
        """Store the statements this member revealed its seed for, unless stored; return it."""
        return await self._put_once("verify_bindings", task, round_id, binding, now)

    # -- misbehaviour -----------------------------------------------------
    @abc.abstractmethod
    async def add_misbehaviour(self, record: Misbehaviour) -> None: ...

    @abc.abstractmethod
    async def list_misbehaviour(self, limit: int = 1000) -> list[Misbehaviour]:
        """Newest first."""

    # -- results ----------------------------------------------------------
    @abc.abstractmethod
    async def put_result(
        self, task: str, round_id: int, status: str, doc: dict[str, Any], now: float
    ) -> tuple[PutOutcome, ResultRecord]:
        """Store the first result for (task, round) and drop that round's shares.

        DUPLICATE if the same signed document is already stored, CONFLICT if a
        different one is; the returned record is the stored one. One exception:
        a stored ``failed`` outcome (decided locally at the deadline) gives way
        to a ``released`` or ``insufficient`` one, under a new sequence number.
        """

    @abc.abstractmethod
    async def get_result(self, task: str, round_id: int) -> ResultRecord | None: ...

    @abc.abstractmethod
    async def list_results(
        self, task: str | None = None, since_seq: int = 0, limit: int = 100
    ) -> list[ResultRecord]:
        """Newest first; only records with seq > since_seq."""

    # -- household outbox -------------------------------------------------
    @abc.abstractmethod
    async def get_contribution(self, task: str, round_id: int) -> Contribution | None: ...

    @abc.abstractmethod
    async def put_contribution(
        self, contribution: Contribution, deliveries: Sequence[Delivery]
    ) -> bool:
        """Store a contribution and its deliveries; False if one exists for (task, round)."""

    @abc.abstractmethod
    async def deliveries(self, task: str, round_id: int) -> list[Delivery]: ...

    @abc.abstractmethod
    async def pending_deliveries(self, min_round_end: float) -> list[Delivery]:
        """Unacked deliveries of rounds ending after ``min_round_end``."""

    @abc.abstractmethod
    async def mark_delivery(self, task: str, round_id: int, member: str, acked: bool) -> None: ...

    @abc.abstractmethod
    async def count_contributions(self) -> int: ...

    # -- housekeeping -----------------------------------------------------
    @abc.abstractmethod
    async def prune(self, before: float, tombstones_before: float) -> None:
        """Forget outbox ciphertexts from before ``before``, and commitments, held
        statements and noise deals (the tombstones) from before ``tombstones_before``."""

    @abc.abstractmethod
    async def forget_contributions(self, ended_before: float) -> None:
        """Delete outbox rows (value MAC, ciphertexts) of rounds ending before ``ended_before``.

        Deleted content must not linger in free pages or logs of the backing store.
        """

    # -- admissions -------------------------------------------------------
    @abc.abstractmethod
    async def put_admissions(self, records: Sequence[Admission]) -> None:
        """Store ``records`` in one transaction, durable before returning.

        A record whose ``seq`` or whose ``node_id`` is already stored is left as
        it is (the stored one wins, no error): pushes and fetches may repeat
        records, and the caller has already checked order and signatures.
        """

    @abc.abstractmethod
    async def admissions_since(self, seq: int, limit: int) -> list[Admission]:
        """Up to ``limit`` records with ``seq`` greater than the given one, ascending."""

    @abc.abstractmethod
    async def last_admission_seq(self) -> int:
        """The highest stored ``seq``; 0 if none is stored."""

    @abc.abstractmethod
    async def get_admission(self, node_id: str) -> Admission | None:
        """The record admitting ``node_id``, or None."""

    # -- closing marks and roster version (ingest workers) --------------------------
    @abc.abstractmethod
    async def mark_closing(self, task: str, round_id: int, now: float) -> None:
        """Mark the round closing: ``put_shares`` refuses its shares (``CLOSED``) from now on.

        Atomic with respect to ``put_shares`` in every process sharing the store: once this
        returns, each share of the round was either stored before (and is visible to
        ``held_senders``) or will be refused; never stored after. Idempotent. The mark is a
        tombstone (``prune`` drops it with the others).
        """

    async def roster_version(self) -> int | None:
        """The stored roster's version (None if none): polled by ingest workers, so
        backends that can read it without the whole roster should."""
        wire = await self.get_roster()
        return None if wire is None else int(wire["roster"]["version"])

    # -- channels ---------------------------------------------------------------
    @abc.abstractmethod
    async def put_channel(self, record: ChannelRecord) -> bool:
        """Store ``record``, durable before returning; the first stored wins. True if it is
        stored now or was already stored with the same secret and expiry; False if
        (direction, peer, channel) holds a different secret or expiry (kept as it is)."""

    @abc.abstractmethod
    async def get_channel(self, direction: str, peer: str, channel: str) -> ChannelRecord | None:
        """The stored channel, expired or not (the caller compares ``expires``)."""

    @abc.abstractmethod
    async def live_channels(self, direction: str, peer: str | None,
                            now: float) -> list[ChannelRecord]:
        """Channels with ``peer`` (None: with anyone) in ``direction`` with ``expires > now``,
        longest-lived first."""

    @abc.abstractmethod
    async def forget_channels(self, before: float) -> int:
        """Delete the channels with ``expires < before``; how many were deleted.

        Deleted secrets must not linger in free pages or logs of the backing store.
        """
