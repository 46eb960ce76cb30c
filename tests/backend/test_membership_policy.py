"""What the founder admits: bounded capacity, plain URLs, the HPKE suite policy, task caps.

A member may run a modified node, so each refusal here is driven by a join or a
proposal that the honest CLI would never send. Refused joins leave the roster
unchanged and do not use up the invite.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from mpc_backend.crypto import (
    NodeKeys,
    b64url_encode,
    canonical_json,
    join_proof,
    load_or_create_keys,
    parse_invite,
    sign_envelope,
)
from mpc_backend.crypto.sealing import SUITE_HYBRID, SUITE_X25519
from mpc_backend.node import federation
from mpc_backend.node.config import ConfigError
from mpc_backend.node.errors import BadRequest, Forbidden, NodeError, Unprocessable
from mpc_backend.node.roster import ROSTER_CONTEXT, MemberInfo
from tests.backend.conftest import TASK, FakeClock, LiveNode, start_node, stop_node
from tests.backend.test_api_local import call


async def join_request(
    founder: LiveNode, keys: NodeKeys, clock: FakeClock, secret: str | None = None,
    **fields: Any,
) -> dict[str, Any]:
    """A join envelope as a (possibly modified) node would send it; fields override its record."""
    if secret is None:
        secret = parse_invite((await founder.node.federation.invite(600))["token"]).secret
    member = {**MemberInfo.of_keys(keys, "stranger", None, 1.0, True).to_dict(), **fields}
    federation = founder.node.ctx.federation_id
    return sign_envelope(keys, "join", federation,
                         {**join_proof(secret, federation, member), "member": member}, now=clock())


async def test_a_join_declaring_a_huge_capacity_is_refused_and_logged(
    trio: list[LiveNode], clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    founder = trio[0]
    keys = NodeKeys.generate()
    secret = parse_invite((await founder.node.federation.invite(600))["token"]).secret
    version = founder.node.ctx.roster.version
    caplog.set_level(logging.WARNING, logger="mpc_backend.federation")
    with pytest.raises(Unprocessable) as err:
        await founder.node.federation.handle_join(
            await join_request(founder, keys, clock, secret, capacity=1e12), "test")
    assert (err.value.status, err.value.code) == (422, "bad_capacity")
    assert "outside the allowed range 0.5 to 2" in err.value.message
    assert f"'stranger' ({keys.node_id})" in caplog.text and "capacity 1e+12" in caplog.text
    assert founder.node.ctx.roster.version == version
    assert founder.node.ctx.member(keys.node_id) is None
    # The invite was not used up: the same joiner with an honest capacity gets in (as a
    # household that only contributes: by an admission, with no new roster version).
    answer = await founder.node.federation.handle_join(
        await join_request(founder, keys, clock, secret), "test")
    assert answer["version"] == version
    assert answer["admission"]["admission"]["member"]["node_id"] == keys.node_id
    assert founder.node.ctx.member(keys.node_id) is not None


async def test_a_join_read_on_its_way_cannot_admit_other_keys(
    trio: list[LiveNode], clock: FakeClock
) -> None:
    """Whoever sees a join in transit (a relay broker, a path without TLS) sees the invite
    key and its proof, never the secret: putting its own keys into the record fails, the
    invite stays unused, and the real joiner still gets in."""
    founder = trio[0]
    secret = parse_invite((await founder.node.federation.invite(600))["token"]).secret
    federation = founder.node.ctx.federation_id
    victim, thief = NodeKeys.generate(), NodeKeys.generate()
    seen = join_proof(secret, federation, MemberInfo.of_keys(
        victim, "victim", None, 1.0, True).to_dict())
    stolen = {**seen, "member": MemberInfo.of_keys(thief, "victim", None, 1.0, True).to_dict()}
    with pytest.raises(Forbidden) as err:
        await founder.node.federation.handle_join(
            sign_envelope(thief, "join", federation, stolen, now=clock()), "test")
    assert err.value.code == "invite_unknown"
    assert founder.node.ctx.member(thief.node_id) is None
    answer = await founder.node.federation.handle_join(
        await join_request(founder, victim, clock, secret, name="victim"), "test")
    assert answer["admission"]["admission"]["member"]["node_id"] == victim.node_id


@pytest.mark.parametrize("url", ["http://127.0.0.1:9/peer", "http://127.0.0.1:9?x=1",
                                 "http://me:pw@127.0.0.1:9"])
async def test_a_join_with_a_url_beyond_host_and_port_is_refused(
    trio: list[LiveNode], clock: FakeClock, url: str
) -> None:
    founder = trio[0]
    keys = NodeKeys.generate()
    with pytest.raises(BadRequest) as err:
        await founder.node.federation.handle_join(
            await join_request(founder, keys, clock, url=url, input_only=False), "test")
    assert err.value.status == 400 and err.value.field == "body.member"
    assert f"URL {url!r}" in err.value.message
    assert "use http://HOST[:PORT] or https://HOST[:PORT]" in err.value.message
    assert founder.node.ctx.roster.member(keys.node_id) is None


async def test_the_default_policy_refuses_a_classical_hpke_joiner(
    trio: list[LiveNode], clock: FakeClock
) -> None:
    founder = trio[0]
    assert founder.node.ctx.roster.hpke_policy == "hybrid"
    keys = NodeKeys.generate(SUITE_X25519)
    with pytest.raises(Unprocessable) as err:
        await founder.node.federation.handle_join(await join_request(founder, keys, clock), "test")
    assert (err.value.status, err.value.code) == (422, "weak_hpke_suite")
    for hint in (SUITE_HYBRID, "uses X25519", "cryptography >= 47", "--allow-classical-hpke"):
        assert hint in err.value.message
    assert founder.node.ctx.roster.member(keys.node_id) is None


async def classical_node(tmp_path: Path, name: str, clock: FakeClock) -> LiveNode:
    load_or_create_keys(tmp_path / name, hpke_suite=SUITE_X25519)
    return await start_node(tmp_path / name, name, clock)


async def test_a_federation_allowing_classical_hpke_admits_and_flags_such_members(
    tmp_path: Path, clock: FakeClock, http: aiohttp.ClientSession
) -> None:
    founder = await classical_node(tmp_path, "founder", clock)
    joiner = await classical_node(tmp_path, "joiner", clock)
    try:
        status, body = await call(http, founder, "POST", "/federation", {"name": "Elm"})
        assert status == 422 and body["error"]["code"] == "weak_hpke_suite"
        assert "--allow-classical-hpke" in body["error"]["message"]
        status, body = await call(http, founder, "POST", "/federation",
                                  {"name": "Elm", "allow_classical_hpke": "yes"})
        assert status == 400 and body["error"]["field"] == "allow_classical_hpke"
        status, body = await call(http, founder, "POST", "/federation",
                                  {"name": "Elm", "allow_classical_hpke": True})
        assert status == 201 and body["hpke_policy"] == "any"
        invite = await founder.node.federation.invite(600)
        roster = await joiner.node.federation.join(invite["token"])
        assert roster.hpke_policy == "any"
        assert [m.post_quantum for m in roster.members] == [False, False]
    finally:
        await stop_node(founder)
        await stop_node(joiner)


async def test_a_refused_join_reaches_the_joiner_with_the_founders_code(
    trio: list[LiveNode], tmp_path: Path, clock: FakeClock
) -> None:
    joiner = await classical_node(tmp_path, "weak", clock)
    try:
        invite = await trio[0].node.federation.invite(600)
        with pytest.raises(NodeError) as err:
            await joiner.node.federation.join(invite["token"])
        assert (err.value.status, err.value.code) == (422, "weak_hpke_suite")
        assert err.value.message.startswith("the founder refused the join: this federation "
                                            "requires the post-quantum HPKE suite")
        assert joiner.node.ctx.signed_roster is None
    finally:
        await stop_node(joiner)


async def test_the_founder_changes_a_capacity_for_later_rounds(
    trio: list[LiveNode], clock: FakeClock, http: aiohttp.ClientSession
) -> None:
    founder, member = trio[0], trio[1]
    version = founder.node.ctx.roster.version
    before = clock()
    status, body = await call(http, founder, "POST", f"/members/{member.node_id}/capacity",
                              {"capacity": 2})
    assert status == 200, body
    assert body == {"node_id": member.node_id, "name": "house1", "capacity": 2.0,
                    "roster_version": version + 1}
    changed = founder.node.ctx.roster.member(member.node_id)
    assert changed is not None and changed.capacity == 2.0
    assert changed.capacity_at(before - 1) == 1.0  # rounds already running keep theirs
    for _ in range(100):  # pushed to every member
        if all(live.node.ctx.roster.version == version + 1 for live in trio):
            break
        await asyncio.sleep(0.02)
    assert trio[2].node.ctx.roster.member(member.node_id).capacity == 2.0  # type: ignore[union-attr]
    status, body = await call(http, founder, "GET", "/status")
    assert {m["name"]: m["capacity"] for m in body["members"]}["house1"] == 2.0
    # By name; the same value again publishes nothing new.
    status, body = await call(http, founder, "POST", "/members/house1/capacity",
                              {"capacity": 2.0})
    assert status == 200 and body["roster_version"] == version + 1


@pytest.mark.parametrize(
    ("who", "path", "body", "status", "code"),
    [
        (1, "/members/{id}/capacity", {"capacity": 1.5}, 403, "not_founder"),
        (0, "/members/{id}/capacity", {"capacity": 1e12}, 422, "bad_capacity"),
        (0, "/members/{id}/capacity", {"capacity": 0.2}, 422, "bad_capacity"),
        (0, "/members/{id}/capacity", {"capacity": "2"}, 400, "bad_request"),
        (0, "/members/{id}/capacity", {"capacity": True}, 400, "bad_request"),
        (0, "/members/{id}/capacity", {}, 400, "bad_request"),
        (0, "/members/nobody/capacity", {"capacity": 1.5}, 404, "unknown_member"),
    ],
)
async def test_capacity_changes_that_are_refused(
    trio: list[LiveNode], http: aiohttp.ClientSession, who: int, path: str,
    body: dict[str, Any], status: int, code: str,
) -> None:
    version = trio[0].node.ctx.roster.version
    got, answer = await call(http, trio[who], "POST", path.format(id=trio[2].node_id), body)
    assert (got, answer["error"]["code"]) == (status, code), answer
    if code == "not_founder":
        assert answer["error"]["message"] == (
            "only the founder (house0) can change capacities in this version")
    if code == "bad_capacity":
        assert "allowed range 0.5 to 2" in answer["error"]["message"]
    assert trio[0].node.ctx.roster.version == version


async def test_a_name_two_members_share_must_be_given_as_a_node_id(
    trio: list[LiveNode], clock: FakeClock, http: aiohttp.ClientSession
) -> None:
    founder = trio[0]
    twin = NodeKeys.generate()
    await founder.node.federation.handle_join(
        await join_request(founder, twin, clock, name="house2", input_only=False,
                           url="http://127.0.0.1:9"), "test")
    status, body = await call(http, founder, "POST", "/members/house2/capacity",
                              {"capacity": 1.5})
    assert status == 400 and body["error"]["code"] == "ambiguous_member"
    assert "give the node id" in body["error"]["message"]


async def test_tasks_are_capped_per_proposer_and_per_federation(
    trio: list[LiveNode], monkeypatch: pytest.MonkeyPatch
) -> None:
    proposer = trio[1].node.federation  # it proposed "temp" already
    for i in range(federation.MAX_TASKS_PER_PROPOSER - 1):
        await proposer.propose_task({**TASK, "task_id": f"t{i}"})
    with pytest.raises(NodeError) as err:
        await proposer.propose_task({**TASK, "task_id": "one_too_many"})
    assert (err.value.status, err.value.code) == (422, "too_many_tasks")
    assert "house1 has already proposed 16 tasks" in err.value.message
    assert "cannot be removed yet" in err.value.message
    await proposer.propose_task(dict(TASK))  # proposing an existing task again is fine
    assert trio[0].node.ctx.roster.task("one_too_many") is None

    monkeypatch.setattr(federation, "MAX_TASKS", len(trio[0].node.ctx.roster.tasks))
    with pytest.raises(Unprocessable) as err:
        await trio[0].node.federation.propose_task({**TASK, "task_id": "founders"})
    assert err.value.code == "too_many_tasks"
    assert f"already has {federation.MAX_TASKS} tasks" in err.value.message


async def test_a_stored_roster_this_version_refuses_stops_the_node_with_a_reason(
    trio: list[LiveNode]
) -> None:
    """E.g. a federation whose task allowed two contributors, from before the policy."""
    ctx = trio[0].node.ctx
    old = ctx.signed_roster.wire()["roster"]  # type: ignore[union-attr]
    old = {**old, "version": old["version"] + 1,
           "tasks": [{**t, "spec": {**t["spec"], "min_contributors": 2}} for t in old["tasks"]]}
    sig = ctx.keys.sign(ROSTER_CONTEXT + canonical_json(old))
    await ctx.storage.put_roster(old["version"], {"roster": old, "sig": b64url_encode(sig)})
    with pytest.raises(ConfigError) as err:
        await trio[0].node.federation.load()
    assert "is not acceptable to this version" in str(err.value)
    assert "min_contributors must be at least 3" in str(err.value)
    assert "move the data dir aside" in str(err.value)
