"""Typed views of the backend's local API answers (see mpc_backend/api/local.py).

Parsing is strict about the fields Home Assistant relies on and ignores the rest,
so a newer backend that adds fields keeps working; a missing or mistyped field
raises UnexpectedAnswer, which the client reports like an unreachable backend.
Optional, diagnostic-only parts of /status (misbehaviour reports, members' HPKE
suites, the relay's connection) are read leniently instead: unreadable, they count as
not reported.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from homeassistant.util import dt as dt_util

from ..const import LOGGER
from .errors import UnexpectedAnswer

STATUS_RELEASED = "released"
QUANTILE_KEYS = ("p10", "p25", "p50", "p75", "p90")
# Misbehaviour the backend reports (a newer one may add kinds: they show by their slug).
MISBEHAVIOUR_KINDS = (
    "bad_signature",
    "equivocation",
    "contributor_set_refused",
    "forged_result",
    "invalid_report",  # a household's report failed its validity proof: left out of a round
)
# Kinds about a household's own report (a co-signed verdict), not about a committee's acts.
# Only an "invalid" verdict is logged against the household: a report left out as
# "inconsistent" or "unchecked" may be a committee member's doing, so it shows only in the
# round's count of excluded reports.
REPORT_KINDS = frozenset({"invalid_report"})


def field_of(data: Mapping[str, Any], key: str, kind: type | tuple[type, ...]) -> Any:
    """``data[key]`` if it is a ``kind`` (a bool is no number), else UnexpectedAnswer."""
    value = data.get(key) if isinstance(data, Mapping) else None
    if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
        raise UnexpectedAnswer(f"backend answer field {key!r} is missing or not {kind}")
    return value


def _optional_number(data: Mapping[str, Any], key: str) -> float | None:
    value = data.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise UnexpectedAnswer(f"backend answer field {key!r} is not a number")
    return float(value)


def _timestamp(data: Mapping[str, Any], key: str) -> datetime:
    value = field_of(data, key, str)
    parsed = dt_util.parse_datetime(value.replace("Z", "+00:00"))
    if parsed is None:
        raise UnexpectedAnswer(f"backend answer field {key!r} is not an ISO 8601 time")
    return parsed


@dataclass(frozen=True, slots=True)
class TaskSpec:
    """What a task aggregates (the backend's TaskSpec, as far as HA needs it)."""

    task_id: str
    metric: str
    unit: str
    low: float
    high: float
    resolution: float
    stats: tuple[str, ...]
    buckets: tuple[float, ...]
    period_s: int
    min_contributors: int
    dp_epsilon: float | None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> TaskSpec:
        try:
            spec = cls(
                task_id=field_of(data, "task_id", str),
                metric=field_of(data, "metric", str),
                unit=field_of(data, "unit", str),
                low=float(field_of(data, "low", int | float)),
                high=float(field_of(data, "high", int | float)),
                resolution=float(field_of(data, "resolution", int | float)),
                stats=tuple(str(s) for s in field_of(data, "stats", list)),
                buckets=tuple(float(b) for b in data.get("buckets") or ()),
                period_s=field_of(data, "period_s", int),
                min_contributors=field_of(data, "min_contributors", int),
                dp_epsilon=_optional_number(data, "dp_epsilon"),
            )
        except (TypeError, ValueError, AttributeError) as err:
            raise UnexpectedAnswer(f"malformed task from the backend: {err}") from err
        # Rounds, clipping and the fixed-point encoding divide by or span these.
        if spec.resolution <= 0 or spec.period_s <= 0 or not spec.low < spec.high:
            raise UnexpectedAnswer(
                f"task {spec.task_id!r} from the backend needs resolution > 0, period_s > 0 "
                f"and low < high (got {spec.resolution}, {spec.period_s}, "
                f"{spec.low}..{spec.high})"
            )
        return spec


@dataclass(frozen=True, slots=True)
class TaskStatus:
    """A task as /status reports it: its spec plus this node's view of the rounds."""

    spec: TaskSpec
    current_round: int
    on_committee: bool
    last_round_status: str | None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> TaskStatus:
        last = data.get("last_round")
        return cls(
            spec=TaskSpec.from_json(field_of(data, "spec", dict)),
            current_round=field_of(data, "current_round", int),
            on_committee=field_of(data, "on_committee", bool),
            last_round_status=field_of(last, "status", str) if last else None,
        )


@dataclass(frozen=True, slots=True)
class MemberMisbehaviour:
    """What this node recorded against one member (signed by it, refused by us)."""

    node_id: str
    name: str
    count: int
    kinds: dict[str, int]  # e.g. {"forged_result": 2}
    last_kind: str | None
    last_detail: str | None
    last_at: datetime | None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> MemberMisbehaviour:
        count = field_of(data, "count", int)
        if count < 0:
            raise UnexpectedAnswer(f"negative misbehaviour count {count}")
        kinds = data.get("kinds")
        return cls(
            node_id=field_of(data, "node_id", str),
            name=field_of(data, "name", str),
            count=count,
            kinds={
                str(k): v for k, v in kinds.items()
                if isinstance(v, int) and not isinstance(v, bool) and v > 0
            } if isinstance(kinds, Mapping) else {},
            last_kind=_optional_str(data, "last_kind"),
            last_detail=_optional_str(data, "last_detail"),
            last_at=_optional_timestamp(data, "last_at"),
        )


@dataclass(frozen=True, slots=True)
class Misbehaviour:
    """The node's misbehaviour reports: a persisted total and who they were about."""

    total: int
    members: tuple[MemberMisbehaviour, ...]  # most reports first

    @classmethod
    def from_json(cls, data: Any) -> Misbehaviour | None:
        """None if the backend does not report misbehaviour (older) or sent no usable total.

        A member entry that cannot be read is skipped, not allowed to hide the others.
        """
        if data is None:
            return None
        try:
            total = field_of(data, "total", int)
        except UnexpectedAnswer as err:
            LOGGER.debug("Ignoring the backend's misbehaviour report: %s", err)
            return None
        if total < 0:
            LOGGER.debug("Ignoring the backend's misbehaviour report: total %s", total)
            return None
        members: list[MemberMisbehaviour] = []
        items = data.get("members")
        for item in items if isinstance(items, list) else ():
            try:
                members.append(MemberMisbehaviour.from_json(item))
            except (UnexpectedAnswer, TypeError, ValueError, AttributeError) as err:
                LOGGER.debug("Ignoring a misbehaviour entry from the backend: %s", err)
        members.sort(key=lambda m: (-m.count, m.name))
        return cls(total=total, members=tuple(members))


def _optional_str(data: Mapping[str, Any], key: str) -> str | None:
    value = data.get(key)
    return value if isinstance(value, str) else None


def _optional_timestamp(data: Mapping[str, Any], key: str) -> datetime | None:
    try:
        return _timestamp(data, key)
    except (UnexpectedAnswer, ValueError):
        return None


def _classical_members(members: Any) -> tuple[str, ...] | None:
    """Names of members whose HPKE keys are classical only; None if the backend does not say."""
    if not isinstance(members, list):
        return None
    known, classical = False, []
    for member in members:
        flag = member.get("post_quantum") if isinstance(member, Mapping) else None
        if isinstance(flag, bool):
            known = True
            if not flag:
                classical.append(str(member.get("name") or member.get("node_id")))
    return tuple(classical) if known else None


def _public_url(url: str) -> str:
    """The URL without user name or password (a broker URL may one day carry them)."""
    try:
        parts = urlsplit(url)
        if parts.username is None and parts.password is None:
            return url
        host = parts.hostname or ""
        if ":" in host:
            host = f"[{host}]"
        netloc = host if parts.port is None else f"{host}:{parts.port}"
    except ValueError:
        return url.rpartition("@")[2]  # unparseable: at least drop anything before an @
    return urlunsplit(parts._replace(netloc=netloc))


@dataclass(frozen=True, slots=True)
class RelayStatus:
    """The node's link to the federation's MQTT relay (its broker)."""

    url: str  # without credentials
    connected: bool
    mailbox: str | None = None
    since: datetime | None = None  # when the current state (connected or not) began
    last_error: str | None = None
    reconnects: int | None = None  # failed connection attempts since the node started

    @classmethod
    def from_json(cls, data: Any) -> RelayStatus | None:
        """None when the federation uses direct HTTP (null or no key: an older backend),
        or when the block cannot be read: it only describes the transport."""
        if data is None:
            return None
        try:
            reconnects = data.get("reconnects")
            return cls(
                url=_public_url(field_of(data, "url", str)),
                connected=field_of(data, "connected", bool),
                mailbox=_optional_str(data, "mailbox"),
                since=_optional_timestamp(data, "since"),
                last_error=_optional_str(data, "last_error"),
                reconnects=reconnects
                if isinstance(reconnects, int) and not isinstance(reconnects, bool)
                and reconnects >= 0 else None,
            )
        except (UnexpectedAnswer, TypeError, ValueError, AttributeError) as err:
            LOGGER.debug("Ignoring the backend's relay status: %s", err)
            return None


def _relay_admin_url(data: Any) -> str | None:
    """identity.relay_admin's broker URL; None when none is configured (or it is unusable)."""
    url = data.get("url") if isinstance(data, Mapping) else None
    return _public_url(url) if isinstance(url, str) and url else None


@dataclass(frozen=True, slots=True)
class NodeStatus:
    """This household's node: identity, federation, load."""

    node_id: str
    name: str
    version: str
    federation_id: str | None
    federation_name: str | None
    members: int
    members_online: int
    committee_seats: int
    tasks: tuple[TaskStatus, ...]
    misbehaviour: Misbehaviour | None = None  # None: not reported (older backend)
    classical_members: tuple[str, ...] | None = None  # None: suites not reported
    relay: RelayStatus | None = None  # None: direct HTTP, or not reported (older backend)
    # The broker whose admin account is configured beside the node (the app's options):
    # a relay federation can be founded without typing its credentials.
    relay_admin_url: str | None = None

    @property
    def in_federation(self) -> bool:
        return self.federation_id is not None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> NodeStatus:
        try:
            identity = field_of(data, "identity", dict)
            federation = data.get("federation")
            load = field_of(data, "load", dict)
            return cls(
                node_id=field_of(identity, "node_id", str),
                name=field_of(identity, "name", str),
                version=field_of(identity, "version", str),
                federation_id=field_of(federation, "id", str) if federation else None,
                federation_name=field_of(federation, "name", str) if federation else None,
                members=field_of(federation, "members", int) if federation else 0,
                members_online=field_of(federation, "members_online", int) if federation else 0,
                committee_seats=int(load.get("committee_seats_now", 0)),
                tasks=tuple(TaskStatus.from_json(t) for t in data.get("tasks") or ()),
                misbehaviour=Misbehaviour.from_json(data.get("misbehaviour")),
                classical_members=_classical_members(data.get("members")),
                relay=RelayStatus.from_json(data.get("relay")),
                relay_admin_url=_relay_admin_url(identity.get("relay_admin")),
            )
        except (TypeError, ValueError, AttributeError) as err:
            raise UnexpectedAnswer(f"malformed status from the backend: {err}") from err


@dataclass(frozen=True, slots=True)
class HistogramBin:
    low: float
    high: float
    count: int


@dataclass(frozen=True, slots=True)
class Statistics:
    """A released aggregate; a statistic the task does not compute is None."""

    count: int
    sum: float | None
    mean: float | None
    variance: float | None
    stddev: float | None
    histogram: tuple[HistogramBin, ...] | None
    quantiles: Mapping[str, float] | None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Statistics:
        histogram = data.get("histogram")
        quantiles = data.get("quantiles")
        return cls(
            count=field_of(data, "count", int),
            sum=_optional_number(data, "sum"),
            mean=_optional_number(data, "mean"),
            variance=_optional_number(data, "variance"),
            stddev=_optional_number(data, "stddev"),
            histogram=None if histogram is None else tuple(
                HistogramBin(float(b["low"]), float(b["high"]), int(b["count"]))
                for b in histogram
            ),
            quantiles=None if quantiles is None else {
                k: float(v) for k, v in quantiles.items() if k in QUANTILE_KEYS
            },
        )

    def as_dict(self) -> dict[str, Any]:
        """JSON-safe form for events, action responses and diagnostics."""
        return {
            "count": self.count,
            "sum": self.sum,
            "mean": self.mean,
            "variance": self.variance,
            "stddev": self.stddev,
            "histogram": None if self.histogram is None else [
                {"low": b.low, "high": b.high, "count": b.count} for b in self.histogram
            ],
            "quantiles": None if self.quantiles is None else dict(self.quantiles),
        }


@dataclass(frozen=True, slots=True)
class TaskResult:
    """One round's outcome; statistics only when the round was released."""

    seq: int
    task: str
    metric: str
    unit: str
    round: int
    status: str
    reason: str | None
    contributors: int | None
    statistics: Statistics | None
    round_end: datetime
    released_at: datetime
    # Reports the committee left out of the round, with its co-signed verdict on each:
    # (household node id, "invalid" | "inconsistent" | "unchecked"); empty from an older
    # backend. Only "invalid" ones are also in the misbehaviour reports.
    excluded: tuple[tuple[str, str], ...] = ()

    @property
    def released(self) -> bool:
        return self.status == STATUS_RELEASED and self.statistics is not None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> TaskResult:
        stats = data.get("statistics")
        contributors = data.get("contributors")
        try:
            return cls(
                seq=field_of(data, "seq", int),
                task=field_of(data, "task", str),
                metric=field_of(data, "metric", str),
                unit=field_of(data, "unit", str),
                round=field_of(data, "round", int),
                status=field_of(data, "status", str),
                reason=data.get("reason"),
                contributors=None if contributors is None else int(contributors),
                statistics=None if stats is None else Statistics.from_json(stats),
                round_end=_timestamp(data, "round_end"),
                released_at=_timestamp(data, "released_at"),
                excluded=_excluded(data.get("excluded")),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as err:
            raise UnexpectedAnswer(f"malformed result from the backend: {err}") from err

    def as_dict(self) -> dict[str, Any]:
        return {
            "task": self.task,
            "metric": self.metric,
            "unit": self.unit,
            "round": self.round,
            "status": self.status,
            "reason": self.reason,
            "contributors": self.contributors,
            "statistics": None if self.statistics is None else self.statistics.as_dict(),
            "round_end": self.round_end.isoformat(),
            "released_at": self.released_at.isoformat(),
            "excluded_reports": len(self.excluded),
        }


def _excluded(entries: Any) -> tuple[tuple[str, str], ...]:
    """A result's verdicts on left-out reports; an unreadable entry is skipped (they only
    describe the round: the statistics and contributor count already leave them out)."""
    return tuple(
        (entry["household"], entry["verdict"])
        for entry in (entries if isinstance(entries, list) else ())
        if isinstance(entry, Mapping)
        and isinstance(entry.get("household"), str)
        and isinstance(entry.get("verdict"), str)
    )


@dataclass(frozen=True, slots=True)
class Receipt:
    """The backend's answer to a reading: which round it went to."""

    task: str
    round: int
    duplicate: bool
    acknowledged_by: int

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Receipt:
        return cls(
            task=field_of(data, "task", str),
            round=field_of(data, "round", int),
            duplicate=field_of(data, "duplicate", bool),
            acknowledged_by=field_of(data, "acknowledged_by", int),
        )
