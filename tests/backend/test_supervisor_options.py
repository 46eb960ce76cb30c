"""The app's options (pure checks, reconcile) and its Supervisor client."""

from __future__ import annotations

import base64
import json
import stat
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mpc_backend.node.config import NodeConfig
from mpc_backend.supervisor.discovery import (
    SupervisorClient,
    SupervisorError,
    announce_with_retry,
    backoff_delays,
)
from mpc_backend.supervisor.options import (
    AppOptions,
    OptionsError,
    RelayAdmin,
    normalise_pem,
    options_from_env,
    parse_options,
    parse_options_json,
    reconcile,
)
from tests.backend.fake_supervisor import FakeSupervisor
from tests.backend.nodes import allow_loopback_sockets

PASSWORD = "s3cret-admin-password"
RELAY = {"relay_url": "mqtts://relay.example.net:8883", "relay_username": "hearth-admin-9f0e",
         "relay_password": PASSWORD}


def test_defaults_and_a_full_set() -> None:
    assert parse_options({"name": " No. 12 "}) == AppOptions("No. 12")
    got = parse_options({"name": "No. 12", "capacity": 2, "input_only": True,
                         "log_level": "DEBUG", **RELAY})
    assert got == AppOptions("No. 12", 2.0, True,
                             RelayAdmin(RELAY["relay_url"], "hearth-admin-9f0e", PASSWORD),
                             "debug")
    assert PASSWORD not in repr(got)  # a dataclass repr must not leak it into a traceback


@pytest.mark.parametrize(("raw", "option", "fragment"), [
    ({}, "name", "is missing"),
    ({"name": ""}, "name", "is empty"),
    ({"name": 12}, "name", "is empty"),
    ({"name": "x" * 65}, "name", "longer than 64"),
    ({"name": "a\nb"}, "name", "control characters"),
    ({"name": "n", "capacity": 0.49}, "capacity", "outside the allowed range 0.5 to 2"),
    ({"name": "n", "capacity": 2.01}, "capacity", "outside the allowed range"),
    ({"name": "n", "capacity": "NaN"}, "capacity", "must be a number"),
    ({"name": "n", "capacity": True}, "capacity", "must be a number"),
    ({"name": "n", "input_only": "maybe"}, "input_only", "true or false"),
    ({"name": "n", "log_level": "loud"}, "log_level", "one of debug, info"),
    ({"name": "n", "relay_url": "mqtts://r.example:8883"}, "relay_username", "is empty"),
    ({"name": "n", "relay_url": "mqtts://r.example:8883", "relay_username": "hearth-a"},
     "relay_password", "is empty"),
    ({"name": "n", "relay_password": PASSWORD}, "relay_password", "relay_url is not"),
    ({"name": "n", "relay_ca": "-----BEGIN CERTIFICATE-----"}, "relay_ca", "relay_url is not"),
    ({"name": "n", **RELAY, "relay_url": "mqtt://relay.example.net"}, "relay_url", "TLS"),
    ({"name": "n", **RELAY, "relay_url": "mqtts://"}, "relay_url", "must look like"),
    ({"name": "n", **RELAY, "relay_url": "mqtts://[::1"}, "relay_url", "malformed"),
    ({"name": "n", **RELAY, "relay_username": "Admin!"}, "relay_username", "3-64 characters"),
    ({"name": "n", **RELAY, "relay_ca": "not a certificate"}, "relay_ca", "PEM certificate"),
    ({"name": "n", **RELAY, "relay_url": f"mqtts://u:{PASSWORD}@r.example"}, "relay_url",
     "must not contain user:password@"),
    ({"name": "n", "public_url": "ftp://hearth.example.net"}, "public_url",
     "is not an http or https URL"),
    ({"name": "n", "public_url": "https://hearth.example.net/hearth"}, "public_url",
     "has a path (/hearth)"),
    ({"name": "n", "public_url": "https://hearth.example.net:99999"}, "public_url",
     "invalid port"),
    ({"name": "n", "public_url": f"https://u:{PASSWORD}@hearth.example.net"}, "public_url",
     "must not contain user:password@"),
    ({"name": "n", "public_url": 8731}, "public_url", "must be text"),
])
def test_each_bad_option_is_named(raw: dict[str, Any], option: str, fragment: str) -> None:
    with pytest.raises(OptionsError) as err:
        parse_options(raw)
    assert err.value.option == option
    assert fragment in err.value.problem
    assert PASSWORD not in str(err.value)


