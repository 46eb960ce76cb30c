"""A real Mosquitto relay broker for tests: ``with running_broker(tmp_path) as broker:``.

The setup is the one ``mpc-backend relay init`` writes (``write_broker_setup``),
on a free port, optionally with self-signed TLS and inside a network namespace.
The process is always stopped on exit; ``restart`` keeps port and message store.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from mpc_backend.relay.broker import LOG_NAME, TlsFiles, make_self_signed_tls, write_broker_setup
from mpc_backend.relay.endpoint import BrokerAccount, RelayEndpoint
from mpc_backend.relay.provision import DynsecAdmin
from tests.backend.nodes import free_port

START_TIMEOUT_S = 10.0
# Parametrise a street over both transports; relay variants carry the ``relay`` mark, which
# scripts/test runs on the host (where scripts/setup installed mosquitto).
TRANSPORTS = ["direct", pytest.param("relay", marks=pytest.mark.relay)]


def mosquitto_path() -> str | None:
    return shutil.which("mosquitto") or next(
        (p for p in ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto") if os.path.exists(p)),
        None)


class Broker:
    """One mosquitto process running a Hearth relay setup."""

    def __init__(self, directory: Path, *, host: str = "127.0.0.1", tls: bool = False,
                 netns: str | None = None) -> None:
        binary = mosquitto_path()
        if binary is None:
            raise RuntimeError("mosquitto is not installed (Debian: apt install mosquitto)")
        self.binary = binary
        self.directory = Path(directory)
        self.netns = netns
        # In a network namespace its address is not bindable here; a port free here is
        # as likely free there.
        self.port = free_port("127.0.0.1" if netns else host)
        files = None
        if tls:
            ca_pem, cert, key = make_self_signed_tls(self.directory, [host])
            files = TlsFiles(cert, key, ca_pem)
        setup = write_broker_setup(self.directory, public_host=host, port=self.port,
                                   listen_host=host, tls=files)
        self.endpoint: RelayEndpoint = setup.endpoint
        self.admin: BrokerAccount = setup.admin
        self.admin_file: Path = setup.admin_file
        self.config_path: Path = setup.config_path
        self.log_path = self.directory / LOG_NAME
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self._proc is not None, "broker is not running"
        return self._proc.pid

    def start(self) -> None:
        command = [self.binary, "-c", str(self.config_path)]
        if self.netns:
            command = ["ip", "netns", "exec", self.netns, *command]
        offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        with open(self.log_path, "ab") as log:
            # umask: the broker rewrites dynamic-security.json with it
            self._proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log,
                                          stderr=subprocess.STDOUT, umask=0o077)
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            # "running" is logged once the listener is open and the plugin loaded
            if b" running" in self._log_bytes(offset):
                return
            if self._proc.poll() is not None:
                self._proc = None
                raise RuntimeError(f"mosquitto exited at start:\n{self.log_tail()}")
            time.sleep(0.02)
        self.kill()
        raise RuntimeError(f"mosquitto did not start in {START_TIMEOUT_S:g} s:\n"
                           f"{self.log_tail()}")

    def stop(self) -> None:
        """SIGTERM and wait: the broker saves its message store on the way out."""
        if self._proc is None:
            return
        proc, self._proc = self._proc, None
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def kill(self) -> None:
        """SIGKILL: a crash, nothing saved since the last autosave."""
        if self._proc is None:
            return
        proc, self._proc = self._proc, None
        if proc.poll() is None:
            proc.kill()
        proc.wait()

    def restart(self) -> None:
        self.stop()
        self.start()

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        utime, stime = int(fields[11]), int(fields[12])  # fields 14 and 15 of stat(5)
        return (utime + stime) / os.sysconf("SC_CLK_TCK")

    def rss_bytes(self) -> int:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        return 0

    def log_tail(self, lines: int = 20) -> str:
        return "\n".join(self._log_bytes(0).decode(errors="replace").splitlines()[-lines:])

    def _log_bytes(self, offset: int) -> bytes:
        try:
            with open(self.log_path, "rb") as log:
                log.seek(offset)
                return log.read()
        except FileNotFoundError:
            return b""


@contextlib.contextmanager
def running_broker(directory: Path, *, host: str = "127.0.0.1", tls: bool = False,
                   netns: str | None = None) -> Iterator[Broker]:
    broker = Broker(directory, host=host, tls=tls, netns=netns)
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


async def provision(broker: Broker, federation_id: str) -> BrokerAccount:
    """A member account on ``broker``, as the founder would create it."""
    async with DynsecAdmin(broker.endpoint, broker.admin) as admin:
        return await admin.create_member(federation_id)
