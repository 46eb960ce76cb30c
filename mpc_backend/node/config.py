"""The node's settings file (``config.json`` in the data dir) and the local API token.

``init`` writes both; ``serve`` and every admin command read them, which is how
the CLI finds the running node (its listen address) and authenticates (the
token). The timing block is for operators with unusual links and for tests;
every field has a sensible default.

Storage: SQLite in the data dir by default; ``database_url`` (``init --database-url``)
points the node at its own PostgreSQL database instead. ``HEARTH_DATABASE_URL`` in
``serve``'s environment replaces that URL (to keep a password out of the file); it never
moves a SQLite node onto a database.

Listening policy: loopback by default. Any other address carries the local API
(bearer token) and the peer API, so it needs TLS (``tls_cert``/``tls_key``) or
an explicit ``insecure_listen``, which is logged as a warning at every start.
"""

from __future__ import annotations

import ipaddress
import json
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

CONFIG_FILE_NAME = "config.json"
TOKEN_FILE_NAME = "api_token"  # noqa: S105 - a file name, not a secret
DATABASE_URL_ENV = "HEARTH_DATABASE_URL"

# Capacity weighs a hub's chance of a committee seat. Bounded so that no member can
# claim seats by declaring a huge capacity: privacy holds only while fewer than t + 1
# members of a committee collude, so seats must stay spread over the members.
MIN_CAPACITY = 0.5
MAX_CAPACITY = 2.0
CAPACITY_MEANING = (
    f"a small hint of how much committee work a hub can take next to an ordinary hub (1), "
    f"from {MIN_CAPACITY:g} for a weak hub to {MAX_CAPACITY:g} for a strong one; a hub that "
    "should never compute uses --input-only instead"
)
URL_FORM = (
    "use http://HOST[:PORT] or https://HOST[:PORT], e.g. http://192.168.1.20:8731, "
    "without a path, query, fragment or user:password@"
)
MAX_URL_LENGTH = 300


class ConfigError(Exception):
    """The data dir's settings are missing or invalid; the message says what to do."""


class DataDirBusyError(ConfigError):
    """Another ``serve`` process holds the data dir."""


