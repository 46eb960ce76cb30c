"""The demo's relay: a local Mosquitto set up by `mpc-backend relay init`, as a neighbour would.

Plain MQTT on loopback (the one case the relay allows without TLS). The setup is made
once and reused, so the broker keeps its accounts and queued messages across re-runs.
"""

from __future__ import annotations

import logging
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

from .processes import Supervisor

_LOGGER = logging.getLogger(__name__)

RELAY_PORT = 18883
ADMIN_FILE = "relay-admin.json"


def mosquitto_binary() -> str:
    for candidate in (shutil.which("mosquitto"), "/usr/sbin/mosquitto"):
        if candidate and Path(candidate).exists():
            return candidate
    raise RuntimeError("the demo's relay needs Mosquitto (Debian: apt install mosquitto, which "
                       "scripts/setup does when run as root); or run the demo with --direct")


def start_relay(supervisor: Supervisor, root: Path, port: int = RELAY_PORT) -> Path:
    """Serve the relay on `port`; returns its admin file for `federation create --relay-admin`.

    A relay set up earlier in `root` keeps the port it was set up with.
    """
    binary = mosquitto_binary()
    directory = root / "relay"
    if not (directory / ADMIN_FILE).exists():
        done = subprocess.run(  # noqa: S603 - our own CLI
            [sys.executable, "-m", "mpc_backend", "relay", "init", "--dir", str(directory),
             "--public-host", "127.0.0.1", "--port", str(port), "--listen", "127.0.0.1",
             "--plain"],
            capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"mpc-backend relay init failed: {done.stderr.strip()}")
    log_file = root / "logs" / "relay.log"
    proc = supervisor.start("relay", [binary, "-c", str(directory / "mosquitto.conf")], log_file)
    deadline = time.monotonic() + 15
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                break
        except OSError:
            if proc.poll() is not None:
                tail = log_file.read_text(errors="replace").strip().splitlines()[-3:]
                raise RuntimeError(f"the relay broker exited: {' / '.join(tail)} (is port "
                                   f"{port} in use? log: {log_file})") from None
            if time.monotonic() > deadline:
                raise RuntimeError(f"the relay broker did not listen on {port}") from None
            time.sleep(0.2)
    _LOGGER.info("relay broker on mqtt://127.0.0.1:%d (log %s)", port, log_file)
    return directory / ADMIN_FILE
