"""Membership policy against modified nodes: real ``mpc-backend`` processes, built with the CLI.

A founder and two honest members; each joiner here declares what no honest node
would (a huge capacity, a URL with a path, a classical HPKE key) and must be
refused by the founder and left out of the roster, or is refused by ``init``
already. A member proposing too many tasks is refused the 17th.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.backend.conftest import _loopback_sockets  # noqa: F401 - autouse here too
from tests.backend.nodes import Cluster, NodeProcess, allow_loopback_sockets, cli, free_port

pytestmark = pytest.mark.slow

TASK = {"metric": "indoor temperature", "unit": "°C", "low": -20, "high": 40,
        "resolution": 0.1, "stats": ["count", "mean"], "period_s": 3600,
        "min_contributors": 3}


@pytest.fixture(scope="module")
def street(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    allow_loopback_sockets()
    cluster = Cluster(tmp_path_factory.mktemp("street"))
    try:
        for i in range(3):
            cluster.add(f"house{i}").start()
        cluster.federate("Elm Street")
        yield cluster
    finally:
        cluster.close()


def member_names(node: NodeProcess) -> list[str]:
    return [m["name"] for m in node.cli_json("status")["members"]]


def refused_join(street: Cluster, name: str, patch: str, **patch_args: object) -> str:
    """Start a node with ``patch``, let it join; return the joiner's error line."""
    node = street.add(name)
    node.patch, node.patch_args = patch, dict(patch_args)
    node.start()
    founder = street.nodes[0]
    proc = node.cli("join", founder.cli("invite", "--expires", "10m").stdout.strip(),
                    check=False)
    assert proc.returncode == 1, proc.stdout
    assert f"EVIL {patch}" in node.log_text(), "the patch never acted"
    assert name not in member_names(founder)
    assert f"refused a join from '{name}'" in founder.log_text()
    return proc.stderr.strip()


def test_init_refuses_a_huge_capacity(tmp_path: Path) -> None:
    proc = cli("init", "--data-dir", str(tmp_path / "greedy"), "--name", "greedy",
               "--listen", f"127.0.0.1:{free_port()}", "--capacity", "1e12", check=False)
    assert proc.returncode == 1
    assert "capacity 1e+12 is outside the allowed range 0.5 to 2" in proc.stderr


def test_a_join_declaring_a_huge_capacity_is_refused(street: Cluster) -> None:
    error = refused_join(street, "greedy", "declare_member", capacity=1e12)
    assert error.startswith("error: the founder refused the join: member greedy: capacity "
                            "1e+12 is outside the allowed range 0.5 to 2")


def test_a_joiner_cannot_give_itself_the_founders_top_capacity(street: Cluster) -> None:
    """2 is in range, but only the founder may raise a member above 1 (visibly, in the roster)."""
    error = refused_join(street, "eager", "declare_member", capacity=2.0)
    assert "a joining hub may declare a capacity of at most 1 (it declared 2)" in error


def test_init_and_the_founder_refuse_a_url_with_a_path_or_query(
    street: Cluster, tmp_path: Path
) -> None:
    proc = cli("init", "--data-dir", str(tmp_path / "pathy"), "--name", "pathy",
               "--listen", f"127.0.0.1:{free_port()}",
               "--public-url", "http://127.0.0.1:9/hearth?x=1", check=False)
    assert proc.returncode == 1 and "has a path (/hearth)" in proc.stderr
    port = free_port()
    error = refused_join(street, "pathy", "declare_member", url=f"http://127.0.0.1:{port}/p?q=1")
    assert "member pathy: URL" in error and "has a path (/p)" in error
    assert "use http://HOST[:PORT] or https://HOST[:PORT]" in error


def test_a_classical_hpke_joiner_is_refused_by_the_default_policy(street: Cluster) -> None:
    error = refused_join(street, "classical", "classical_hpke")
    assert "this federation requires the post-quantum HPKE suite MLKEM768-X25519" in error
    assert "cryptography >= 47" in error and "--allow-classical-hpke" in error


def test_the_seventeenth_task_from_one_member_is_refused(street: Cluster) -> None:
    member = street.nodes[1]
    for i in range(16):
        status, body = member.api("POST", "/tasks", {**TASK, "task_id": f"t{i}"})
        assert status == 201, body
    status, body = member.api("POST", "/tasks", {**TASK, "task_id": "t16"})
    assert status == 422 and body["error"]["code"] == "too_many_tasks"
    assert "house1 has already proposed 16 tasks" in body["error"]["message"]
    assert "cannot be removed yet" in body["error"]["message"]
    status = street.nodes[0].cli_json("status")
    assert len(status["tasks"]) == 16