@dataclass(frozen=True)
class Timing:
    """Round and peer-call timing (seconds)."""

    grace_s: float = 5.0  # shares for a round are accepted this long after it ends (clock skew)
    takeover_s: float = 20.0  # committee member i starts closing i * takeover_s after member 0
    peer_timeout_s: float = 5.0  # per peer request
    peer_attempts: int = 3  # bounded retries per peer call
    backoff_s: float = 0.25  # first retry delay; doubles per attempt

    def __post_init__(self) -> None:
        for name in ("grace_s", "takeover_s", "peer_timeout_s", "backoff_s"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or isinstance(value, bool) or value <= 0:
                raise ConfigError(f"timing.{name} must be a positive number, got {value!r}")
        if not isinstance(self.peer_attempts, int) or not 1 <= self.peer_attempts <= 10:
            raise ConfigError(f"timing.peer_attempts must be 1-10, got {self.peer_attempts!r}")
        # A coordinator refreshes its claim on a round at every step; one step can wait
        # out a whole call chain to a dead member. A shorter takeover lets the next seat
        # close the same round concurrently, and members end up with different results.
        chain = self.peer_call_chain_s
        if self.takeover_s <= chain:
            raise ConfigError(
                f"timing.takeover_s (--takeover, {self.takeover_s:g} s) must exceed one peer "
                f"call chain to an unreachable member: timing.peer_attempts (--peer-attempts, "
                f"{self.peer_attempts}) x timing.peer_timeout_s (--peer-timeout, "
                f"{self.peer_timeout_s:g} s) + retry backoff from timing.backoff_s "
                f"({chain - self.peer_attempts * self.peer_timeout_s:g} s) = {chain:g} s; "
                "raise takeover_s or lower peer_timeout_s / peer_attempts"
            )

    def backoff(self, failures: int) -> float:
        """Wait before retrying after ``failures`` failed rounds in a row: doubling from
        backoff_s, at most a minute."""
        return min(self.backoff_s * 2 ** min(failures, 8), 60.0)

    @property
    def peer_call_chain_s(self) -> float:
        """Longest a peer call can take: every attempt times out, with backoff between."""
        backoff = self.backoff_s * (2 ** (self.peer_attempts - 1) - 1)
        return self.peer_attempts * self.peer_timeout_s + backoff


@dataclass(frozen=True)
class NodeConfig:
    name: str
    listen_host: str
    listen_port: int
    public_url: str | None
    capacity: float = 1.0
    input_only: bool = False
    tls_cert: str | None = None
    tls_key: str | None = None
    insecure_listen: bool = False
    timing: Timing = field(default_factory=Timing)
    # PostgreSQL instead of SQLite; may carry a password, so it stays out of repr and logs.
    database_url: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if not self.name.strip():
            raise ConfigError("name must not be empty")
        if not 0 <= self.listen_port <= 65535:
            raise ConfigError(f"listen port {self.listen_port} is not a TCP port")
        problem = capacity_problem(self.capacity)
        if problem is not None:
            raise ConfigError(problem)
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ConfigError("give both --tls-cert and --tls-key, or neither")
        if self.public_url is not None:
            problem = url_problem(self.public_url)
            if problem is not None:
                raise ConfigError(f"public URL (--public-url) {problem}")
        if self.database_url is not None:
            problem = _database_url_problem(self.database_url)
            if problem is not None:
                raise ConfigError(f"the database URL (--database-url or HEARTH_DATABASE_URL) "
                                  f"{problem}; it must be "
                                  "postgresql://USER[:PASSWORD]@HOST[:PORT]/DATABASE")
        if not is_loopback(self.listen_host) and not (self.tls or self.insecure_listen):
            raise ConfigError(
                f"listening on {self.listen_host} exposes the node beyond this machine; "
                "give --tls-cert and --tls-key, or --insecure-listen if a trusted network "
                "or a TLS proxy in front makes that safe"
            )

    @property
    def tls(self) -> bool:
        return self.tls_cert is not None

    @property
    def listen(self) -> str:
        host = f"[{self.listen_host}]" if ":" in self.listen_host else self.listen_host
        return f"{host}:{self.listen_port}"

    @property
    def local_url(self) -> str:
        """Where the CLI reaches this node's local API."""
        host = self.listen_host
        if host in ("0.0.0.0", "::"):  # noqa: S104 - mapping a wildcard bind to loopback
            host = "127.0.0.1" if host == "0.0.0.0" else "::1"  # noqa: S104
        host = f"[{host}]" if ":" in host else host
        return f"{'https' if self.tls else 'http'}://{host}:{self.listen_port}"

    @property
    def peer_url(self) -> str:
        """The URL other members reach this node at."""
        return (self.public_url or self.local_url).rstrip("/")

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["listen"] = self.listen
        del data["listen_host"], data["listen_port"]
        # Only what the operator chose, so improved defaults reach existing nodes.
        defaults = asdict(Timing())
        data["timing"] = {k: v for k, v in data["timing"].items() if v != defaults[k]}
        if self.database_url is None:
            del data["database_url"]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> NodeConfig:
        try:
            host, port = parse_listen(data["listen"])
            timing = Timing(**data.get("timing", {}))
            return cls(
                name=data["name"],
                listen_host=host,
                listen_port=port,
                public_url=data.get("public_url"),
                capacity=float(data.get("capacity", 1.0)),
                input_only=bool(data.get("input_only", False)),
                tls_cert=data.get("tls_cert"),
                tls_key=data.get("tls_key"),
                insecure_listen=bool(data.get("insecure_listen", False)),
                timing=timing,
                database_url=data.get("database_url"),
            )
        except (KeyError, TypeError, ValueError) as err:
            raise ConfigError(f"settings are invalid ({err})") from None


def capacity_problem(capacity: float) -> str | None:
    """Why ``capacity`` is not an acceptable member capacity, or None if it is."""
    if MIN_CAPACITY <= capacity <= MAX_CAPACITY:  # also false for NaN
        return None
    return (f"capacity {capacity:g} is outside the allowed range {MIN_CAPACITY:g} to "
            f"{MAX_CAPACITY:g}; capacity is {CAPACITY_MEANING}")


def url_problem(url: str) -> str | None:
    """Why ``url`` is not a member URL other hubs can call, or None if it is.

    Peers append ``/peer/v1/...`` to it, so anything beyond scheme, host and port
    would be dropped or mangled; userinfo would put a password into every roster.
    """
    problem = _url_problem(url)
    return None if problem is None else f"{url!r} {problem}; {URL_FORM}"


def _url_problem(url: str) -> str | None:
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:  # e.g. an unclosed [IPv6 bracket or a port beyond 65535
        return "is not a valid URL or has an invalid port"
    checks = (
        (len(url) > MAX_URL_LENGTH, f"is longer than {MAX_URL_LENGTH} characters"),
        (any(ch.isspace() or not ch.isprintable() for ch in url),
         "contains spaces or control characters"),
        (parts.scheme not in ("http", "https"), "is not an http or https URL"),
        ("@" in parts.netloc, "carries a user name or password"),
        (not parts.hostname, "has no host"),
        (port == 0, "has port 0"),
        (parts.path not in ("", "/"), f"has a path ({parts.path})"),
        (bool(parts.query) or "?" in url, "has a query"),
        (bool(parts.fragment) or "#" in url, "has a fragment"),
    )
    return next((problem for failed, problem in checks if failed), None)


def _database_url_problem(url: str) -> str | None:
    """What is wrong with a PostgreSQL URL, in words that never quote it (a password could
    be in any part of a malformed one); None if it can be used."""
    if not url.startswith(("postgresql://", "postgres://")):
        return "is not a postgresql:// URL"
    try:
        parts = urlsplit(url)
    except ValueError:
        return "cannot be read (an IPv6 address must be written [ADDRESS], closed)"
    try:
        port = parts.port
    except ValueError:
        port = 0
    if port == 0:
        return "has a port that is not a number from 1 to 65535"
    return None


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def parse_listen(text: str) -> tuple[str, int]:
    """``HOST:PORT`` or ``[V6]:PORT`` -> (host, port)."""
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ConfigError(f"listen address {text!r} must be HOST:PORT, e.g. 127.0.0.1:8731")
    host = host.strip("[]")
    return host, int(port)


def config_path(data_dir: Path) -> Path:
    return Path(data_dir) / CONFIG_FILE_NAME


def token_path(data_dir: Path) -> Path:
    return Path(data_dir) / TOKEN_FILE_NAME


def load_config(data_dir: Path, env: Mapping[str, str] | None = None) -> NodeConfig:
    """The node's settings; with ``env`` (a process environment: ``serve`` and its ingest
    workers), ``HEARTH_DATABASE_URL`` there replaces the stored database URL."""
    config = _read_config(data_dir)
    url = env.get(DATABASE_URL_ENV) if env is not None else None
    if not url:
        return config
    if config.database_url is None:  # a password kept off the disk, never a move to a database
        raise ConfigError(f"this node keeps its state in SQLite in {data_dir}; unset "
                          f"{DATABASE_URL_ENV}, or init a node with --database-url")
    return replace(config, database_url=url)


def _read_config(data_dir: Path) -> NodeConfig:
    path = config_path(data_dir)
    try:
        raw = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            f"{data_dir} is not a node data dir (no {CONFIG_FILE_NAME}); "
            f"run: mpc-backend init --data-dir {data_dir} --name NAME --listen 127.0.0.1:PORT"
        ) from None
    try:
        data = json.loads(raw)
    except ValueError as err:
        raise ConfigError(f"{path} is not valid JSON ({err})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must hold a JSON object")
    try:
        return NodeConfig.from_dict(data)
    except ConfigError as err:
        raise ConfigError(f"{path}: {err}") from None


def write_private(path: Path, text: str) -> None:
    """Create ``path`` with mode 0600 (never readable by others, even briefly)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())


def replace_private(path: Path, text: str) -> None:
    """Write ``path`` (0600) so that a reader sees the old file or the new, never a part."""
    tmp = path.with_name(f".{path.name}.new")
    tmp.unlink(missing_ok=True)  # a leftover may have looser permissions
    write_private(tmp, text)
    os.replace(tmp, path)


def save_config(data_dir: Path, config: NodeConfig) -> None:
    write_private(config_path(data_dir), json.dumps(config.to_dict(), indent=2) + "\n")


def read_token(data_dir: Path) -> str:
    path = token_path(data_dir)
    try:
        mode = path.stat().st_mode & 0o077
        token = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        raise ConfigError(
            f"no API token in {data_dir}; run: mpc-backend init --data-dir {data_dir} ..."
        ) from None
    if mode:
        raise ConfigError(f"{path} is accessible by other users; run: chmod 600 {path}")
    if not token:
        raise ConfigError(f"{path} is empty; restore it or re-run init in a new data dir")
    return token
