"""The federation roster: who computes, which tasks run, signed by the founder.

The roster (the "core") lists the founder and the members that compute, the
tasks, the HPKE policy and the relay; households that only contribute are admitted
by separate founder-signed records (``admission.py``), so the roster's size and
its versions do not follow the number of households. Rosters from before
admissions may list input-only members; they stay members (lookups go through
``NodeContext.member``: this roster first, then the admissions).

Wire form ``{"roster": {...}, "sig": b64url}``; the signature is Ed25519 by the
founder over ``hearth/roster/v1\\0`` + canonical JSON of the roster. A node
accepts a roster only with a higher version than it holds and only signed by
the founder key it pinned when it joined (checked against the invite's
fingerprint).

Members and tasks carry the founder's time they were added (``joined_at``,
``added_at``). A round's committee is computed from the members and tasks that
existed when the round started, so a roster change mid-round never moves a
round's committee: changes take effect at the next round boundary, and one
roster version is enough to compute any round's committee (v1 has no removal).
For the same reason a member keeps its earlier capacities with the time each
ended (``capacity_at`` gives the one in force when a round started).

Membership policy, enforced when a member record is read: capacity within
``MIN_CAPACITY``..``MAX_CAPACITY`` (a seat-weight hint, never a lever for seats)
and a plain ``http(s)://HOST[:PORT]`` URL. The roster's ``hpke_policy`` says
whether joiners need the post-quantum hybrid HPKE suite (the default) or may
use classical X25519; the founder applies it at join.

Relay federations (``relay``: the broker's URL and CA) give each member a
``mailbox`` (its broker username); such a member needs no URL.

Fields added after v1 (``hpke_policy``, ``earlier_capacities``, ``relay``,
``mailbox``) are written only
when they differ from their default, so older nodes re-serialise such rosters
unchanged; a ``SignedRoster`` keeps the exact JSON its signature covers.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any

from mpc_backend.crypto import (
    BadSignatureError,
    b64url_decode,
    b64url_encode,
    canonical_json,
    fingerprint_of,
    node_id_of,
    verify_signature,
)
from mpc_backend.crypto.keys import NodeKeys
from mpc_backend.crypto.sealing import PUBLIC_BYTES, SUITE_HYBRID
from mpc_backend.protocol import Member, TaskSpec, select_committee
from mpc_backend.relay.endpoint import RelayConfigError, RelayEndpoint, mailbox_problem

from .config import (
    MAX_CAPACITY,  # noqa: F401 - re-exported: the bounds belong to the membership policy
    MIN_CAPACITY,  # noqa: F401
    capacity_problem,
    url_problem,
)

ROSTER_CONTEXT = b"hearth/roster/v1\x00"
HPKE_POLICY_HYBRID = "hybrid"  # every member must use SUITE_HYBRID (post-quantum)
HPKE_POLICY_ANY = "any"  # classical X25519 members are admitted, and shown as such
HPKE_POLICIES = (HPKE_POLICY_HYBRID, HPKE_POLICY_ANY)


class RosterError(ValueError):
    """A roster or member record is malformed or not authentic."""


class CapacityError(RosterError):
    """A member record declares a capacity outside MIN_CAPACITY..MAX_CAPACITY."""


@dataclass(frozen=True)
class MemberInfo:
    node_id: str
    name: str
    url: str | None  # None: reached through the relay only, or input-only and never contacted
    signing_public: bytes
    hpke_public: bytes
    hpke_suite: str
    capacity: float
    input_only: bool
    joined_at: float = 0.0
    # Capacities in force before the current one, oldest first, as (until, capacity):
    # a round that started before ``until`` keeps the capacity it started with.
    earlier_capacities: tuple[tuple[float, float], ...] = ()
    mailbox: str | None = None  # its inbox at the federation's relay (its broker username)

    def __post_init__(self) -> None:
        if node_id_of(self.signing_public) != self.node_id:
            raise RosterError(f"member {self.node_id}: node_id does not match its signing key")
        if not self.name or len(self.name) > 100:
            raise RosterError(f"member {self.node_id}: name must be 1-100 characters")
        if self.mailbox is not None and mailbox_problem(self.mailbox):
            raise RosterError(f"member {self.name}: relay mailbox {mailbox_problem(self.mailbox)}")
        if self.url is None:
            if not self.input_only and self.mailbox is None:
                raise RosterError(
                    f"member {self.name}: a member that computes needs a public URL or a "
                    "relay mailbox"
                )
        else:
            problem = url_problem(self.url)
            if problem is not None:
                raise RosterError(f"member {self.name}: URL {problem}")
        for capacity in (self.capacity, *(c for _, c in self.earlier_capacities)):
            problem = capacity_problem(capacity)
            if problem is not None:
                raise CapacityError(f"member {self.name}: {problem}")
        ends = [until for until, _ in self.earlier_capacities]
        if not all(map(math.isfinite, ends)) or ends != sorted(ends):
            raise RosterError(f"member {self.name}: earlier capacities must be in time order")
        if self.hpke_suite not in PUBLIC_BYTES:
            raise RosterError(f"member {self.name}: unknown HPKE suite {self.hpke_suite!r}; "
                              f"expected one of {sorted(PUBLIC_BYTES)}")
        if len(self.hpke_public) != PUBLIC_BYTES[self.hpke_suite]:
            raise RosterError(f"member {self.name}: {self.hpke_suite} public key must be "
                              f"{PUBLIC_BYTES[self.hpke_suite]} bytes, got {len(self.hpke_public)}")

    @property
    def fingerprint(self) -> str:
        return fingerprint_of(self.signing_public, self.hpke_suite, self.hpke_public)

    @property
    def post_quantum(self) -> bool:
        """Shares sealed to this member stay private against a future quantum adversary."""
        return self.hpke_suite == SUITE_HYBRID

    def capacity_at(self, time: float) -> float:
        """The capacity in force for a round that started at ``time``."""
        for until, capacity in self.earlier_capacities:
            if time < until:
                return capacity
        return self.capacity

    def with_capacity(self, capacity: float, since: float) -> MemberInfo:
        """This member with ``capacity`` from ``since`` on; earlier rounds keep the old one."""
        return replace(self, capacity=capacity,
                       earlier_capacities=(*self.earlier_capacities, (since, self.capacity)))

    @classmethod
    def of_keys(
        cls, keys: NodeKeys, name: str, url: str | None, capacity: float, input_only: bool,
        mailbox: str | None = None,
    ) -> MemberInfo:
        return cls(keys.node_id, name, url, keys.signing_public, keys.hpke_public,
                   keys.hpke_suite, capacity, input_only, mailbox=mailbox)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "node_id": self.node_id,
            "name": self.name,
            "url": self.url,
            "signing_public": b64url_encode(self.signing_public),
            "hpke_public": b64url_encode(self.hpke_public),
            "hpke_suite": self.hpke_suite,
            "capacity": float(self.capacity),
            "input_only": self.input_only,
            "joined_at": float(self.joined_at),
        }
        if self.earlier_capacities:
            data["earlier_capacities"] = [[float(u), float(c)] for u, c in self.earlier_capacities]
        if self.mailbox is not None:
            data["mailbox"] = self.mailbox
        return data

    @classmethod
    def from_dict(cls, data: Any) -> MemberInfo:
        if not isinstance(data, dict):
            raise RosterError("member must be a JSON object")
        try:
            fields = {
                "node_id": str(data["node_id"]),
                "name": str(data["name"]),
                "url": None if data.get("url") is None else str(data["url"]),
                "signing_public": b64url_decode(data["signing_public"]),
                "hpke_public": b64url_decode(data["hpke_public"]),
                "hpke_suite": str(data["hpke_suite"]),
                "capacity": float(data["capacity"]),
                "input_only": bool(data["input_only"]),
                "joined_at": float(data.get("joined_at", 0.0)),
                "earlier_capacities": tuple(
                    (float(until), float(capacity))
                    for until, capacity in data.get("earlier_capacities", ())
                ),
                "mailbox": None if data.get("mailbox") is None else str(data["mailbox"]),
            }
        except (KeyError, TypeError, ValueError) as err:
            raise RosterError(f"member record is malformed: {err}") from None
        return cls(**fields)  # its own checks raise RosterError with their message


@dataclass(frozen=True)
class RosterTask:
    spec: TaskSpec
    added_at: float
    proposed_by: str

    def first_round(self) -> int:
        """The first round that starts at or after the task was added."""
        return math.ceil(self.added_at / self.spec.period_s)

    def to_dict(self) -> dict[str, Any]:
        return {"spec": self.spec.to_dict(), "added_at": float(self.added_at),
                "proposed_by": self.proposed_by}

    @classmethod
    def from_dict(cls, data: Any) -> RosterTask:
        try:
            return cls(TaskSpec.from_dict(data["spec"]), float(data["added_at"]),
                       str(data["proposed_by"]))
        except (KeyError, TypeError, ValueError) as err:
            raise RosterError(f"task record is malformed: {err}") from None


@dataclass(frozen=True)
class Roster:
    federation_id: str
    name: str
    version: int
    issued_at: float
    founder: str
    members: tuple[MemberInfo, ...]
    tasks: tuple[RosterTask, ...] = ()
    hpke_policy: str = HPKE_POLICY_HYBRID
    relay: RelayEndpoint | None = None  # the broker members talk through, if any
    _committees: dict[tuple[str, int], list[str]] = field(
        default_factory=dict, compare=False, repr=False
    )

    def __post_init__(self) -> None:
        if self.hpke_policy not in HPKE_POLICIES:
            raise RosterError(f"unknown HPKE policy {self.hpke_policy!r}; "
                              f"expected one of {', '.join(HPKE_POLICIES)}")

    def admits_suite(self, suite: str) -> bool:
        """Whether this federation's HPKE policy lets a member with ``suite`` join."""
        return self.hpke_policy == HPKE_POLICY_ANY or suite == SUITE_HYBRID

    @cached_property
    def by_id(self) -> dict[str, MemberInfo]:
        return {m.node_id: m for m in self.members}

    @cached_property
    def tasks_by_id(self) -> dict[str, RosterTask]:
        return {t.spec.task_id: t for t in self.tasks}

    def member(self, node_id: str) -> MemberInfo | None:
        return self.by_id.get(node_id)

    def task(self, task_id: str) -> RosterTask | None:
        return self.tasks_by_id.get(task_id)

    def signing_key(self, node_id: str) -> bytes | None:
        member = self.by_id.get(node_id)
        return member.signing_public if member else None

    @property
    def founder_member(self) -> MemberInfo:
        return self.by_id[self.founder]

    def committee(self, task_id: str, round_id: int) -> list[MemberInfo]:
        """The committee of (task, round) in seat order (seat i holds Shamir x = i + 1).

        Computed over the members that had joined when the round started, so a
        later join never moves an open round's committee; raises ValueError if
        too few members can serve.
        """
        key = (task_id, round_id)
        if key not in self._committees:
            spec = self.tasks_by_id[task_id].spec
            start = round_id * spec.period_s
            members = [
                Member(m.node_id, m.capacity_at(start), m.input_only)
                for m in self.members
                if m.joined_at <= start
            ]
            self._committees[key] = select_committee(members, task_id, round_id, spec.k)
        return [self.by_id[n] for n in self._committees[key]]

    def with_changes(
        self,
        *,
        members: Iterable[MemberInfo] = (),
        tasks: Iterable[RosterTask] = (),
        updated: Iterable[MemberInfo] = (),
        issued_at: float,
    ) -> Roster:
        """The next version: ``members`` and ``tasks`` appended, ``updated`` replacing
        the members with their node ids."""
        changed = {m.node_id: m for m in updated}
        return replace(
            self,
            version=self.version + 1,
            issued_at=issued_at,
            members=tuple(changed.get(m.node_id, m) for m in self.members + tuple(members)),
            tasks=self.tasks + tuple(tasks),
            _committees={},
        )

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "federation": self.federation_id,
            "name": self.name,
            "version": self.version,
            "issued_at": float(self.issued_at),
            "founder": self.founder,
            "members": [m.to_dict() for m in self.members],
            "tasks": [t.to_dict() for t in self.tasks],
        }
        if self.hpke_policy != HPKE_POLICY_HYBRID:
            data["hpke_policy"] = self.hpke_policy
        if self.relay is not None:
            data["relay"] = self.relay.to_dict()
        return data

    @classmethod
    def from_dict(cls, data: Any) -> Roster:
        if not isinstance(data, dict):
            raise RosterError("roster must be a JSON object")
        try:
            members = tuple(MemberInfo.from_dict(m) for m in data["members"])
            tasks = tuple(RosterTask.from_dict(t) for t in data["tasks"])
            roster = cls(
                federation_id=str(data["federation"]),
                name=str(data["name"]),
                version=int(data["version"]),
                issued_at=float(data["issued_at"]),
                founder=str(data["founder"]),
                members=members,
                tasks=tasks,
                hpke_policy=str(data.get("hpke_policy", HPKE_POLICY_HYBRID)),
                relay=None if data.get("relay") is None else RelayEndpoint.from_dict(
                    data["relay"]),
            )
        except RelayConfigError as err:
            raise RosterError(f"roster relay: {err}") from None
        except (KeyError, TypeError) as err:
            raise RosterError(f"roster is malformed: missing or wrong {err}") from None
        if len(roster.by_id) != len(members):
            raise RosterError("roster lists a member twice")
        if len(roster.tasks_by_id) != len(tasks):
            raise RosterError("roster lists a task twice")
        if roster.founder not in roster.by_id:
            raise RosterError("roster founder is not a member")
        return roster


