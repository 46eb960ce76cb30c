"""Node settings: timing that cannot work is refused with the options to change."""

from __future__ import annotations

import pytest

from mpc_backend.node.config import ConfigError, NodeConfig, Timing


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
