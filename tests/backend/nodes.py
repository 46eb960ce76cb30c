"""Real ``mpc-backend`` processes on 127.0.0.1 for tests: start, CLI, stop, kill, clean up."""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mpc_backend.crypto import NodeKeys, join_proof, parse_invite, sign_envelope
from mpc_backend.node.roster import MemberInfo

REPO = Path(__file__).resolve().parents[2]
_ENV = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1"}


def allow_loopback_sockets() -> None:
    """Undo pytest-socket's blanket block (Home Assistant's test plugin sets it per test).

    Its host allow-list (127.0.0.1 only) stays in force, so these tests still cannot
    reach anything beyond loopback.
    """
    try:
        import pytest_socket  # noqa: PLC0415 - only present in the Home Assistant env
    except ImportError:
        return
    pytest_socket.enable_socket()


_HANDED_OUT: set[int] = set()
# Below Linux's ephemeral range (32768-60999), so no client socket takes one meanwhile.
_PORTS = range(20000, 32768)


def free_port(host: str = "127.0.0.1") -> int:
    """A port free on ``host`` now and never handed out before in this test run: nodes are
    initialised on their port well before they bind it, and a port free now may be taken
    until then (two nodes on one port: the second answers the first's requests). Under
    pytest-xdist each worker (and what it starts, which inherits its environment) takes
    its own share of the range, since a worker remembers only the ports it handed out."""
    count = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    worker = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw"))
    ports = _PORTS[worker % count::count]
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    while True:
        port = secrets.choice(ports)
        if port in _HANDED_OUT:
            continue
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            try:
                sock.bind((host, port))
            except OSError:
                continue
        _HANDED_OUT.add(port)
        return port


def cli(*args: str, check: bool = True, timeout: float = 60,
        wrap: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
    """Run ``python -m mpc_backend ARGS`` (after the ``wrap`` command prefix, if any);
    with ``check`` fail the test on a non-zero exit."""
    proc = subprocess.run(
        [*wrap, sys.executable, "-m", "mpc_backend", *args],
        capture_output=True, text=True, timeout=timeout, cwd=REPO, env=_ENV, check=False,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"mpc-backend {' '.join(args)} failed: {proc.stderr.strip()}")
    return proc


def cli_json(*args: str) -> Any:
    return json.loads(cli(*args, "--json").stdout)


@dataclass
class NodeProcess:
    name: str
    data_dir: Path
    port: int
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None
    node_id: str = ""
    logs: list[Path] = field(default_factory=list)
    # A misbehaving node: ``tests.adversarial.evil_node`` runs ``serve`` with this patch
    # (a name in tests/adversarial/patches.py) and its JSON arguments.
    patch: str | None = None
    patch_args: dict[str, Any] = field(default_factory=dict)
    # A command prefix for ``serve`` and the CLI, e.g. ``("ip", "netns", "exec", NS)``.
    wrap: tuple[str, ...] = ()
    serve_args: tuple[str, ...] = ()  # more arguments for ``serve``

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def init(self, *extra: str) -> None:
        info = self.cli_json("init", "--name", self.name, "--listen", f"127.0.0.1:{self.port}",
                             *extra)
        self.node_id = info["node_id"]

    def start(self, timeout: float = 20.0) -> None:
        assert self.proc is None or self.proc.poll() is not None, "already running"
        log_path = self.log_path.with_name(f"{self.log_path.stem}.{len(self.logs)}.log")
        self.logs.append(log_path)
        launcher = ["-m", "mpc_backend"]
        env = _ENV
        if self.patch is not None:
            launcher = ["-m", "tests.adversarial.evil_node", self.patch]
            env = {**_ENV, "HEARTH_EVIL_ARGS": json.dumps(self.patch_args)}
        with log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                [*self.wrap, sys.executable, *launcher, "serve", "--data-dir", str(self.data_dir),
                 *self.serve_args],
                stdout=subprocess.DEVNULL, stderr=log, cwd=REPO, env=env,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"{self.name} exited: {log_path.read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(f"{self.url}/api/v1/health", timeout=1):
                    pass
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(0.1)
                continue
            self._check_identity(log_path)
            return
        raise AssertionError(f"{self.name} did not come up in {timeout} s")

    def _check_identity(self, log_path: Path) -> None:
        """Whoever answered the health check must be this node: one that holds its token."""
        try:
            status, _ = self.api("GET", "/status")
        except (urllib.error.URLError, OSError, ValueError) as err:  # not even a node's API
            status = repr(err)
        if status != 200:
            time.sleep(0.5)  # our process, if it could not bind the port, is exiting
            log = log_path.read_text(errors="replace")[-2000:]
            raise AssertionError(f"another process answers on {self.name}'s port {self.port} "
                                 f"(status {status}); {self.name}'s log: {log}")

    def stop(self) -> int | None:
        """SIGTERM and wait; returns the exit code."""
        if self.proc is None or self.proc.poll() is not None:
            return None if self.proc is None else self.proc.returncode
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"{self.name} ignored SIGTERM") from None

    def kill(self) -> None:
        """SIGKILL: no chance to clean up, like a power cut."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def pause(self) -> None:
        """SIGSTOP: the socket still accepts connections but nothing answers."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGCONT)

    def log_text(self) -> str:
        return "".join(p.read_text(errors="replace") for p in self.logs if p.exists())

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """A CLI command against this node: ``--data-dir`` goes after the command words."""
        words = 2 if args[0] in ("federation", "task", "member") else 1
        return cli(*args[:words], "--data-dir", str(self.data_dir), *args[words:], check=check,
                   wrap=self.wrap)

    def cli_json(self, *args: str) -> Any:
        return json.loads(self.cli(*args, "--json").stdout)

    def api(self, method: str, path: str, body: Any = None, token: str | None = None,
            raw: bytes | None = None) -> tuple[int, Any]:
        """Call the local API; returns (status, parsed JSON)."""
        if token is None:
            token = (self.data_dir / "api_token").read_text().strip()
        return local_api(self.url, method, path, body, token, raw)


