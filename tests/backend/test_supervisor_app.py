"""The app's start script as real processes: ``python -m mpc_backend.supervisor`` runs
``mpc-backend init``/``serve`` against a fake Supervisor on loopback (or none, as a
plain container), and every check goes to the real node's local API."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import socket
import stat
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.backend.fake_supervisor import FakeSupervisor
from tests.backend.nodes import REPO, allow_loopback_sockets, free_port, local_api, wait_for

pytestmark = pytest.mark.slow

SUPERVISOR_TOKEN = "supervisor-token-7f3a9c"
ADMIN_PASSWORD = "broker-admin-password-c41d7e"
OPTIONS = {"name": "No. 12", "capacity": 1.0, "input_only": False, "log_level": "info"}


class App:
    """One app data dir (``/data``) and the start script's runs over it."""

    def __init__(self, root: Path, supervisor: FakeSupervisor | None) -> None:
        self.root = root
        self.data = root / "data"
        self.data.mkdir()
        self.port = free_port()
        self.supervisor = supervisor
        self.proc: subprocess.Popen[bytes] | None = None
        self.logs: list[Path] = []

    @property
    def node_dir(self) -> Path:
        return self.data / "node"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def write_options(self, **options: Any) -> None:
        (self.data / "options.json").write_text(json.dumps(options))

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items()
               if not k.startswith("HEARTH_") and k != "SUPERVISOR_TOKEN"}
        env.update(PYTHONPATH=str(REPO), PYTHONUNBUFFERED="1", HEARTH_DATA=str(self.data),
                   HEARTH_LISTEN=f"127.0.0.1:{self.port}")
        if self.supervisor is not None:
            env.update(SUPERVISOR_TOKEN=SUPERVISOR_TOKEN,
                       HEARTH_SUPERVISOR_URL=self.supervisor.url)
        env.update(extra)
        return env

    def launch(self, *args: str, prelude: str | None = None, **env: str) -> None:
        """Run the start script; ``prelude`` is Python run first in its process (to
        patch what the script calls), then the script as ``-m mpc_backend.supervisor``."""
        log_path = self.root / f"app.{len(self.logs)}.log"
        self.logs.append(log_path)
        script = ["-m", "mpc_backend.supervisor"] if prelude is None else [
            "-c", f"{prelude}\nimport runpy\n"
                  "runpy.run_module('mpc_backend.supervisor', run_name='__main__')"]
        with log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, *script, "--discovery-attempts", "3",
                 "--discovery-backoff", "0.1", *args],
                stdout=log, stderr=subprocess.STDOUT, cwd=REPO, env=self.env(**env))

    def start(self, *args: str, **env: str) -> None:
        self.launch(*args, **env)
        wait_for(self.healthy, 30, 0.1, "the node's health endpoint")

    def healthy(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise AssertionError(f"app exited {self.proc.returncode}: {self.log()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{self.url}/api/v1/health", timeout=1):
                return True
        except (urllib.error.URLError, OSError):
            return False

    def run_to_exit(self, *args: str, timeout: float = 60, prelude: str | None = None,
                    **env: str) -> int:
        self.launch(*args, prelude=prelude, **env)
        assert self.proc is not None
        return self.proc.wait(timeout=timeout)

    def stop(self) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=20)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def log(self, run: int | None = None) -> str:
        paths = self.logs if run is None else [self.logs[run]]
        return "".join(p.read_text(errors="replace") for p in paths if p.exists())

    def token(self) -> str:
        return (self.node_dir / "api_token").read_text().strip()

    def api(self, method: str, path: str, token: str, body: Any = None,
            base: str | None = None) -> tuple[int, Any]:
        return local_api(base or self.url, method, path, body, token)


@pytest.fixture
def supervisor() -> Iterator[FakeSupervisor]:
    allow_loopback_sockets()
    with FakeSupervisor(SUPERVISOR_TOKEN) as fake:
        yield fake


@pytest.fixture
def app(tmp_path: Path, supervisor: FakeSupervisor) -> Iterator[App]:
    instance = App(tmp_path, supervisor)
    yield instance
    instance.kill()


def announced(supervisor: FakeSupervisor, count: int = 1) -> list[dict[str, Any]]:
    wait_for(lambda: len(supervisor.announcements) >= count, 20, 0.1, "a discovery message")
    return supervisor.announcements