@dataclass(frozen=True)
class SignedRoster:
    roster: Roster
    sig: bytes
    # The exact JSON the signature covers: forwarded and stored as received, so a
    # roster from a newer founder (fields this version does not know) still verifies.
    signed: dict[str, Any] = field(compare=False, repr=False)

    def wire(self) -> dict[str, Any]:
        return {"roster": self.signed, "sig": b64url_encode(self.sig)}


def sign_roster(keys: NodeKeys, roster: Roster) -> SignedRoster:
    data = roster.to_dict()
    return SignedRoster(roster, keys.sign(ROSTER_CONTEXT + canonical_json(data)), data)


def verify_roster(wire: Any, founder_public: bytes | None = None) -> SignedRoster:
    """Parse and check a signed roster.

    With ``founder_public`` (the pinned key) the founder must hold that key;
    without it (first contact, at join) the caller checks the fingerprint.
    """
    if not isinstance(wire, dict) or not isinstance(wire.get("roster"), dict):
        raise RosterError("expected {'roster': {...}, 'sig': ...}")
    roster = Roster.from_dict(wire["roster"])
    key = roster.founder_member.signing_public
    if founder_public is not None and key != founder_public:
        raise RosterError("roster founder key differs from the pinned founder key")
    try:
        sig = b64url_decode(wire.get("sig", ""))
        verify_signature(key, ROSTER_CONTEXT + canonical_json(wire["roster"]), sig)
    except (ValueError, BadSignatureError) as err:
        raise RosterError(f"roster signature invalid: {err}") from None
    return SignedRoster(roster, sig, wire["roster"])
