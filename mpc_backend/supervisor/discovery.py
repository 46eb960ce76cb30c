"""The Supervisor's API, as far as the app needs it: its own hostname and discovery.

Both calls are allowed to every app without ``hassio_api`` (the Supervisor's
``supervisor/api/middleware/security.py`` lets an app's token through to
``/addons/self/*`` and ``/discovery``); the service name must be listed under
``discovery`` in the app's config.yaml. The Supervisor keeps one message per app
and service and ignores a repeat with the same config, so announcing again at
every start is safe and Home Assistant sees a new flow only when the URL or
token changed.

Errors never carry the token: it is only ever sent, never formatted.
"""

from __future__ import annotations

import json
import logging
import threading
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

SERVICE = "hearth"
DEFAULT_SUPERVISOR_URL = "http://supervisor"

log = logging.getLogger("mpc_backend.supervisor")


class SupervisorError(Exception):
    """The Supervisor did not answer, or refused; the message says which."""


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
                                  f"{_message(err.read())}".rstrip()) from None
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
) -> bool:
    """Find the hostname and announce ``{url, token}``; retry with backoff.

    Returns whether Home Assistant was told. On failure the node keeps serving:
    the user can still add the integration by URL and token, or restart the app.
    """
    stop = stop or threading.Event()
    wait = sleep or stop.wait
    delays = backoff_delays(attempts, first_delay)
    for attempt in range(1, attempts + 1):
        try:
            url = f"http://{client.self_hostname()}:{port}"
            uuid = client.announce({"url": url, "token": token})
        except SupervisorError as err:
            if attempt == attempts or stop.is_set():
                log.error("discovery failed after %d attempts (%s); the node keeps serving. "
                          "Home Assistant will not offer it by itself: restart the app to try "
                          "again, or add the Hearth integration by URL and token", attempt, err)
                return False
            delay = delays[attempt - 1]
            log.warning("discovery attempt %d of %d failed (%s); retrying in %g s",
                        attempt, attempts, err, delay)
            wait(delay)
            if stop.is_set():
                return False
            continue
        log.info("announced this node to Home Assistant as %s (discovery %s)", url, uuid)
        return True
    return False

