"""A throwaway PostgreSQL server for tests and benchmarks: ``with running_postgres() as pg:``.

Debian's server binaries (``/usr/lib/postgresql/N/bin``, installed by scripts/setup) run a
fresh cluster in a temporary directory, listening on 127.0.0.1 only, on a free port, with
trust authentication (nothing but this machine can reach it) and ``fsync`` on: the storage
tests are about what survives a crash. PostgreSQL refuses to run as root, so as root the
server runs as the ``postgres`` user (or ``nobody``) and owns its data directory.
``pg.database()`` creates an empty database (from ``template0``) and returns its URL; the
pytest fixtures give one server per session and a fresh database per test.
"""

from __future__ import annotations

import contextlib
import glob
import itertools
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.backend.nodes import free_port

START_TIMEOUT_S = 30.0
SUPERUSER = "postgres"


def postgres_bin() -> Path:
    """The newest installed server's bin directory; fails clearly when there is none."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                   key=lambda p: int(Path(p).parts[-3]))
    if not found:
        raise RuntimeError("PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb); "
                           "run scripts/setup, or apt-get install postgresql")
    return Path(found[-1]).parent


def _server_user() -> tuple[int, int] | None:
    """(uid, gid) to run the server as, or None to run it as ourselves (not root)."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            entry = pwd.getpwnam(name)
            return entry.pw_uid, entry.pw_gid
    raise RuntimeError("running as root and there is neither a postgres nor a nobody user "
                       "to run PostgreSQL as")


class PostgresServer:
    """One ``postgres`` process over a cluster in its own temporary directory."""

    def __init__(self) -> None:
        self.bin = postgres_bin()
        self.port = free_port()
        self._user = _server_user()
        # Not under pytest's tmp dirs: those are 0700 root, which the server user cannot enter.
        self.directory = Path(tempfile.mkdtemp(prefix="hearth-pg-"))
        self.data_dir = self.directory / "data"
        self.log_path = self.directory / "server.log"
        self._proc: subprocess.Popen[bytes] | None = None
        self._names = itertools.count(1)

    def _as_server_user(self) -> dict[str, Any]:
        if self._user is None:
            return {}
        uid, gid = self._user
        return {"user": uid, "group": gid, "extra_groups": []}

    def start(self) -> None:
        if self._user is not None:
            os.chown(self.directory, *self._user)
        # --no-sync: only initdb's own writes skip fsync (a crash here just fails the run);
        # the server below runs with fsync on.
        init = subprocess.run(
            [self.bin / "initdb", "-D", self.data_dir, "-U", SUPERUSER, "-A", "trust",
             "-E", "UTF8", "--locale=C", "--no-sync", "--no-instructions"],
            capture_output=True, text=True, check=False, **self._as_server_user())
        if init.returncode != 0:
            raise RuntimeError(f"initdb failed: {init.stderr.strip()}")
        with self.log_path.open("ab") as log:
            self._proc = subprocess.Popen(
                [self.bin / "postgres", "-D", self.data_dir, "-p", str(self.port),
                 "-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories=",
                 "-c", "fsync=on", "-c", "max_connections=200", "-c", "shared_buffers=32MB"],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                **self._as_server_user())
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(f"postgres exited at start:\n{self.log_tail()}")
            if self.psql("SELECT 1", check=False).returncode == 0:
                return
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"postgres did not start in {START_TIMEOUT_S:g} s:\n{self.log_tail()}")

    def url(self, database: str) -> str:
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def psql(self, sql: str, database: str = "postgres",
             check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run ``sql`` as the superuser; the rows come back unaligned, one per line."""
        proc = subprocess.run(
            [self.bin / "psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
             "-d", self.url(database), "-c", sql],
            capture_output=True, text=True, check=False, timeout=60)
        if check and proc.returncode != 0:
            raise RuntimeError(f"psql {sql!r} failed: {proc.stderr.strip()}")
        return proc

    def database(self, prefix: str = "hearth") -> str:
        """A new, empty database; returns its URL."""
        name = f"{prefix}_{next(self._names)}"
        self.psql(f'CREATE DATABASE "{name}" TEMPLATE template0')
        return self.url(name)

    def log_tail(self) -> str:
        return self.log_path.read_text(errors="replace")[-3000:] if self.log_path.exists() else ""

    def stop(self) -> None:
        """Fast shutdown (SIGINT): open sessions are ended, the data is checkpointed."""
        if self._proc is not None:
            proc, self._proc = self._proc, None
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        shutil.rmtree(self.directory, ignore_errors=True)


@contextlib.contextmanager
def running_postgres() -> Iterator[PostgresServer]:
    server = PostgresServer()
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One server for the whole test session (tests needing it carry ``pytest.mark.postgres``)."""
    with running_postgres() as server:
        yield server


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> str:
    """A fresh database of its own for this test."""
    return postgres_server.database()