def assert_no_secrets(text: str, *secrets: str) -> None:
    for secret in secrets:
        assert secret not in text


def leftovers(data: Path) -> list[str]:
    return sorted(p.name for p in data.iterdir() if p.name != "options.json")


def error_lines(log: str) -> list[str]:
    return [line for line in log.splitlines() if " ERROR " in line]


def child_pids(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` (from /proc/*/stat)."""
    found = []
    for stat_path in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat_path.read_text()
        except OSError:
            continue  # exited meanwhile
        ppid = int(text.rpartition(")")[2].split()[1])  # after "(comm)": state, ppid
        if ppid == pid:
            found.append(int(stat_path.parent.name))
    return found


def environ(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes().decode(errors="replace")
    return dict(item.partition("=")[::2] for item in raw.split("\0") if item)


def test_first_start_initialises_and_announces_a_token_that_works(
        app: App, supervisor: FakeSupervisor) -> None:
    app.write_options(**OPTIONS)
    app.start()
    [message] = announced(supervisor)
    token = app.token()
    assert message["service"] == "hearth"
    assert message["config"] == {"url": f"http://127.0.0.1:{app.port}", "token": token}
    # Home Assistant would call the announced URL with the announced token: the real node.
    status, body = app.api("GET", "/status", message["config"]["token"],
                           base=message["config"]["url"])
    assert status == 200
    assert body["identity"]["name"] == "No. 12"
    assert body["identity"]["capacity"] == 1.0
    assert app.api("GET", "/status", "not-the-token")[0] == 401
    # The app's token went to the Supervisor as a bearer on every call, info before post.
    assert supervisor.paths() == [("GET", "/addons/self/info", 200),
                                  ("POST", "/discovery", 200)]
    assert {seen.authorization for seen in supervisor.requests} == {f"Bearer {SUPERVISOR_TOKEN}"}
    config = json.loads((app.node_dir / "config.json").read_text())
    assert config["listen"] == f"127.0.0.1:{app.port}"
    assert config["insecure_listen"] is True
    assert stat.S_IMODE(app.node_dir.stat().st_mode) == 0o700
    wait_for((app.data / "discovery.json").exists, 10, 0.1, "the remembered uuid")
    assert leftovers(app.data) == ["discovery.json", "node"]  # no temp dir from the init
    assert remembered(app) == message["uuid"]
    assert supervisor.events == [("added", message["uuid"])]
    assert app.stop() == 0
    log = app.log()
    assert "initialised node No. 12" in log
    assert "announced this node to Home Assistant" in log
    assert_no_secrets(log, token, SUPERVISOR_TOKEN)


def remembered(app: App) -> str:
    path = app.data / "discovery.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    data = json.loads(path.read_text())
    assert set(data) == {"uuid"}
    return data["uuid"]


def test_restart_reannounces_the_same_identity_as_a_new_message(
        app: App, supervisor: FakeSupervisor) -> None:
    app.write_options(**OPTIONS)
    app.start()
    first = announced(supervisor)[0]
    wait_for((app.data / "discovery.json").exists, 10, 0.1, "the remembered uuid")
    assert remembered(app) == first["uuid"]
    assert not (app.node_dir / "discovery.json").exists()  # the app's state, not the node's
    node_id = app.api("GET", "/status", app.token())[1]["identity"]["node_id"]
    identity = (app.node_dir / "node_identity.json").read_bytes()
    assert app.stop() == 0

    # Home Assistant is told again (a dismissed or aborted discovery comes back): the
    # last message is deleted and the same config posted as a new one.
    app.start()
    second = announced(supervisor, 2)[1]
    assert second["config"] == first["config"]
    assert second["uuid"] != first["uuid"]
    assert supervisor.paths()[2:] == [("GET", "/addons/self/info", 200),
                                      ("DELETE", f"/discovery/{first['uuid']}", 200),
                                      ("POST", "/discovery", 200)]
    assert supervisor.events == [("added", first["uuid"]), ("removed", first["uuid"]),
                                 ("added", second["uuid"])]
    assert list(supervisor.messages.values()) == [{
        "addon": "hearth_node", "uuid": second["uuid"], "service": "hearth",
        "config": {"url": f"http://127.0.0.1:{app.port}", "token": app.token()}}]
    wait_for(lambda: remembered(app) == second["uuid"], 10, 0.1, "the new uuid remembered")
    status, body = app.api("GET", "/status", second["config"]["token"])
    assert status == 200 and body["identity"]["node_id"] == node_id
    assert (app.node_dir / "node_identity.json").read_bytes() == identity
    assert app.stop() == 0
    assert "initialised node" not in app.log(1)
    assert f"withdrew the last start's discovery {first['uuid']}" in app.log(1)

    # The Supervisor lost the message meanwhile (404): the start still announces.
    supervisor.messages.clear()
    app.start()
    third = announced(supervisor, 3)[2]
    assert ("DELETE", f"/discovery/{second['uuid']}", 404) in supervisor.paths()
    assert third["uuid"] not in (first["uuid"], second["uuid"])
    assert supervisor.events[3:] == [("added", third["uuid"])]
    assert [m["uuid"] for m in supervisor.messages.values()] == [third["uuid"]]
    wait_for(lambda: remembered(app) == third["uuid"], 10, 0.1, "the third uuid remembered")
    assert app.stop() == 0
    assert error_lines(app.log(2)) == []
    assert_no_secrets(app.log(), app.token(), SUPERVISOR_TOKEN)


# serve starts only after a delay, as on a slow disk: a real serve, just late.
SLOW_SERVE = """
import subprocess, sys
real_popen = subprocess.Popen
def late_popen(args, **kwargs):
    if "serve" in args:
        late = ("import runpy, sys, time; time.sleep(3); sys.argv[0] = 'mpc_backend'; "
                "runpy.run_module('mpc_backend', run_name='__main__', alter_sys=True)")
        args = [sys.executable, "-c", late, *args[3:]]
    return real_popen(args, **kwargs)
subprocess.Popen = late_popen
"""


def test_a_slow_first_health_check_still_announces(
        app: App, supervisor: FakeSupervisor) -> None:
    app.write_options(**OPTIONS)
    app.launch("--health-timeout", "0.5", prelude=SLOW_SERVE)
    wait_for(lambda: "still waiting" in app.log(), 20, 0.1, "the still-waiting warning")
    assert supervisor.announcements == []  # not announced before it answers
    wait_for(app.healthy, 30, 0.1, "the late node's health endpoint")
    [message] = announced(supervisor)
    assert message["config"] == {"url": f"http://127.0.0.1:{app.port}", "token": app.token()}
    assert app.api("GET", "/status", app.token())[0] == 200
    assert app.stop() == 0
    log = app.log()
    assert log.count("has not answered") == 1
    assert (f"the node has not answered http://127.0.0.1:{app.port}/api/v1/health within "
            "0.5 s; still waiting, and it will be announced when it answers") in log
    assert error_lines(log) == []


def test_changed_options_are_applied_before_the_node_joins(
        app: App, supervisor: FakeSupervisor) -> None:
    app.write_options(**OPTIONS)
    app.start()
    assert app.stop() == 0
    app.write_options(**{**OPTIONS, "name": "No. 12a", "capacity": 1.5, "input_only": True})
    app.start()
    identity = app.api("GET", "/status", app.token())[1]["identity"]
    assert (identity["name"], identity["capacity"], identity["input_only"]) == (
        "No. 12a", 1.5, True)
    assert app.stop() == 0
    log = app.log(1)
    assert "applied option name: 'No. 12' -> 'No. 12a'" in log
    assert "applied option capacity: 1.0 -> 1.5" in log
    assert "applied option input_only: False -> True" in log
    assert stat.S_IMODE((app.node_dir / "config.json").stat().st_mode) == 0o600


def test_changed_options_are_refused_once_the_node_is_in_a_federation(
        app: App, supervisor: FakeSupervisor) -> None:
    app.write_options(**OPTIONS)
    app.start()
    announced(supervisor)
    status, _ = app.api("POST", "/federation", app.token(), {"name": "Elm Street"})
    assert status in (200, 201)
    assert app.stop() == 0
    before = (app.node_dir / "config.json").read_bytes()

    app.write_options(**{**OPTIONS, "name": "Somebody else", "capacity": 2.0})
    app.start()
    identity = app.api("GET", "/status", app.token())[1]["identity"]
    assert (identity["name"], identity["capacity"]) == ("No. 12", 1.0)
    assert (app.node_dir / "config.json").read_bytes() == before
    announced(supervisor, 2)  # still announced: the node serves as before
    assert app.stop() == 0
    log = app.log(1)
    assert ("option name changed from 'No. 12' to 'Somebody else' but this node already "
            "belongs to a federation") in log
    assert "option capacity changed from 1.0 to 2.0" in log
    assert "Ask the founder to change it" in log
    assert "applied option" not in log


BAD_OPTIONS = [
    ({"name": "  "}, "bad option 'name': is empty"),
    ({"capacity": 3}, "bad option 'capacity': capacity 3 is outside the allowed range 0.5 to 2"),
    ({"relay_url": "mqtts://relay.example.net:8883"},
     "bad option 'relay_username': is empty but relay_url is set"),
    ({"relay_url": "https://relay.example.net", "relay_username": "hearth-admin-1a2b",
      "relay_password": ADMIN_PASSWORD}, "bad option 'relay_url': relay URL "
                                         "'https://relay.example.net' must look like mqtts://"),
    ({"relay_username": "hearth-admin-1a2b", "relay_password": ADMIN_PASSWORD},
     "bad option 'relay_username': is set but relay_url is not"),
    ({"relay_url": f"mqtts://admin:{ADMIN_PASSWORD}@relay.example.net:8883",
      "relay_username": "hearth-admin-1a2b", "relay_password": ADMIN_PASSWORD},
     "bad option 'relay_url': must not contain user:password@"),
]


@pytest.mark.parametrize(("change", "line"), BAD_OPTIONS)
def test_bad_options_on_first_start_leave_no_data_dir(
        app: App, supervisor: FakeSupervisor, change: dict[str, Any], line: str) -> None:
    app.write_options(**{**OPTIONS, **change})
    assert app.run_to_exit() == 1
    log = app.log()
    errors = error_lines(log)
    assert len(errors) == 1, log
    assert line in errors[0]
    assert "fix it in the app's Configuration tab" in errors[0]
    assert leftovers(app.data) == []
    assert supervisor.requests == []
    assert_no_secrets(log, ADMIN_PASSWORD)


def test_bad_options_on_a_later_start_leave_the_node_untouched(
        app: App, supervisor: FakeSupervisor) -> None:
    app.write_options(**OPTIONS)
    app.start()
    assert app.stop() == 0
    before = {p.name: p.read_bytes() for p in app.node_dir.iterdir() if p.is_file()}
    app.write_options(**{**OPTIONS, "name": "No. 12b", "capacity": 0.1})
    assert app.run_to_exit() == 1
    after = {p.name: p.read_bytes() for p in app.node_dir.iterdir() if p.is_file()}
    assert after == before  # the valid name change was not half-applied either
    assert "bad option 'capacity'" in app.log(1)


def test_sigterm_stops_the_node_and_serves_exit_code_propagates(
        app: App, supervisor: FakeSupervisor) -> None:
    app.write_options(**OPTIONS)
    app.start()
    assert app.stop() == 0
    assert "INFO mpc_backend.server: stopping" in app.log()
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", app.port), timeout=1):
        pass  # nothing listens any more: serve is gone with the script
    # serve fails (its port is taken): the script exits with serve's own code.
    with socket.socket() as blocker:
        blocker.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # past TIME_WAIT
        blocker.bind(("127.0.0.1", app.port))
        blocker.listen()
        assert app.run_to_exit() == 1
    assert "node stopped (exit code 1)" in app.log(1)


def test_supervisor_down_the_node_still_serves(tmp_path: Path) -> None:
    allow_loopback_sockets()
    gone = FakeSupervisor(SUPERVISOR_TOKEN)  # never started: its port refuses connections
    app = App(tmp_path, gone)
    try:
        app.write_options(**OPTIONS)
        app.start()
        wait_for(lambda: "discovery failed after 3 attempts" in app.log(), 20, 0.1,
                 "the discovery failure")
        assert app.api("GET", "/status", app.token())[0] == 200
        assert app.proc is not None and app.proc.poll() is None
        log = app.log()
        assert "discovery attempt 1 of 3 failed" in log
        assert ("restart the app to try again (Home Assistant can then find it); the Hearth "
                "integration cannot be added by hand without the node's token") in log
        assert app.stop() == 0
        assert_no_secrets(app.log(), app.token(), SUPERVISOR_TOKEN)
    finally:
        app.kill()


def test_a_supervisor_that_is_not_ready_yet_is_retried(
        app: App, supervisor: FakeSupervisor) -> None:
    supervisor.fail_next = 2
    app.write_options(**OPTIONS)
    app.start()
    [message] = announced(supervisor)
    assert message["config"]["token"] == app.token()
    assert [status for _, _, status in supervisor.paths()] == [503, 503, 200, 200]
    assert app.stop() == 0


def test_a_refused_supervisor_token_is_logged_and_the_node_serves(
        tmp_path: Path, supervisor: FakeSupervisor) -> None:
    supervisor.token = "another-token"
    app = App(tmp_path, supervisor)
    try:
        app.write_options(**OPTIONS)
        app.start()
        wait_for(lambda: "discovery failed" in app.log(), 20, 0.1, "the discovery failure")
        assert "HTTP 401 Unauthorized" in app.log()
        assert supervisor.announcements == []
        assert app.api("GET", "/status", app.token())[0] == 200
        assert app.stop() == 0
        assert_no_secrets(app.log(), app.token(), SUPERVISOR_TOKEN)
    finally:
        app.kill()


def _ca_pem() -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Hearth relay CA")])
    now = time.time()
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(dt.datetime.fromtimestamp(now - 60, dt.UTC))
            .not_valid_after(dt.datetime.fromtimestamp(now + 86400, dt.UTC))
            .sign(key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def test_relay_admin_file_follows_the_relay_options(app: App, supervisor: FakeSupervisor) -> None:
    ca = _ca_pem()
    relay = {"relay_url": "mqtts://relay.example.net:8883", "relay_username": "hearth-admin-1a2b",
             "relay_password": ADMIN_PASSWORD, "relay_ca": " ".join(ca.split("\n"))}
    app.write_options(**OPTIONS, **relay)
    app.start()
    path = app.node_dir / "relay-admin.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert json.loads(path.read_text()) == {
        "url": "mqtts://relay.example.net:8883", "ca": ca,  # line breaks restored
        "admin": {"username": "hearth-admin-1a2b", "password": ADMIN_PASSWORD}}
    assert app.stop() == 0

    app.write_options(**OPTIONS)  # cleared in the Configuration tab: the keys are gone
    app.start()
    assert not path.exists()
    assert app.stop() == 0
    log = app.log()
    assert "wrote " in log and "broker mqtts://relay.example.net:8883" in log
    assert "relay-admin.json: the relay options are cleared" in log
    assert_no_secrets(log, ADMIN_PASSWORD, app.token())


def test_container_mode_takes_env_vars_and_logs_the_token_once(tmp_path: Path,
                                                               supervisor: FakeSupervisor) -> None:
    app = App(tmp_path, None)
    env = {"HEARTH_NAME": "No. 14", "HEARTH_CAPACITY": "0.5", "HEARTH_INPUT_ONLY": "yes",
           "HEARTH_URL": f"http://hearth.test:{app.port}",
           "HEARTH_SUPERVISOR_URL": supervisor.url}  # must not be called without a token
    try:
        app.start(**env)
        identity = app.api("GET", "/status", app.token())[1]["identity"]
        assert (identity["name"], identity["capacity"], identity["input_only"]) == (
            "No. 14", 0.5, True)
        wait_for(lambda: "connect Home Assistant" in app.log(), 10, 0.1, "the token line")
        assert app.stop() == 0
        line = (f"connect Home Assistant with URL http://hearth.test:{app.port} and token "
                f"{app.token()} (keep this token secret: anyone who has it controls this "
                "node; do not share this docker logs output)")
        assert app.log(0).count(line) == 1
        app.start(**env)
        wait_for(lambda: "docker exec CONTAINER mpc-backend token" in app.log(1), 10, 0.1,
                 "the token hint")
        assert app.stop() == 0
        assert app.token() not in app.log(1)
        assert supervisor.requests == []
        assert app.run_to_exit(**{**env, "HEARTH_CAPACITY": "lots"}) == 1
        assert ("bad setting HEARTH_CAPACITY: must be a number from 0.5 to 2, got 'lots'"
                in app.log(2))
    finally:
        app.kill()


def test_container_mode_reads_a_mounted_options_file(tmp_path: Path) -> None:
    allow_loopback_sockets()
    app = App(tmp_path, None)
    try:
        app.write_options(**{**OPTIONS, "name": "From the file"})
        app.start(HEARTH_NAME="From the env")
        assert app.api("GET", "/status", app.token())[1]["identity"]["name"] == "From the file"
        assert app.stop() == 0
    finally:
        app.kill()


def test_app_without_options_json_says_what_to_do(app: App) -> None:
    assert app.run_to_exit() == 1
    assert "no " in app.log() and "options.json: the Supervisor writes it" in app.log()
    assert leftovers(app.data) == []


def test_a_foreign_node_dir_is_not_taken_over(app: App) -> None:
    app.write_options(**OPTIONS)
    app.node_dir.mkdir()
    (app.node_dir / "notes.txt").write_text("mine")
    assert app.run_to_exit() == 1
    assert "holds no node settings (config.json)" in app.log()
    assert sorted(p.name for p in app.node_dir.iterdir()) == ["notes.txt"]
    assert leftovers(app.data) == ["node"]


def test_an_unreadable_database_stops_the_start_with_one_line(
        app: App, supervisor: FakeSupervisor) -> None:
    app.write_options(**OPTIONS)
    app.start()
    assert app.stop() == 0
    for stale in app.node_dir.glob("node.sqlite3-*"):
        stale.unlink()
    (app.node_dir / "node.sqlite3").write_bytes(b"not a database" * 100)
    assert app.run_to_exit() == 1
    errors = error_lines(app.log(1))
    assert len(errors) == 1 and "cannot read the node's database" in errors[0], app.log(1)


# A CLI whose parser refuses what the start script passes (argparse exits with usage).
ARGPARSE_REFUSES = """
import mpc_backend.cli as cli
cli.main = lambda argv: cli.build_parser().parse_args([*argv, "--no-such-flag"]) and 0
"""
# init succeeds (a real node is made in the scratch dir) but its summary is not JSON.
SUMMARY_NOT_JSON = """
import mpc_backend.cli as cli
real_main = cli.main
def main(argv):
    code = real_main(argv)
    print("} not JSON")
    return code
cli.main = main
"""


@pytest.mark.parametrize(("prelude", "line"), [
    (ARGPARSE_REFUSES, "mpc-backend init failed (exit 2): "),
    (SUMMARY_NOT_JSON, "mpc-backend init printed no node summary (JSONDecodeError: "),
])
def test_an_init_that_fails_oddly_is_one_line_and_leaves_nothing(
        app: App, supervisor: FakeSupervisor, prelude: str, line: str) -> None:
    app.write_options(**OPTIONS)
    assert app.run_to_exit(prelude=prelude) == 1
    log = app.log()
    errors = error_lines(log)
    assert len(errors) == 1, log
    assert line in errors[0] and errors[0].endswith("; nothing was kept")
    assert "Traceback" not in log and "usage:" not in log
    assert leftovers(app.data) == []  # the scratch dir (with the made node) is gone
    assert supervisor.requests == []
    if prelude is ARGPARSE_REFUSES:
        assert "unrecognized arguments: --no-such-flag" in errors[0]


# main() given its own env (not os.environ): serve's environment must come from it.
OWN_ENV = """
import os
import mpc_backend.supervisor.start as start
real_main = start.main
start.main = lambda argv=None, env=None: real_main(argv, {
    **os.environ, "ONLY_IN_MAINS_ENV": "passed-on", "HEARTH_ONLY_IN_MAINS_ENV": "dropped"})
"""


def test_serve_gets_neither_the_supervisor_token_nor_hearth_settings(
        app: App, supervisor: FakeSupervisor) -> None:
    app.write_options(**OPTIONS)
    app.launch(prelude=OWN_ENV, HEARTH_RELAY_PASSWORD=ADMIN_PASSWORD, HEARTH_NAME="No. 99")
    wait_for(app.healthy, 30, 0.1, "the node's health endpoint")
    assert app.proc is not None
    script_env = environ(app.proc.pid)  # the start script itself has them all
    assert script_env["SUPERVISOR_TOKEN"] == SUPERVISOR_TOKEN
    assert script_env["HEARTH_RELAY_PASSWORD"] == ADMIN_PASSWORD
    assert "ONLY_IN_MAINS_ENV" not in script_env
    [serve] = child_pids(app.proc.pid)
    assert "serve" in Path(f"/proc/{serve}/cmdline").read_bytes().decode().split("\0")
    serve_env = environ(serve)
    assert "SUPERVISOR_TOKEN" not in serve_env
    assert [key for key in serve_env if key.startswith("HEARTH_")] == []
    assert_no_secrets("\n".join(serve_env.values()), SUPERVISOR_TOKEN, ADMIN_PASSWORD)
    assert serve_env["PYTHONPATH"] == script_env["PYTHONPATH"]  # the rest is passed on
    assert serve_env["ONLY_IN_MAINS_ENV"] == "passed-on"  # from run()'s env, not os.environ
    assert app.stop() == 0


def test_container_public_url_lets_a_node_on_every_interface_found_without_a_relay(
        tmp_path: Path) -> None:
    allow_loopback_sockets()
    app = App(tmp_path, None)
    env = {"HEARTH_NAME": "No. 14", "HEARTH_LISTEN": f"0.0.0.0:{app.port}"}
    public = "https://hearth.example.net:8443"
    try:
        app.start(**env)
        status, body = app.api("POST", "/federation", app.token(), {"name": "Elm Street"})
        assert (status, body["error"]["code"]) == (422, "no_public_url")
        assert app.stop() == 0

        app.start(**env, HEARTH_PUBLIC_URL=public)  # not joined yet: applied
        assert app.api("GET", "/status", app.token())[1]["identity"]["url"] == public
        assert json.loads((app.node_dir / "config.json").read_text())["public_url"] == public
        status, _ = app.api("POST", "/federation", app.token(), {"name": "Elm Street"})
        assert status in (200, 201)
        assert app.stop() == 0
        assert f"applied option public_url: None -> '{public}'" in app.log(1)

        app.start(**env, HEARTH_PUBLIC_URL="https://elsewhere.example.net")  # joined: kept
        assert app.api("GET", "/status", app.token())[1]["identity"]["url"] == public
        assert app.stop() == 0
        assert (f"option public_url changed from '{public}' to "
                "'https://elsewhere.example.net' but this node already belongs to a "
                "federation") in app.log(2)
    finally:
        app.kill()


def test_container_public_url_fresh_init_and_a_bad_one(tmp_path: Path) -> None:
    allow_loopback_sockets()
    app = App(tmp_path, None)
    try:
        bad = f"https://admin:{ADMIN_PASSWORD}@hearth.example.net"
        assert app.run_to_exit(HEARTH_NAME="No. 15", HEARTH_PUBLIC_URL=bad) == 1
        errors = error_lines(app.log(0))
        assert len(errors) == 1, app.log(0)
        assert ("bad setting HEARTH_PUBLIC_URL: must not contain user:password@; "
                "use http://HOST[:PORT] or https://HOST[:PORT]") in errors[0]
        assert "set HEARTH_PUBLIC_URL and start the container again" in errors[0]
        assert_no_secrets(app.log(0), ADMIN_PASSWORD)
        assert leftovers(app.data) == []
        assert app.run_to_exit(HEARTH_NAME="No. 15",
                               HEARTH_PUBLIC_URL="https://hearth.example.net/x") == 1
        assert "bad setting HEARTH_PUBLIC_URL: 'https://hearth.example.net/x' has a path" in (
            app.log(1))
        assert leftovers(app.data) == []

        app.start(HEARTH_NAME="No. 15", HEARTH_PUBLIC_URL="https://hearth.example.net")
        config = json.loads((app.node_dir / "config.json").read_text())
        assert config["public_url"] == "https://hearth.example.net"  # given to init
        assert app.stop() == 0
        assert "applied option" not in app.log(2)
    finally:
        app.kill()
