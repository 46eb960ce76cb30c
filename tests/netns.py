"""A neighbourhood of homes in Linux network namespaces, for tests that need real isolation.

``with neighbourhood(4) as street:`` builds, as root::

     home0 ── eth0 10.199.0.2/30 ══ veth ══ r0 10.199.0.1/30 ─┐
     home1 ── eth0 10.199.1.2/30 ══ veth ══ r1 10.199.1.1/30 ─┤ relay namespace
     ...                                                       │ lo: 10.99.0.1/32 (the broker)
                                                               │ net.ipv4.ip_forward = 0

Every home's default route points at its own veth peer in the relay namespace,
so a home reaches the relay namespace's addresses (the broker's among them) and
nothing else: a packet for another home arrives in the relay namespace, which
does not forward, and is dropped. Loopback is up everywhere; each namespace's
127.0.0.1 is its own.

Names carry the pid and a random tag, so parallel runs and leftovers of a killed
run never clash; every namespace is deleted on exit, on failure too (processes
still inside are killed first: only this run starts processes there).
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import secrets
import selectors
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

BROKER_ADDRESS = "10.99.0.1"
CLONE_NEWNET = 0x40000000
_NETNS_DIR = "/var/run/netns"


def skip_unless_possible() -> None:
    """Skip (with the reason) where namespaces cannot be made: not root, or no ``ip``."""
    if os.geteuid() != 0:
        pytest.skip("network-namespace tests need root (CI runs them as root)")
    if shutil.which("ip") is None:
        pytest.skip("network-namespace tests need iproute2's `ip` (Debian: apt install iproute2)")


def ip(*args: str) -> str:
    proc = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30,
                          check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)} failed: {proc.stderr.strip()}")
    return proc.stdout


def exec_prefix(ns: str) -> tuple[str, ...]:
    """The command prefix that runs a program inside namespace ``ns``."""
    return ("ip", "netns", "exec", ns)


_libc = ctypes.CDLL(None, use_errno=True)


def _setns(fd: int) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"setns: {os.strerror(err)}")


@contextlib.contextmanager
def inside(ns: str) -> Iterator[None]:
    """Move this thread into namespace ``ns`` for the block: sockets made in it belong
    there (and keep belonging there afterwards), children started in it live there."""
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        target = os.open(f"{_NETNS_DIR}/{ns}", os.O_RDONLY | os.O_CLOEXEC)
        try:
            _setns(target)
            try:
                yield
            finally:
                _setns(own)
        finally:
            os.close(target)
    finally:
        os.close(own)


@dataclass(frozen=True)
class Home:
    ns: str
    address: str  # its end of the veth pair
    gateway: str  # the relay namespace's end


@dataclass
class Neighbourhood:
    tag: str
    relay_ns: str
    homes: list[Home] = field(default_factory=list)
    broker_address: str = BROKER_ADDRESS

    @property
    def namespaces(self) -> list[str]:
        return [self.relay_ns, *(h.ns for h in self.homes)]

    def set_forwarding(self, on: bool) -> None:
        """The relay namespace's IPv4 forwarding (off: homes never reach each other)."""
        ip("netns", "exec", self.relay_ns, "sysctl", "-q", "-w",
           f"net.ipv4.ip_forward={int(on)}")

    def forwarding(self) -> bool:
        out = ip("netns", "exec", self.relay_ns, "sysctl", "-n", "net.ipv4.ip_forward")
        return out.strip() == "1"


