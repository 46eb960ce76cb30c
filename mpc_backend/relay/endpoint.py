"""Where the federation's broker is, who a node is to it, and the topics it uses.

Topic layout: every member has one inbox, ``hearth/<federation id>/<mailbox>/in``,
that only it may subscribe to and every member may publish to. A mailbox is the
member's broker username, assigned by the founder when it provisions the
account (at ``federation create`` for itself, at ``invite`` for a newcomer), so
the broker's per-username ACL is the whole access rule.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from mpc_backend.node.config import is_loopback

TOPIC_ROOT = "hearth"
SCHEMES = {"mqtt": 1883, "mqtts": 8883}
_MAILBOX = re.compile(r"[a-z0-9][a-z0-9-]{2,63}")


class RelayConfigError(ValueError):
    """A relay URL, account or CA certificate is unusable; the message says how to fix it."""


@dataclass(frozen=True)
class RelayEndpoint:
    """The broker: ``mqtts://host[:port]`` (``mqtt://`` on loopback only), and the PEM CA
    certificate that signs its TLS certificate when that is not a public CA."""

    url: str
    ca_pem: str | None = None

    def __post_init__(self) -> None:
        problem = relay_url_problem(self.url)
        if problem:
            raise RelayConfigError(f"relay URL {self.url!r} {problem}")
        if self.ca_pem is not None and "-----BEGIN CERTIFICATE-----" not in self.ca_pem:
            raise RelayConfigError(
                "relay CA must be a PEM certificate (-----BEGIN CERTIFICATE-----)")

    @property
    def host(self) -> str:
        host = urlsplit(self.url).hostname
        assert host is not None  # checked in __post_init__
        return host

    @property
    def port(self) -> int:
        parts = urlsplit(self.url)
        return parts.port or SCHEMES[parts.scheme]

    @property
    def tls(self) -> bool:
        return urlsplit(self.url).scheme == "mqtts"

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"url": self.url}
        if self.ca_pem is not None:
            data["ca"] = self.ca_pem
        return data

    @classmethod
    def from_dict(cls, data: Any) -> RelayEndpoint:
        if not isinstance(data, dict) or not isinstance(data.get("url"), str):
            raise RelayConfigError(
                "relay must be {'url': 'mqtts://host:port', 'ca': PEM or absent}")
        ca = data.get("ca")
        if ca is not None and not isinstance(ca, str):
            raise RelayConfigError("relay CA must be PEM text")
        return cls(data["url"], ca)


@dataclass(frozen=True)
class BrokerAccount:
    """A member's own broker credentials; the username is also its mailbox."""

    username: str
    password: str

    def __post_init__(self) -> None:
        if not _MAILBOX.fullmatch(self.username):
            raise RelayConfigError(
                f"broker username {self.username!r} must be 3-64 characters a-z, 0-9 and '-'")
        if not self.password:
            raise RelayConfigError("broker password must not be empty")

    def to_dict(self) -> dict[str, str]:
        return {"username": self.username, "password": self.password}

    @classmethod
    def from_dict(cls, data: Any) -> BrokerAccount:
        if not isinstance(data, dict) or not all(
                isinstance(data.get(k), str) for k in ("username", "password")):
            raise RelayConfigError("broker account must be {'username': ..., 'password': ...}")
        return cls(data["username"], data["password"])


def mailbox_problem(mailbox: Any) -> str | None:
    if not isinstance(mailbox, str) or not _MAILBOX.fullmatch(mailbox):
        return "must be 3-64 characters a-z, 0-9 and '-'"
    return None


def relay_url_problem(url: str) -> str | None:
    """Why ``url`` cannot be a relay URL, or None."""
    try:
        parts = urlsplit(url)
        host, _ = parts.hostname, parts.port
    except ValueError as err:
        return f"is malformed ({err})"
    if parts.scheme not in SCHEMES or not host:
        return "must look like mqtts://host:8883 (or mqtt://127.0.0.1:1883 on this machine)"
    if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username:
        return "must be just scheme, host and port (credentials come from the invite)"
    if parts.scheme == "mqtt" and not is_loopback(host):
        return ("uses plain mqtt:// to another machine; the broker sees passwords in clear "
                "that way: use mqtts:// (TLS)")
    return None


def inbox_topic(federation_id: str, mailbox: str) -> str:
    return f"{TOPIC_ROOT}/{federation_id}/{mailbox}/in"


def inbox_filter(federation_id: str) -> str:
    """Every inbox of a federation: what a member may publish to."""
    return f"{TOPIC_ROOT}/{federation_id}/+/in"