def test_public_url_goes_into_the_node_settings() -> None:
    got = parse_options({"name": "n", "public_url": " https://hearth.example.net:8443 "})
    assert got.public_url == "https://hearth.example.net:8443"
    config = got.node_config("0.0.0.0", 8731)
    assert config.public_url == "https://hearth.example.net:8443"
    assert config.peer_url == "https://hearth.example.net:8443"
    assert parse_options({"name": "n", "public_url": ""}).public_url is None
    assert parse_options({"name": "n"}).node_config("0.0.0.0", 8731).public_url is None


def test_blank_relay_options_mean_no_relay() -> None:
    blank = {"relay_url": " ", "relay_username": "", "relay_password": None, "relay_ca": ""}
    assert parse_options({"name": "n", **blank}).relay is None


def test_options_json_must_be_an_object() -> None:
    assert parse_options_json('{"name": "n"}') == {"name": "n"}
    for text, fragment in (("{", "not valid JSON"), ("[]", "JSON object")):
        with pytest.raises(OptionsError, match=fragment):
            parse_options_json(text)


def test_env_vars_map_to_options() -> None:
    env = {"HEARTH_NAME": "No. 3", "HEARTH_CAPACITY": "1.5", "HEARTH_INPUT_ONLY": "true",
           "HEARTH_RELAY_URL": RELAY["relay_url"], "HEARTH_RELAY_USERNAME": "hearth-admin-9f0e",
           "HEARTH_RELAY_PASSWORD": PASSWORD, "HEARTH_PUBLIC_URL": "https://h.example",
           "PATH": "/bin"}
    got = parse_options(options_from_env(env))
    assert (got.name, got.capacity, got.input_only) == ("No. 3", 1.5, True)
    assert got.public_url == "https://h.example"
    assert got.relay is not None and got.relay.password == PASSWORD
    for text, expected in (("0", False), ("no", False), ("", False), ("ON", True)):
        assert parse_options({"name": "n", "input_only": text}).input_only is expected


def _pem(body: bytes) -> str:
    b64 = base64.b64encode(body).decode()
    lines = [b64[i:i + 64] for i in range(0, len(b64), 64)]
    return "\n".join(["-----BEGIN CERTIFICATE-----", *lines, "-----END CERTIFICATE-----"]) + "\n"


def test_pem_line_breaks_are_restored() -> None:
    one, two = _pem(bytes(range(200))), _pem(b"\x01" * 90)
    assert normalise_pem(one.replace("\n", " ")) == one
    assert normalise_pem((one + two).replace("\n", "")) == one + two
    assert normalise_pem(one) == one
    assert normalise_pem("garbage") == "garbage"
    relay = parse_options({"name": "n", **RELAY, "relay_ca": one.replace("\n", " ")}).relay
    assert relay is not None and relay.to_file() == {
        "url": RELAY["relay_url"], "ca": one,
        "admin": {"username": "hearth-admin-9f0e", "password": PASSWORD}}


def _config(**changes: Any) -> NodeConfig:
    base: dict[str, Any] = {"name": "No. 12", "listen_host": "0.0.0.0", "listen_port": 8731,
                            "public_url": None, "insecure_listen": True}
    return NodeConfig(**{**base, **changes})


