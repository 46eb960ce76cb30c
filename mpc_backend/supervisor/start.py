"""``python -m mpc_backend.supervisor``: run a Hearth node as a Home Assistant app or container.

One start, in order, so that a bad option changes nothing on disk:

1. read the options (``<data>/options.json`` if present, else ``HEARTH_*`` env vars)
   and check every one of them;
2. first start: ``mpc-backend init`` into a temp dir beside the data dir, then rename
   it into place (a crash leaves a temp dir that the next start removes, never a
   half-initialised node); later starts: apply changed options where the node
   allows it (``options.reconcile``);
3. write or remove ``relay-admin.json`` (0600) from the relay options;
4. run ``mpc-backend serve`` as a child (its environment without ``SUPERVISOR_TOKEN``
   and the ``HEARTH_*`` settings), forwarding SIGTERM/SIGINT and returning its exit code;
5. once it answers ``/api/v1/health`` (waited for in the background for as long as it
   runs; a warning after ``--health-timeout`` seconds): as an app (``SUPERVISOR_TOKEN``
   set), withdraw the last start's discovery message and announce ``{url, token}`` as a
   new one, retried with backoff, so that every start shows Home Assistant the
   discovered node again; as a plain container, log the URL and token once, at the
   first start.

The token and passwords are never logged in the app; the container's one token line
is the only way a container user learns it without ``docker exec``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import json
import logging
import math
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

from mpc_backend.node.config import (
    ConfigError,
    NodeConfig,
    config_path,
    load_config,
    parse_listen,
    read_token,
    replace_private,
)
from mpc_backend.node.logs import setup_logging
from mpc_backend.relay.broker import ADMIN_FILE_NAME
from mpc_backend.storage import DB_FILE_NAME, open_storage

from .discovery import DEFAULT_SUPERVISOR_URL, SupervisorClient, announce_with_retry
from .options import (
    ENV_VARS,
    AppOptions,
    OptionsError,
    RelayAdmin,
    options_from_env,
    parse_options,
    parse_options_json,
    reconcile,
)

DEFAULT_DATA = Path("/data")
DEFAULT_LISTEN = "0.0.0.0:8731"  # the app's internal network only; see hearth_node/DOCS.md
NODE_DIR_NAME = "node"
OPTIONS_FILE_NAME = "options.json"
DISCOVERY_FILE_NAME = "discovery.json"  # the uuid of the last discovery message (0600)
INIT_PREFIX = ".node-init-"
HEALTH_TIMEOUT_S = 60.0

log = logging.getLogger("mpc_backend.supervisor")


class StartError(Exception):
    """The start cannot go on; the message is the one log line that says why."""


@dataclass(frozen=True)
class Settings:
    data_root: Path
    listen: str
    supervisor_url: str
    supervisor_token: str | None
    advertise_url: str | None
    discovery_attempts: int
    discovery_backoff: float
    health_timeout: float = HEALTH_TIMEOUT_S

    @property
    def app(self) -> bool:
        """Under the Supervisor (it gives every app a token), else a plain container."""
        return bool(self.supervisor_token)

    @property
    def node_dir(self) -> Path:
        return self.data_root / NODE_DIR_NAME

    @property
    def discovery_state(self) -> Path:
        """Beside the node dir, not in it: it is the app's state, not the node's."""
        return self.data_root / DISCOVERY_FILE_NAME


# -- options ------------------------------------------------------------------------------
def read_options(settings: Settings, env: Mapping[str, str]) -> AppOptions:
    path = settings.data_root / OPTIONS_FILE_NAME
    from_file = path.is_file()
    try:
        if from_file:
            raw: dict[str, Any] = parse_options_json(path.read_text(encoding="utf-8"))
        elif settings.app:
            raise StartError(f"no {path}: the Supervisor writes it from the app's options; "
                             "save the app's Configuration tab and start it again")
        else:
            raw = options_from_env(env)
        return parse_options(raw)
    except OptionsError as err:
        raise StartError(_bad_option(err, from_file, settings.app)) from None
    except OSError as err:
        raise StartError(f"cannot read {path}: {err.strerror}") from None


def _bad_option(err: OptionsError, from_file: bool, app: bool) -> str:
    if err.option == "options.json":
        return f"{OPTIONS_FILE_NAME} {err.problem}"
    if app:
        where = "fix it in the app's Configuration tab and start the app again"
        return f"bad option '{err.option}': {err.problem}; {where}"
    if from_file:
        return f"bad option '{err.option}' in {OPTIONS_FILE_NAME}: {err.problem}"
    var = ENV_VARS.get(err.option, err.option)
    return f"bad setting {var}: {err.problem}; set {var} and start the container again"


def wanted_config(settings: Settings, options: AppOptions) -> NodeConfig:
    try:
        host, port = parse_listen(settings.listen)
        return options.node_config(host, port)
    except (ConfigError, OptionsError) as err:
        raise StartError(f"bad listen address {settings.listen!r} (HEARTH_LISTEN): "
                         f"{getattr(err, 'problem', err)}") from None


# -- the data dir -------------------------------------------------------------------------
def prepare_node(settings: Settings, wanted: NodeConfig) -> tuple[NodeConfig, bool]:
    """Initialise the node or bring its settings up to date; returns (settings, fresh)."""
    settings.data_root.mkdir(mode=0o700, parents=True, exist_ok=True)
    for stale in settings.data_root.glob(f"{INIT_PREFIX}*"):
        shutil.rmtree(stale, ignore_errors=True)  # an init that a crash interrupted
    node_dir = settings.node_dir
    if not config_path(node_dir).exists():
        if node_dir.exists() and any(node_dir.iterdir()):
            raise StartError(f"{node_dir} exists but holds no node settings (config.json); "
                             "it was not made by this app: move it away and start again")
        with contextlib.suppress(FileNotFoundError):
            node_dir.rmdir()
        init_node(settings.data_root, node_dir, wanted)
        return wanted, True
    try:
        current = load_config(node_dir)
    except ConfigError as err:
        raise StartError(str(err)) from None
    try:
        joined = asyncio.run(has_federation(node_dir))
    except sqlite3.Error as err:
        raise StartError(f"cannot read the node's database in {node_dir}: {err}") from None
    outcome = reconcile(current, wanted, joined=joined)
    for line in outcome.refused:
        log.warning("%s", line)
    if outcome.config != current:
        save_config_atomic(node_dir, outcome.config)
    for line in outcome.applied:
        log.info("applied option %s", line)
    return outcome.config, False


def init_node(data_root: Path, node_dir: Path, config: NodeConfig) -> None:
    """``mpc-backend init`` (the same code, in-process) into a temp dir, then rename."""
    from mpc_backend.cli import main as cli_main  # noqa: PLC0415 - argparse tree only here

    scratch = Path(tempfile.mkdtemp(prefix=INIT_PREFIX, dir=data_root))
    target = scratch / NODE_DIR_NAME
    argv = ["init", "--data-dir", str(target), f"--name={config.name}",
            f"--listen={config.listen}", f"--capacity={config.capacity!r}", "--json"]
    argv += ["--input-only"] * config.input_only + ["--insecure-listen"] * config.insecure_listen
    if config.public_url is not None:
        argv.append(f"--public-url={config.public_url}")
    try:
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = cli_main(argv)
            except SystemExit as exc:  # argparse refused an argument (usage on stderr)
                code = 0 if exc.code is None else exc.code if isinstance(exc.code, int) else 1
        if code != 0:
            lines = [line for line in err.getvalue().splitlines() if line.strip()]
            why = f": {lines[-1].strip()}" if lines else ""
            raise StartError(f"mpc-backend init failed (exit {code}){why}; nothing was kept")
        try:
            info = json.loads(out.getvalue())
            node_id, fingerprint = info["node_id"], info["fingerprint"]
        except (ValueError, KeyError, TypeError) as exc:
            raise StartError(f"mpc-backend init printed no node summary ({type(exc).__name__}: "
                             f"{exc}); nothing was kept") from None
        os.rename(target, node_dir)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    log.info("initialised node %s (node id %s, fingerprint %s) in %s", config.name,
             node_id, fingerprint, node_dir)


async def has_federation(node_dir: Path) -> bool:
    """Whether the node holds a roster, i.e. created or joined a federation."""
    if not (node_dir / DB_FILE_NAME).exists():
        return False
    storage = open_storage(node_dir)
    await storage.open()
    try:
        return await storage.get_roster() is not None
    finally:
        await storage.close()


def save_config_atomic(node_dir: Path, config: NodeConfig) -> None:
    replace_private(config_path(node_dir), json.dumps(config.to_dict(), indent=2) + "\n")


def sync_relay_admin(node_dir: Path, relay: RelayAdmin | None) -> None:
    """relay-admin.json follows the relay options: written (0600) or removed."""
    path = node_dir / ADMIN_FILE_NAME
    if relay is None:
        if path.exists() or path.is_symlink():
            path.unlink()
            log.info("removed %s: the relay options are cleared", path)
        return
    text = json.dumps(relay.to_file(), indent=2) + "\n"
    with contextlib.suppress(OSError):
        if (not path.is_symlink() and path.stat().st_mode & 0o777 == 0o600
                and path.read_text(encoding="utf-8") == text):
            return
    replace_private(path, text)
    log.info("wrote %s: broker %s, admin account %s%s", path, relay.url, relay.username,
             ", with its CA certificate" if relay.ca else "")


# -- running ------------------------------------------------------------------------------
def serve_env(env: Mapping[str, str]) -> dict[str, str]:
    """The environment for ``serve``: without the Supervisor's token and the ``HEARTH_*``
    settings (relay password included). serve reads none of them, and a child's
    environment is readable by anything that can read its /proc entry or crash dump."""
    return {key: value for key, value in env.items()
            if key != "SUPERVISOR_TOKEN" and not key.startswith("HEARTH_")}


class Child:
    """``mpc-backend serve`` with SIGTERM/SIGINT forwarded."""

    def __init__(self) -> None:
        self.proc: subprocess.Popen[bytes] | None = None
        self.stopping = threading.Event()

    def handle(self, signum: int, _frame: FrameType | None) -> None:
        self.stopping.set()
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signum)

    def start(self, node_dir: Path, log_level: str, env: Mapping[str, str]) -> None:
        self.proc = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            [sys.executable, "-m", "mpc_backend", "serve", "--data-dir", str(node_dir),
             "--log-level", log_level.upper()], env=serve_env(env))
        if self.stopping.is_set():  # a signal that came before the child existed
            self.proc.send_signal(signal.SIGTERM)

    def wait_healthy(self, url: str, timeout: float) -> bool:
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not self.stopping.is_set():
            if self.proc.poll() is not None:
                return False
            try:
                with urllib.request.urlopen(f"{url}/api/v1/health", timeout=2):  # noqa: S310
                    return True
            except (urllib.error.URLError, OSError):
                self.stopping.wait(0.2)
        return False

    def wait(self) -> int:
        assert self.proc is not None
        code = self.proc.wait()
        return 128 - code if code < 0 else code  # killed by a signal: shell convention


def run(settings: Settings, env: Mapping[str, str]) -> int:
    setup_logging("INFO")
    child = Child()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, child.handle)
    try:
        options = read_options(settings, env)
        setup_logging(options.log_level)
        config, fresh = prepare_node(settings, wanted_config(settings, options))
        sync_relay_admin(settings.node_dir, options.relay)
        token = read_token(settings.node_dir)
    except StartError as err:
        log.error("%s", err)
        return 1
    except (ConfigError, OSError) as err:
        log.error("cannot prepare the node in %s: %s", settings.node_dir, err)
        return 1
    if child.stopping.is_set():
        return 0
    child.start(settings.node_dir, options.log_level, env)
    ready = threading.Thread(target=when_ready, name="ready", daemon=True,
                             args=(settings, config, token, fresh, child))
    ready.start()
    code = child.wait()
    child.stopping.set()
    ready.join(timeout=5)
    log.info("node stopped (exit code %d)", code)
    return code


def when_ready(settings: Settings, config: NodeConfig, token: str, fresh: bool,
               child: Child) -> None:
    """Wait for the node's health for as long as it runs (a slow first start, e.g. a
    big database on an SD card, must not cost the announcement), then announce it."""
    if not child.wait_healthy(config.local_url, settings.health_timeout):
        if child.stopping.is_set() or child.proc is None or child.proc.poll() is not None:
            return
        log.warning("the node has not answered %s/api/v1/health within %g s; still waiting, "
                    "and it will be announced when it answers", config.local_url,
                    settings.health_timeout)
        if not child.wait_healthy(config.local_url, math.inf):
            return
    after_ready(settings, config, token, fresh, child.stopping)


def after_ready(settings: Settings, config: NodeConfig, token: str, fresh: bool,
                stop: threading.Event) -> None:
    if not settings.app:
        url = settings.advertise_url or f"http://{socket.gethostname()}:{config.listen_port}"
        if fresh:
            log.info("connect Home Assistant with URL %s and token %s (keep this token "
                     "secret: anyone who has it controls this node; do not share this "
                     "docker logs output)", url, token)
        else:
            log.info("node ready at %s; for its token run: docker exec CONTAINER mpc-backend "
                     "token --data-dir %s", url, settings.node_dir)
        return
    assert settings.supervisor_token is not None
    client = SupervisorClient(settings.supervisor_url, settings.supervisor_token)
    announce_with_retry(client, config.listen_port, token, attempts=settings.discovery_attempts,
                        first_delay=settings.discovery_backoff, stop=stop,
                        state=settings.discovery_state)


# -- command line -------------------------------------------------------------------------
def build_parser(env: Mapping[str, str]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m mpc_backend.supervisor",
        description=(
            "Start a Hearth node as a Home Assistant app, or as a plain container with the "
            "same image. Options come from DATA/options.json (the Supervisor writes it) or, "
            "without it, from the env vars " + ", ".join(ENV_VARS.values()) + ". The node "
            "lives in DATA/node. With SUPERVISOR_TOKEN set (as the Supervisor sets it for "
            "every app) the node is announced to Home Assistant by discovery; without it the "
            "first start logs the URL and token to connect Home Assistant with."),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--data", type=Path, default=Path(env.get("HEARTH_DATA", DEFAULT_DATA)),
                        help="the app's data dir (env HEARTH_DATA)")
    parser.add_argument("--listen", default=env.get("HEARTH_LISTEN", DEFAULT_LISTEN),
                        help="HOST:PORT the node listens on (env HEARTH_LISTEN)")
    parser.add_argument("--supervisor-url",
                        default=env.get("HEARTH_SUPERVISOR_URL", DEFAULT_SUPERVISOR_URL),
                        help="the Supervisor's API (env HEARTH_SUPERVISOR_URL)")
    parser.add_argument("--url", default=env.get("HEARTH_URL"),
                        help="container only: the URL Home Assistant reaches this node at, "
                             "shown with the token (env HEARTH_URL; default "
                             "http://HOSTNAME:PORT)")
    parser.add_argument("--discovery-attempts", type=int, default=6,
                        help="discovery attempts before giving up (the node keeps serving)")
    parser.add_argument("--discovery-backoff", type=float, default=2.0,
                        help="seconds before the second attempt; doubles per attempt, up to 60")
    parser.add_argument("--health-timeout", type=float, default=HEALTH_TIMEOUT_S,
                        help="seconds to wait for the node's health before warning (it is "
                             "still announced when it answers later)")
    return parser


def main(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> int:
    env = os.environ if env is None else env
    args = build_parser(env).parse_args(argv)
    if args.discovery_attempts < 1 or args.discovery_backoff < 0 or not (
            0 < args.health_timeout < math.inf):
        print("error: --discovery-attempts must be at least 1, --discovery-backoff "
              "not negative and --health-timeout a positive number", file=sys.stderr)
        return 2
    if not args.supervisor_url.startswith(("http://", "https://")):
        print(f"error: --supervisor-url must be http(s)://..., got {args.supervisor_url!r}",
              file=sys.stderr)
        return 2
    settings = Settings(
        data_root=args.data, listen=args.listen, supervisor_url=args.supervisor_url,
        supervisor_token=env.get("SUPERVISOR_TOKEN") or None, advertise_url=args.url,
        discovery_attempts=args.discovery_attempts, discovery_backoff=args.discovery_backoff,
        health_timeout=args.health_timeout,
    )
    return run(settings, env)
