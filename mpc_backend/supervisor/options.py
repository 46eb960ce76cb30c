"""The app's options, from the Supervisor's ``options.json`` or ``HEARTH_*`` env vars.

Pure: nothing here touches the disk or the network, so every option is checked
before the start script changes anything (a bad option never leaves a
half-initialised data dir behind). Checks reuse the node's own validators
(``NodeConfig``, ``RelayEndpoint``, ``BrokerAccount``), so the app accepts
exactly what ``mpc-backend init`` and ``relay init`` accept.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from mpc_backend.node.config import (
    CAPACITY_MEANING,
    URL_FORM,
    ConfigError,
    NodeConfig,
    capacity_problem,
    url_problem,
)
from mpc_backend.relay.endpoint import BrokerAccount, RelayConfigError, RelayEndpoint

MAX_NAME_LENGTH = 64
LOG_LEVELS = ("debug", "info", "warning", "error")
RELAY_KEYS = ("relay_url", "relay_username", "relay_password", "relay_ca")

# options.json key -> container env var
ENV_VARS = {
    "name": "HEARTH_NAME",
    "capacity": "HEARTH_CAPACITY",
    "input_only": "HEARTH_INPUT_ONLY",
    "relay_url": "HEARTH_RELAY_URL",
    "relay_username": "HEARTH_RELAY_USERNAME",
    "relay_password": "HEARTH_RELAY_PASSWORD",
    "relay_ca": "HEARTH_RELAY_CA",
    "log_level": "HEARTH_LOG_LEVEL",
    "public_url": "HEARTH_PUBLIC_URL",
}
# Not app options: the app publishes no port, so neighbours could never call an app
# node at a public URL (it needs a relay); only a container can publish one.
CONTAINER_ONLY = ("public_url",)
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}
_PEM = re.compile(r"-----BEGIN CERTIFICATE-----(.*?)-----END CERTIFICATE-----", re.DOTALL)


class OptionsError(Exception):
    """One option is unusable: ``option`` names it, ``problem`` says what to do."""

    def __init__(self, option: str, problem: str) -> None:
        super().__init__(f"{option}: {problem}")
        self.option = option
        self.problem = problem


@dataclass(frozen=True)
class RelayAdmin:
    """The broker admin account the founder provisions members with (relay-admin.json)."""

    url: str
    username: str
    password: str = field(repr=False)
    ca: str | None = field(default=None, repr=False)

    def to_file(self) -> dict[str, Any]:
        """The format ``mpc-backend relay init`` writes."""
        data: dict[str, Any] = {"url": self.url}
        if self.ca is not None:
            data["ca"] = self.ca
        data["admin"] = {"username": self.username, "password": self.password}
        return data


@dataclass(frozen=True)
class AppOptions:
    name: str
    capacity: float = 1.0
    input_only: bool = False
    relay: RelayAdmin | None = None
    log_level: str = "info"
    public_url: str | None = None

    def node_config(self, listen_host: str, listen_port: int) -> NodeConfig:
        """The settings ``init`` would write; raises OptionsError naming the option."""
        try:
            return NodeConfig(name=self.name, listen_host=listen_host, listen_port=listen_port,
                              public_url=self.public_url, capacity=self.capacity,
                              input_only=self.input_only, insecure_listen=True)
        except ConfigError as err:
            raise OptionsError("listen", str(err)) from None


def parse_options_json(text: str) -> dict[str, Any]:
    try:
        data = json.loads(text)
    except ValueError as err:
        raise OptionsError("options.json", f"is not valid JSON ({err})") from None
    if not isinstance(data, dict):
        raise OptionsError("options.json", "must hold a JSON object")
    return data


def options_from_env(env: Mapping[str, str]) -> dict[str, Any]:
    """The raw options a container gets through ``HEARTH_*`` variables (strings)."""
    return {key: env[var] for key, var in ENV_VARS.items() if var in env}


def parse_options(raw: Mapping[str, Any]) -> AppOptions:
    """Check every option; the first unusable one raises OptionsError."""
    return AppOptions(
        name=_name(raw.get("name")),
        capacity=_capacity(raw.get("capacity", 1.0)),
        input_only=_bool("input_only", raw.get("input_only", False)),
        relay=_relay(raw),
        log_level=_log_level(raw.get("log_level", "info")),
        public_url=_public_url(raw),
    )


def _name(value: Any) -> str:
    if value is None:
        raise OptionsError("name", "is missing; set the household name your neighbours see, "
                                   "e.g. 'No. 12'")
    if not isinstance(value, str) or not value.strip():
        raise OptionsError("name", "is empty; set the household name your neighbours see, "
                                   "e.g. 'No. 12'")
    name = value.strip()
    if len(name) > MAX_NAME_LENGTH:
        raise OptionsError("name", f"is longer than {MAX_NAME_LENGTH} characters; shorten it")
    if any(not ch.isprintable() for ch in name):
        raise OptionsError("name", "contains control characters; use plain text")
    return name


def _capacity(value: Any) -> float:
    if isinstance(value, bool):
        number = math.nan
    elif isinstance(value, int | float):
        number = float(value)
    else:
        try:
            number = float(str(value).strip())
        except ValueError:
            number = math.nan
    if math.isnan(number):
        raise OptionsError("capacity", f"must be a number from 0.5 to 2, got {value!r}; "
                                       f"capacity is {CAPACITY_MEANING}")
    problem = capacity_problem(number)
    if problem is not None:
        raise OptionsError("capacity", problem.replace("--input-only", "input_only"))
    return number


def _bool(option: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise OptionsError(option, f"must be true or false, got {value!r}")


def _log_level(value: Any) -> str:
    if isinstance(value, str) and value.strip().lower() in LOG_LEVELS:
        return value.strip().lower()
    raise OptionsError("log_level", f"must be one of {', '.join(LOG_LEVELS)}, got {value!r}")


def _public_url(raw: Mapping[str, Any]) -> str | None:
    """Where neighbours call this node without a relay (``init --public-url``)."""
    url = _text(raw, "public_url")
    if url is None:
        return None
    if "@" in url:  # userinfo: never echo it, it may carry a password
        raise OptionsError("public_url", f"must not contain user:password@; {URL_FORM}")
    problem = url_problem(url)
    if problem is not None:
        raise OptionsError("public_url", problem)
    return url


def _text(raw: Mapping[str, Any], key: str) -> str | None:
    """An optional text option; absent, null and blank all mean 'not set'."""
    value = raw.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise OptionsError(key, "must be text")
    return value.strip() or None


def _relay(raw: Mapping[str, Any]) -> RelayAdmin | None:
    url, username, password, ca = (_text(raw, key) for key in RELAY_KEYS)
    if url is None:
        given = [key for key, value in zip(RELAY_KEYS[1:], (username, password, ca), strict=True)
                 if value is not None]
        if given:
            raise OptionsError(given[0], "is set but relay_url is not; give the broker's "
                                         "relay_url too (e.g. mqtts://relay.example.net:8883), "
                                         "or clear all relay options")
        return None
    try:
        netloc = urlsplit(url).netloc
    except ValueError as err:  # e.g. an unclosed [IPv6 bracket; the URL may hold a password
        raise OptionsError("relay_url", f"is malformed ({err}); use "
                                        "mqtts://HOST:PORT, e.g. mqtts://relay.example.net:8883"
                           ) from None
    if "@" in netloc:
        # Never echo this URL: it carries a password.
        raise OptionsError("relay_url", "must not contain user:password@; put the admin account "
                                        "into relay_username and relay_password")
    missing = [key for key, value in (("relay_username", username), ("relay_password", password))
               if value is None]
    if missing:
        raise OptionsError(missing[0], "is empty but relay_url is set; give the broker's admin "
                                       "account (username and password from the "
                                       "relay-admin.json that mpc-backend relay init wrote), "
                                       "or clear relay_url")
    assert username is not None and password is not None
    try:
        endpoint = RelayEndpoint(url, None if ca is None else normalise_pem(ca))
    except RelayConfigError as err:
        raise OptionsError("relay_ca" if ca and "CA" in str(err) else "relay_url",
                           str(err)) from None
    try:
        BrokerAccount(username, password)
    except RelayConfigError as err:
        option = "relay_password" if "password" in str(err) else "relay_username"
        raise OptionsError(option, str(err)) from None
    return RelayAdmin(endpoint.url, username, password, endpoint.ca_pem)


def normalise_pem(text: str) -> str:
    """PEM certificates with their line breaks restored.

    A single-line text field (the app's Configuration tab) turns the breaks into
    spaces; the base64 body survives, so rebuild the 64-column lines around it.
    Anything that is not a PEM certificate is returned unchanged (and refused later).
    """
    blocks = _PEM.findall(text)
    if not blocks:
        return text
    out = []
    for body in blocks:
        b64 = "".join(body.split())
        lines = [b64[i:i + 64] for i in range(0, len(b64), 64)]
        out.append("\n".join(["-----BEGIN CERTIFICATE-----", *lines,
                              "-----END CERTIFICATE-----"]))
    return "\n".join(out) + "\n"


@dataclass(frozen=True)
class Reconciled:
    """What a later start does with the options: the settings to run with, the
    options it applied and the ones it could not apply (each a log line)."""

    config: NodeConfig
    applied: list[str]
    refused: list[str]


def reconcile(current: NodeConfig, wanted: NodeConfig, joined: bool) -> Reconciled:
    """Apply changed options to an existing node's settings where the node allows it.

    Before a node joins a federation its name, capacity, role and address live only
    in config.json and can be rewritten. Once it is a member they are part of the
    founder's signed roster (the member record it joined with), so rewriting them
    locally would make the node disagree with every other member: such a change is
    refused, with what to do instead.
    """
    applied: list[str] = []
    refused: list[str] = []
    changes: dict[str, Any] = {}

    def differs(label: str, old: Any, new: Any, fields: dict[str, Any], fix: str) -> None:
        if old == new:
            return
        if joined:
            refused.append(f"option {label} changed from {old!r} to {new!r} but this node "
                           f"already belongs to a federation, where it is fixed in the "
                           f"founder's signed roster; the node keeps {old!r}. {fix}")
        else:
            applied.append(f"{label}: {old!r} -> {new!r}")
            changes.update(fields)

    differs("name", current.name, wanted.name, {"name": wanted.name},
            f"Set the option back to {current.name!r} to silence this; members cannot be "
            "renamed in this version.")
    differs("capacity", current.capacity, wanted.capacity, {"capacity": wanted.capacity},
            "Ask the founder to change it: they run 'mpc-backend member capacity' in a shell "
            "on their node (Home Assistant only lists the members), then set the option to "
            "match.")
    differs("input_only", current.input_only, wanted.input_only,
            {"input_only": wanted.input_only},
            f"Set the option back to {str(current.input_only).lower()}; changing the role "
            "needs a new node identity (uninstall the app, which deletes its data, reinstall "
            "it and join with a new invite).")
    differs("public_url", current.public_url, wanted.public_url,
            {"public_url": wanted.public_url},
            f"Set it back to {current.public_url or 'nothing (unset it)'}; this version "
            "cannot move a member to a new URL.")
    differs("listen", current.listen, wanted.listen,
            {"listen_host": wanted.listen_host, "listen_port": wanted.listen_port},
            "The address is part of this member's record.")
    if not joined and current.insecure_listen != wanted.insecure_listen:
        changes["insecure_listen"] = wanted.insecure_listen
    config = dataclasses.replace(current, **changes) if changes else current
    return Reconciled(config, applied, refused)