def test_reconcile_applies_changes_before_joining() -> None:
    current = _config()
    wanted = _config(name="No. 12a", capacity=0.5, input_only=True,
                     public_url="https://hearth.example.net")
    out = reconcile(current, wanted, joined=False)
    assert out.config == wanted
    assert out.refused == []
    assert out.applied == ["name: 'No. 12' -> 'No. 12a'", "capacity: 1.0 -> 0.5",
                           "input_only: False -> True",
                           "public_url: None -> 'https://hearth.example.net'"]
    same = reconcile(current, _config(), joined=False)
    assert same.config is current and same.applied == same.refused == []


def test_reconcile_refuses_changes_after_joining_and_keeps_the_rest() -> None:
    current = _config(timing=_config().timing, capacity=1.5)
    wanted = _config(name="Other", capacity=1.0, input_only=True, listen_port=9000,
                     public_url="https://hearth.example.net")
    out = reconcile(current, wanted, joined=True)
    assert out.config == current
    assert out.applied == []
    assert [line.split(" changed")[0] for line in out.refused] == [
        "option name", "option capacity", "option input_only", "option public_url",
        "option listen"]
    # The founder changes capacities only in a shell; Home Assistant's members step is
    # read-only, so the line must not send the user there.
    assert ("Ask the founder to change it: they run 'mpc-backend member capacity' in a "
            "shell on their node (Home Assistant only lists the members)") in out.refused[1]
    assert "neighbourhood members" not in out.refused[1]
    assert "new node identity" in out.refused[2]
    assert "Set it back to nothing (unset it)" in out.refused[3]


def test_backoff_doubles_and_is_capped() -> None:
    assert backoff_delays(1, 2.0) == []
    assert backoff_delays(5, 2.0) == [2.0, 4.0, 8.0, 16.0]
    assert backoff_delays(9, 2.0)[-1] == 60.0


@pytest.fixture
def supervisor() -> Iterator[FakeSupervisor]:
    allow_loopback_sockets()
    with FakeSupervisor("app-token", hostname="a0d7b954-hearth-node") as fake:
        yield fake


def test_announce_sends_hostname_url_and_token(supervisor: FakeSupervisor) -> None:
    client = SupervisorClient(supervisor.url, "app-token")
    waits: list[float] = []
    supervisor.fail_next = 2
    assert announce_with_retry(client, 8731, "node-token", attempts=3, first_delay=0.5,
                               sleep=waits.append)
    assert waits == [0.5, 1.0]
    assert supervisor.messages["hearth"]["config"] == {
        "url": "http://a0d7b954-hearth-node:8731", "token": "node-token"}


def test_announce_gives_up_after_its_attempts(supervisor: FakeSupervisor,
                                              caplog: pytest.LogCaptureFixture) -> None:
    client = SupervisorClient(supervisor.url, "app-token")
    supervisor.fail_next = 5
    waits: list[float] = []
    assert not announce_with_retry(client, 8731, "node-token", attempts=3, first_delay=1,
                                   sleep=waits.append)
    assert waits == [1, 2]
    assert supervisor.announcements == []
    assert "discovery failed after 3 attempts" in caplog.text
    assert ("restart the app to try again (Home Assistant can then find it); the Hearth "
            "integration cannot be added by hand without the node's token") in caplog.text
    assert "node-token" not in caplog.text and "app-token" not in caplog.text


def test_announce_stops_when_the_node_stops(supervisor: FakeSupervisor) -> None:
    client = SupervisorClient(supervisor.url, "app-token")
    supervisor.fail_next = 5
    stop = threading.Event()
    assert not announce_with_retry(client, 8731, "t", attempts=5, first_delay=0.1,
                                   stop=stop, sleep=lambda _s: stop.set())
    assert len(supervisor.requests) == 1


def test_supervisor_errors_say_what_failed(supervisor: FakeSupervisor) -> None:
    with pytest.raises(SupervisorError, match=r"GET /addons/self/info: HTTP 401 Unauthorized"):
        SupervisorClient(supervisor.url, "wrong").self_hostname()
    supervisor.discovery = ("mqtt",)
    with pytest.raises(SupervisorError, match=r"HTTP 403 Apps must list services"):
        SupervisorClient(supervisor.url, "app-token").announce({"url": "u", "token": "t"})
    with pytest.raises(ValueError, match="http"):
        SupervisorClient("supervisor", "app-token")