def local_api(url: str, method: str, path: str, body: Any = None, token: str = "",
              raw: bytes | None = None) -> tuple[int, Any]:
    """Call a node's local API at ``url``; returns (status, parsed JSON)."""
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    req = urllib.request.Request(f"{url}/api/v1{path}", data=data, method=method)
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def join_envelope(token: str, keys: NodeKeys, name: str) -> dict[str, Any]:
    """A household's signed join for invite ``token``, as its node sends it to the founder's
    ``/peer/v1/join`` (with the broker account the invite carries, in a relay federation)."""
    invite = parse_invite(token)
    account = invite.relay["username"] if invite.relay is not None else None
    record = MemberInfo.of_keys(keys, name, None, 1.0, True, account).to_dict()
    return sign_envelope(keys, "join", invite.federation_id,
                         {**join_proof(invite.secret, invite.federation_id, record),
                          "member": record})


def join_household(founder: NodeProcess, name: str) -> bytes:
    """A household joins over HTTP with fresh keys and no process of its own, as the
    benchmark's do; the founder's raw answer (a refusal raises HTTPError)."""
    _, invite = founder.api("POST", "/invites", {"expires_s": 600})
    envelope = join_envelope(invite["token"], NodeKeys.generate(), name)
    request = urllib.request.Request(f"{founder.url}/peer/v1/join",
                                     data=json.dumps(envelope).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as resp:
        return bytes(resp.read())


def households_known(node: NodeProcess) -> int:
    """How many admitted households ``node`` knows (all of them on the founder and on
    members that compute)."""
    return int(node.api("GET", "/status")[1]["federation"]["households"])


class Cluster:
    """Several nodes in one temp dir; ``close`` always stops every process."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.nodes: list[NodeProcess] = []
        self.broker: Any = None  # a tests.relay_broker.Broker when the street uses a relay
        self.postgres: Any = None  # a tests.postgres.PostgresServer holding the nodes' state

    def add(self, name: str, *init_args: str) -> NodeProcess:
        node = NodeProcess(name, self.root / name, free_port(), self.root / f"{name}.log")
        node.init(*init_args)
        self.nodes.append(node)
        return node

    def by_id(self, node_id: str) -> NodeProcess:
        return next(n for n in self.nodes if n.node_id == node_id)

    def federate(self, name: str, *create_args: str) -> NodeProcess:
        """The first node founds federation ``name``; every other node joins with an invite.

        All nodes must be serving. Returns the founder. ``create_args`` go to ``federation
        create`` (e.g. ``--relay-admin FILE``).
        """
        founder = self.nodes[0]
        founder.cli("federation", "create", "--name", name, *create_args)
        for node in self.nodes[1:]:
            node.cli("join", founder.cli("invite", "--expires", "10m").stdout.strip())
        return founder

    def close(self) -> None:
        for node in self.nodes:
            if node.proc is not None and node.proc.poll() is None:
                node.resume()
                node.proc.send_signal(signal.SIGTERM)
        for node in self.nodes:
            if node.proc is not None:
                try:
                    node.proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    node.proc.kill()
                    node.proc.wait()


def wait_for(
    predicate: Any, timeout: float, interval: float = 0.25, what: str = "condition"
) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")
