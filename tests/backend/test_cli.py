"""The mpc-backend command line: help, init, errors as one line, key-file safety, serve."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from mpc_backend.cli import build_parser, parse_duration
from tests.backend.nodes import NodeProcess, cli, free_port

COMMANDS = [
    ["init"], ["serve"], ["federation", "create"], ["invite"], ["join"], ["task", "add"],
    ["task", "list"], ["contribute"], ["results"], ["status"], ["token"],
    ["member", "capacity"],
]
NO_DATA_DIR = [["relay", "init"]]  # sets up a broker, not a node


@pytest.mark.parametrize("words", [[], *COMMANDS, *NO_DATA_DIR])
def test_every_command_has_help(words: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args([*words, "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: mpc-backend")
    if words in COMMANDS:
        assert "--data-dir" in out


def test_durations() -> None:
    assert parse_duration("24h") == 86400
    assert parse_duration("30m") == 1800
    assert parse_duration("7d") == 7 * 86400
    assert parse_duration("90") == 90
    for bad in ("0", "1w", "h", "-5m"):
        with pytest.raises(Exception, match="not a duration"):
            parse_duration(bad)


def test_init_writes_private_files_and_refuses_twice(tmp_path: Path) -> None:
    data = tmp_path / "node"
    port = free_port()
    info = json.loads(cli("init", "--data-dir", str(data), "--name", "Home",
                          "--listen", f"127.0.0.1:{port}", "--json").stdout)
    assert len(info["node_id"]) == 32 and info["url"] == f"http://127.0.0.1:{port}"
    assert info["hpke_suite"] in ("MLKEM768-X25519", "X25519")
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    for path in data.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    token = cli("token", "--data-dir", str(data)).stdout.strip()
    assert token == (data / "api_token").read_text().strip() and len(token) >= 40
    again = cli("init", "--data-dir", str(data), "--name", "Home", "--listen",
                f"127.0.0.1:{port}", check=False)
    assert again.returncode == 1
    assert again.stderr.strip() == f"error: {data} is already initialised; use another --data-dir"


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--capacity", "1e12"], "error: capacity 1e+12 is outside the allowed range 0.5 to 2; "
                                 "capacity is a small hint of how much committee work"),
        (["--capacity", "0"], "error: capacity 0 is outside the allowed range 0.5 to 2"),
        (["--public-url", "http://hub.lan:8731/hearth?x=1"],
         "error: public URL (--public-url) 'http://hub.lan:8731/hearth?x=1' has a path"),
        (["--public-url", "http://admin:pw@hub.lan:8731"], "carries a user name or password"),
    ],
)
def test_init_refuses_capacity_and_url_outside_the_policy(
    tmp_path: Path, args: list[str], says: str
) -> None:
    data = tmp_path / "node"
    proc = cli("init", "--data-dir", str(data), "--name", "Home", "--listen",
               f"127.0.0.1:{free_port()}", *args, check=False)
    assert proc.returncode == 1 and proc.stderr.count("\n") == 1
    assert says in proc.stderr
    assert not data.exists(), "nothing is written for a refused init"


def test_capacity_and_hpke_help_say_what_they_mean(capsys: pytest.CaptureFixture[str]) -> None:
    for words in (["init"], ["federation", "create"], ["member", "capacity"],
                  ["task", "add"]):
        with pytest.raises(SystemExit):
            build_parser().parse_args([*words, "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "0.5 to 2: a small hint of how much committee work" in out
    assert "--allow-classical-hpke" in out and "post-quantum MLKEM768-X25519" in out
    assert "NODE_ID_OR_NAME" in out
    assert "at least 3, as a mean over two contributors tells each the other's reading" in out


def test_non_loopback_listen_needs_tls_or_explicit_insecure(tmp_path: Path) -> None:
    proc = cli("init", "--data-dir", str(tmp_path / "a"), "--name", "A", "--listen",
               "0.0.0.0:8731", check=False)
    assert proc.returncode == 1 and proc.stderr.count("\n") == 1
    assert "--tls-cert" in proc.stderr and "--insecure-listen" in proc.stderr
    ok = cli("init", "--data-dir", str(tmp_path / "b"), "--name", "B", "--listen",
             "0.0.0.0:8731", "--insecure-listen", check=False)
    assert ok.returncode == 0


def test_admin_commands_say_when_the_node_is_not_running(tmp_path: Path) -> None:
    node = NodeProcess("n", tmp_path / "n", free_port(), tmp_path / "n.log")
    node.init()
    for args in (["status"], ["contribute", "--task", "t", "--value", "1"],
                 ["federation", "create", "--name", "x"], ["join", "hearth-invite-v1.x"]):
        proc = node.cli(*args, check=False)
        assert proc.returncode == 1
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1
        assert lines[0].startswith(f"error: node is not running at 127.0.0.1:{node.port}")
        assert f"mpc-backend serve --data-dir {node.data_dir}" in lines[0]
    proc = cli("status", "--data-dir", str(tmp_path / "missing"), check=False)
    assert proc.returncode == 1 and "run: mpc-backend init" in proc.stderr


def test_serve_refuses_readable_key_files_and_a_busy_data_dir(tmp_path: Path) -> None:
    node = NodeProcess("n", tmp_path / "n", free_port(), tmp_path / "n.log")
    node.init()
    key_file = node.data_dir / "node_identity.json"
    os.chmod(key_file, 0o644)
    proc = cli("serve", "--data-dir", str(node.data_dir), check=False, timeout=30)
    assert proc.returncode == 1
    assert proc.stderr.strip().endswith(f"run: chmod 600 {key_file}")
    os.chmod(key_file, 0o600)
    node.start()
    try:
        second = cli("serve", "--data-dir", str(node.data_dir), check=False, timeout=30)
        assert second.returncode == 1 and "already using" in second.stderr
        status = node.cli_json("status")
        assert status["federation"] is None and status["identity"]["node_id"] == node.node_id
        proc = node.cli("contribute", "--task", "t", "--value", "1", check=False)
        assert proc.returncode == 1 and "not in a federation" in proc.stderr
    finally:
        assert node.stop() == 0, node.log_text()
    assert "node stopped" in node.log_text()
    assert "Traceback" not in node.log_text()


def test_cli_flow_on_two_nodes_reports_errors_in_one_line(tmp_path: Path) -> None:
    founder = NodeProcess("f", tmp_path / "f", free_port(), tmp_path / "f.log")
    joiner = NodeProcess("j", tmp_path / "j", free_port(), tmp_path / "j.log")
    founder.init()
    joiner.init()
    founder.start()
    joiner.start()
    try:
        created = founder.cli_json("federation", "create", "--name", "Elm Street")
        assert created["roster_version"] == 1
        token = founder.cli("invite", "--expires", "10m").stdout.strip()
        assert token.startswith("hearth-invite-v1.")
        joined = joiner.cli_json("join", token)
        assert joined["members"] == 2 and joined["founder"] == "f"
        reused = joiner.cli("join", token, check=False)
        assert reused.returncode == 1 and "already in federation" in reused.stderr
        # Only two members can take compute work: a k=3 task is refused with the reason.
        task = ("task", "add", "--metric", "t", "--min", "0", "--max", "10",
                "--resolution", "1", "--stats", "mean", "--period", "60")
        proc = joiner.cli(*task, "--min-contributors", "3", check=False)
        assert proc.returncode == 1 and proc.stderr.count("\n") == 1
        assert "only 2 member(s) accept compute work" in proc.stderr
        proc = joiner.cli(*task, "--min-contributors", "2", check=False)
        assert proc.returncode == 1
        assert "a released mean over two contributors tells each the other's reading" in (
            proc.stderr)
        # The founder sets capacities, by name or node id; members may not.
        changed = founder.cli("member", "capacity", "j", "1.5")
        assert changed.stdout.startswith(f"capacity of j ({joiner.node_id}) is 1.5 from now on")
        proc = founder.cli("member", "capacity", joiner.node_id, "5", check=False)
        assert proc.returncode == 1 and "outside the allowed range 0.5 to 2" in proc.stderr
        proc = joiner.cli("member", "capacity", "f", "2", check=False)
        assert proc.returncode == 1 and "only the founder (f) can change capacities" in (
            proc.stderr)
        assert "capacity 1.5" in founder.cli("status").stdout
        proc = joiner.cli("invite", check=False)
        assert proc.returncode == 1 and "only the founder" in proc.stderr
        status = joiner.cli_json("status")
        assert status["federation"]["members_online"] == 2
    finally:
        founder.stop()
        joiner.stop()
