"""Node settings: timing, capacity and URLs that cannot work are refused with what to change."""

from __future__ import annotations

import pytest

from mpc_backend.node.config import MAX_CAPACITY, MIN_CAPACITY, ConfigError, NodeConfig, Timing


def test_takeover_must_outlast_a_peer_call_chain_to_a_dead_member() -> None:
    # 3 attempts x 5 s + 0.25 s + 0.5 s backoff = 15.75 s of waiting on one dead member.
    with pytest.raises(ConfigError) as err:
        Timing(takeover_s=10.0, peer_timeout_s=5.0, peer_attempts=3, backoff_s=0.25)
    message = str(err.value)
    for option in ("takeover_s", "--takeover", "peer_timeout_s", "peer_attempts", "15.75 s"):
        assert option in message
    with pytest.raises(ConfigError, match=r"= 15\.75 s"):
        Timing(takeover_s=15.75, peer_timeout_s=5.0, peer_attempts=3, backoff_s=0.25)
    assert Timing(takeover_s=15.8, peer_timeout_s=5.0, peer_attempts=3).takeover_s == 15.8
    assert Timing(takeover_s=2.0, peer_timeout_s=1.0, peer_attempts=1).peer_call_chain_s == 1.0
    defaults = Timing()
    assert defaults.takeover_s > defaults.peer_call_chain_s


def test_settings_file_keeps_only_timing_the_operator_chose() -> None:
    config = NodeConfig(name="h", listen_host="127.0.0.1", listen_port=8731, public_url=None,
                        timing=Timing(grace_s=2.0))
    data = config.to_dict()
    assert data["timing"] == {"grace_s": 2.0}
    assert NodeConfig.from_dict(data) == config
    with pytest.raises(ConfigError, match="takeover_s"):
        NodeConfig.from_dict({**data, "timing": {"takeover_s": 3.0}})


@pytest.mark.parametrize("capacity", [1e12, 2.5, 0.1, 0.0, -1.0])
def test_capacity_outside_the_bounds_is_refused_with_its_meaning(capacity: float) -> None:
    with pytest.raises(ConfigError) as err:
        NodeConfig(name="h", listen_host="127.0.0.1", listen_port=8731, public_url=None,
                   capacity=capacity)
    message = str(err.value)
    assert "outside the allowed range 0.5 to 2" in message
    assert "hint of how much committee work" in message and "--input-only" in message
    for capacity_ok in (MIN_CAPACITY, MAX_CAPACITY):
        NodeConfig(name="h", listen_host="127.0.0.1", listen_port=8731, public_url=None,
                   capacity=capacity_ok)


@pytest.mark.parametrize(
    ("url", "problem"),
    [("http://hub.lan:8731/hearth", "has a path"), ("http://hub.lan:8731?a=b", "has a query"),
     ("https://me:pw@hub.lan", "carries a user name or password"),
     ("hub.lan:8731", "is not an http or https URL")],
)
def test_public_url_is_scheme_host_and_port_only(url: str, problem: str) -> None:
    with pytest.raises(ConfigError) as err:
        NodeConfig(name="h", listen_host="127.0.0.1", listen_port=8731, public_url=url)
    assert str(err.value).startswith(f"public URL (--public-url) {url!r} {problem}")
    assert "use http://HOST[:PORT] or https://HOST[:PORT]" in str(err.value)
    config = NodeConfig(name="h", listen_host="127.0.0.1", listen_port=8731,
                        public_url="https://hub.lan:8443/")
    assert config.peer_url == "https://hub.lan:8443"


def test_settings_file_with_a_bad_capacity_says_so() -> None:
    data = NodeConfig(name="h", listen_host="127.0.0.1", listen_port=8731,
                      public_url=None).to_dict()
    with pytest.raises(ConfigError, match="capacity 1000 is outside"):
        NodeConfig.from_dict({**data, "capacity": 1000})