def test_announce_withdraws_the_last_message_and_remembers_the_new_one(
        supervisor: FakeSupervisor, tmp_path: Path) -> None:
    client = SupervisorClient(supervisor.url, "app-token")
    state = tmp_path / "discovery.json"
    assert announce_with_retry(client, 8731, "node-token", attempts=1, first_delay=0,
                               state=state)
    first = supervisor.messages["hearth"]["uuid"]
    assert json.loads(state.read_text()) == {"uuid": first}
    assert stat.S_IMODE(state.stat().st_mode) == 0o600
    assert announce_with_retry(client, 8731, "node-token", attempts=1, first_delay=0,
                               state=state)
    second = supervisor.messages["hearth"]["uuid"]
    assert second != first
    assert json.loads(state.read_text()) == {"uuid": second}
    assert supervisor.events == [("added", first), ("removed", first), ("added", second)]
    assert list(tmp_path.iterdir()) == [state]  # no temp file left


def test_another_apps_message_is_not_withdrawn(supervisor: FakeSupervisor,
                                               tmp_path: Path) -> None:
    foreign = {"addon": "core_mosquitto", "uuid": "a" * 32, "service": "mqtt", "config": {}}
    supervisor.messages["mqtt"] = dict(foreign)
    state = tmp_path / "discovery.json"
    state.write_text(json.dumps({"uuid": foreign["uuid"]}))
    client = SupervisorClient(supervisor.url, "app-token")
    assert announce_with_retry(client, 8731, "t", attempts=1, first_delay=0, state=state)
    assert ("DELETE", f"/discovery/{foreign['uuid']}", 403) in supervisor.paths()
    assert supervisor.messages["mqtt"] == foreign
    assert json.loads(state.read_text()) == {"uuid": supervisor.messages["hearth"]["uuid"]}


@pytest.mark.parametrize("text", ["{not json", '{"uuid": "../addons/self/uninstall"}', "[]"])
def test_an_unusable_state_file_is_not_sent(supervisor: FakeSupervisor, tmp_path: Path,
                                            text: str) -> None:
    state = tmp_path / "discovery.json"
    state.write_text(text)
    client = SupervisorClient(supervisor.url, "app-token")
    assert announce_with_retry(client, 8731, "t", attempts=1, first_delay=0, state=state)
    assert [method for method, _, _ in supervisor.paths()] == ["GET", "POST"]
    assert json.loads(state.read_text()) == {"uuid": supervisor.messages["hearth"]["uuid"]}


def test_a_failed_withdrawal_is_retried(supervisor: FakeSupervisor, tmp_path: Path) -> None:
    client = SupervisorClient(supervisor.url, "app-token")
    assert client.announce({"url": "u", "token": "t"})
    old = supervisor.messages["hearth"]["uuid"]
    supervisor.fail_next = 1
    with pytest.raises(SupervisorError, match=r"DELETE /discovery/.*HTTP 503") as err:
        client.withdraw(old)
    assert err.value.status == 503
    assert client.withdraw(old) is True
    assert client.withdraw(old) is False  # 404: already gone
    assert supervisor.paths()[-3:] == [("DELETE", f"/discovery/{old}", 503),
                                       ("DELETE", f"/discovery/{old}", 200),
                                       ("DELETE", f"/discovery/{old}", 404)]


def test_an_unwritable_state_file_is_a_warning(supervisor: FakeSupervisor, tmp_path: Path,
                                               caplog: pytest.LogCaptureFixture) -> None:
    client = SupervisorClient(supervisor.url, "app-token")
    state = tmp_path / "missing-dir" / "discovery.json"
    assert announce_with_retry(client, 8731, "node-token", attempts=1, first_delay=0,
                               state=state)
    assert "the next start cannot withdraw discovery" in caplog.text
    assert "node-token" not in caplog.text
