"""The Supervisor's API, as far as the app needs it: its own hostname and discovery.

These calls are allowed to every app without ``hassio_api`` (the Supervisor's
``supervisor/api/middleware/security.py`` lets an app's token through to
``/addons/self/*`` and ``/discovery*``); the service name must be listed under
``discovery`` in the app's config.yaml, and an app may delete only its own
messages (``DELETE /discovery/{uuid}``: 403 for another app's, 404 for none).

The Supervisor keeps one message per app and service and does not pass a repeat
with the same config on to Home Assistant (``supervisor/discovery/__init__.py``
``send`` returns the stored message). A user who dismissed the discovered
dialog, or whose discovery aborted, would then never see it again. So every
start deletes the message it announced last (its uuid is remembered in a small
0600 file) and posts a fresh one, which Home Assistant is told about as new.

Errors never carry the token: it is only ever sent, never formatted.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mpc_backend.node.config import replace_private

SERVICE = "hearth"
DEFAULT_SUPERVISOR_URL = "http://supervisor"
_UUID = re.compile(r"[0-9a-f]{32}")  # the Supervisor's uuid4().hex; nothing else in a path

log = logging.getLogger("mpc_backend.supervisor")


class SupervisorError(Exception):
    """The Supervisor did not answer, or refused; the message says which."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status  # the HTTP status of a refusal; None if there was no answer


class SupervisorClient:
    def __init__(self, base_url: str, token: str, timeout: float = 10.0) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise ValueError(f"the Supervisor URL must be http(s)://..., got {base_url!r}")
        self.base_url = base_url.rstrip("/")
        self._token = token
        self.timeout = timeout

    def request(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        """Call ``path``; returns the answer's ``data``."""
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(  # noqa: S310 - the scheme is checked in __init__
            f"{self.base_url}{path}", data=data, method=method)
        req.add_header("Authorization", f"Bearer {self._token}")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:  # noqa: S310
                answer = json.loads(resp.read() or b"{}")
        except urllib.error.HTTPError as err:
            raise SupervisorError(f"{method} {path}: HTTP {err.code} "
                                  f"{_message(err.read())}".rstrip(), err.code) from None
        except (urllib.error.URLError, OSError, ValueError) as err:
            reason = getattr(err, "reason", err)
            raise SupervisorError(f"{method} {path}: {reason}") from None
        if not isinstance(answer, dict) or answer.get("result") != "ok":
            raise SupervisorError(f"{method} {path}: {_message(json.dumps(answer).encode())}")
        return answer.get("data")

    def self_hostname(self) -> str:
        """The app container's name on the internal network (``data.hostname``)."""
        data = self.request("GET", "/addons/self/info")
        hostname = data.get("hostname") if isinstance(data, dict) else None
        if not isinstance(hostname, str) or not hostname:
            raise SupervisorError("GET /addons/self/info: the answer has no hostname")
        return hostname

    def announce(self, config: dict[str, Any]) -> str:
        """Send the discovery message; returns its uuid."""
        data = self.request("POST", "/discovery", {"service": SERVICE, "config": config})
        return str(data.get("uuid", "")) if isinstance(data, dict) else ""

    def withdraw(self, uuid: str) -> bool:
        """Delete our discovery message ``uuid``; False if the Supervisor has none of
        ours by that uuid (404: gone, e.g. the app was reinstalled; 403: not ours)."""
        try:
            self.request("DELETE", f"/discovery/{uuid}")
        except SupervisorError as err:
            if err.status in (403, 404):
                return False
            raise
        return True


def read_last_uuid(path: Path) -> str | None:
    """The uuid of the message the last start announced, if one was remembered."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as err:
        log.warning("ignoring %s (%s); the last discovery message cannot be withdrawn",
                    path, getattr(err, "strerror", None) or err)
        return None
    uuid = data.get("uuid") if isinstance(data, dict) else None
    return uuid if isinstance(uuid, str) and _UUID.fullmatch(uuid) else None


def remember_uuid(path: Path, uuid: str) -> None:
    """Write ``{"uuid": ...}`` to ``path`` (0600), replacing it whole."""
    replace_private(path, json.dumps({"uuid": uuid}) + "\n")


def _message(raw: bytes) -> str:
    try:
        answer = json.loads(raw)
    except ValueError:
        return raw[:200].decode(errors="replace")
    if isinstance(answer, dict) and isinstance(answer.get("message"), str):
        return answer["message"][:200]
    return str(answer)[:200]


def backoff_delays(attempts: int, first: float, cap: float = 60.0) -> list[float]:
    """Waits before attempts 2..n: first, 2*first, ... capped."""
    return [min(cap, first * 2 ** i) for i in range(max(0, attempts - 1))]


def announce_with_retry(
    client: SupervisorClient,
    port: int,
    token: str,
    *,
    attempts: int,
    first_delay: float,
    stop: threading.Event | None = None,
    sleep: Callable[[float], Any] | None = None,
    state: Path | None = None,
) -> bool:
    """Find the hostname, withdraw the last start's message and announce ``{url, token}``
    as a new one; retry with backoff. ``state`` remembers the new message's uuid.

    Returns whether Home Assistant was told. On failure the node keeps serving and
    a restart of the app tries again.
    """
    stop = stop or threading.Event()
    wait = sleep or stop.wait
    delays = backoff_delays(attempts, first_delay)
    previous = read_last_uuid(state) if state is not None else None
    for attempt in range(1, attempts + 1):
        try:
            url = f"http://{client.self_hostname()}:{port}"
            if previous is not None:
                if client.withdraw(previous):
                    log.info("withdrew the last start's discovery %s", previous)
                previous = None
            uuid = client.announce({"url": url, "token": token})
        except SupervisorError as err:
            if attempt == attempts or stop.is_set():
                log.error("discovery failed after %d attempts (%s); the node keeps serving. "
                          "Home Assistant will not offer it by itself: restart the app to try "
                          "again (Home Assistant can then find it); the Hearth integration "
                          "cannot be added by hand without the node's token", attempt, err)
                return False
            delay = delays[attempt - 1]
            log.warning("discovery attempt %d of %d failed (%s); retrying in %g s",
                        attempt, attempts, err, delay)
            wait(delay)
            if stop.is_set():
                return False
            continue
        log.info("announced this node to Home Assistant as %s (discovery %s)", url, uuid)
        if state is not None and uuid:
            try:
                remember_uuid(state, uuid)
            except OSError as err:
                log.warning("cannot write %s (%s); the next start cannot withdraw discovery "
                            "%s, so Home Assistant may not show it again", state,
                            err.strerror, uuid)
        return True
    return False