def _build(street: Neighbourhood, households: int) -> None:
    relay = street.relay_ns
    ip("netns", "add", relay)
    ip("-n", relay, "link", "set", "lo", "up")
    ip("-n", relay, "addr", "add", f"{street.broker_address}/32", "dev", "lo")
    street.set_forwarding(False)
    for i in range(households):
        home = Home(f"{street.tag}-home{i}", f"10.199.{i}.2", f"10.199.{i}.1")
        ip("netns", "add", home.ns)
        street.homes.append(home)
        # Made inside the relay namespace, the peer end moved straight into the home:
        # no interface name ever exists in the host's namespace.
        ip("-n", relay, "link", "add", f"r{i}", "type", "veth", "peer", "name", "eth0",
           "netns", home.ns)
        ip("-n", relay, "addr", "add", f"{home.gateway}/30", "dev", f"r{i}")
        ip("-n", relay, "link", "set", f"r{i}", "up")
        ip("-n", home.ns, "link", "set", "lo", "up")
        ip("-n", home.ns, "addr", "add", f"{home.address}/30", "dev", "eth0")
        ip("-n", home.ns, "link", "set", "eth0", "up")
        ip("-n", home.ns, "route", "add", "default", "via", home.gateway)


def _remove(ns: str) -> None:
    if not os.path.exists(f"{_NETNS_DIR}/{ns}"):
        return
    with contextlib.suppress(RuntimeError):
        for pid in ip("netns", "pids", ns).split():
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.kill(int(pid), signal.SIGKILL)
    ip("netns", "del", ns)


@contextlib.contextmanager
def neighbourhood(households: int) -> Iterator[Neighbourhood]:
    """A relay namespace and ``households`` home namespaces; always removed on exit."""
    skip_unless_possible()
    tag = f"hearth{os.getpid()}-{secrets.token_hex(2)}"
    street = Neighbourhood(tag, f"{tag}-relay")
    try:
        _build(street, households)
        yield street
    finally:
        problems = []
        for ns in reversed(street.namespaces):
            try:
                _remove(ns)
            except RuntimeError as err:
                problems.append(str(err))
        if problems:
            raise RuntimeError("; ".join(problems))


# -- reachability ----------------------------------------------------------------

CONNECTED, REFUSED, UNREACHABLE, TIMEOUT = "connected", "refused", "unreachable", "timeout"
_UNREACHABLE = {errno.EHOSTUNREACH, errno.ENETUNREACH}


def probe(attempts: list[tuple[str, str, int]], timeout: float = 2.0) -> list[str]:
    """TCP connects, all at once: ``(from namespace, to address, port)`` each; for each,
    CONNECTED, REFUSED (a host answered: nothing listens), UNREACHABLE or TIMEOUT
    (nothing answered at all)."""
    outcomes: list[str | None] = [None] * len(attempts)
    sockets: list[socket.socket] = []
    with selectors.DefaultSelector() as selector:
        try:
            for i, (ns, address, port) in enumerate(attempts):
                with inside(ns):
                    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                sockets.append(sock)
                sock.setblocking(False)
                code = sock.connect_ex((address, port))
                if code in (0, errno.EINPROGRESS):
                    selector.register(sock, selectors.EVENT_WRITE, i)
                else:
                    outcomes[i] = _outcome(code)
            pending = len(selector.get_map())
            deadline = time.monotonic() + timeout
            while pending and (left := deadline - time.monotonic()) > 0:
                for key, _ in selector.select(left):
                    sock = key.fileobj  # type: ignore[assignment]
                    outcomes[key.data] = _outcome(
                        sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR))
                    selector.unregister(sock)
                    pending -= 1
        finally:
            for sock in sockets:
                sock.close()
    return [TIMEOUT if o is None else o for o in outcomes]


def _outcome(code: int) -> str:
    if code == 0:
        return CONNECTED
    if code == errno.ECONNREFUSED:
        return REFUSED
    if code in _UNREACHABLE:
        return UNREACHABLE
    raise OSError(code, f"unexpected connect error: {os.strerror(code)}")


@contextlib.contextmanager
def listening(ns: str, port: int) -> Iterator[socket.socket]:
    """A TCP listener on all of ``ns``'s addresses, for reachability probes."""
    with inside(ns):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("0.0.0.0", port))  # every address of that namespace
        sock.listen(16)
        yield sock
    finally:
        sock.close()
