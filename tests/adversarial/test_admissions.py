"""Admissions against modified nodes and strangers: real ``mpc-backend serve`` processes.

Three honest members that compute (house0 founded the street) and mallory, a
member that computes too. Only the founder admits households: mallory's own
admissions (for this federation, or naming another) are refused by every honest
member; a household that signs its shares with an id the founder never admitted
is refused by the committee; requests under made-up sender ids make an honest
member ask the founder at most once per catch-up interval, however many arrive; and
a member answering the founder's admission pushes with seqs that go back and forth
gets a bounded number of pages, while honest members still learn new households at
once.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Iterator

import aiohttp
import pytest

from mpc_backend.crypto import NodeKeys
from mpc_backend.node.directory import CATCH_UP_EVERY_S
from mpc_backend.node.peers import request_headers
from tests.backend.nodes import NodeProcess, households_known, join_household, wait_for

from .conftest import HONEST_TIMING, PERIOD, TASK_ARGS, Federation, elm_street

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def street(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Federation]:
    with elm_street(tmp_path_factory.mktemp("admissions"), HONEST_TIMING) as cluster:
        cluster.nodes[0].cli("task", "add", "--metric", "indoor temperature", "--id", "temp",
                             "--k", "3", "--t", "1", *TASK_ARGS)
        yield cluster


def test_admissions_a_member_signs_itself_are_refused(street: Federation) -> None:
    street.restart_mallory("forge_admissions")
    mallory = street.mallory
    wait_for(lambda: mallory.log_text().count("EVIL forge_admissions: pushed phantom") >= 3,
             20, what="mallory's pushes")
    assert "auth_failed" in mallory.log_text()  # every push refused outright
    for node in street.honest:
        assert households_known(node) == 0, node.name
        assert f"rejected admissions message from {mallory.node_id}" in node.log_text()


def test_shares_under_an_id_the_founder_never_admitted_are_refused(
    street: Federation,
) -> None:
    sneak = street.add("sneak", "--input-only", *HONEST_TIMING)
    sneak.patch = "shares_as_stranger"
    sneak.start()
    founder = street.honest[0]
    sneak.cli("join", founder.cli("invite", "--expires", "10m").stdout.strip())
    time.sleep(PERIOD - time.time() % PERIOD + 0.3)  # the task's first round, from its start
    proc = sneak.cli("contribute", "--task", "temp", "--value", "21.5", "--json", check=False)
    assert "EVIL shares_as_stranger" in sneak.log_text(), f"the patch never acted: {proc.stderr}"
    assert '"acknowledged_by": 3' not in proc.stdout
    stranger = sneak.log_text().split("signing shares as ")[1].split()[0]
    refused = [n for n in street.nodes[:4]
               if f"rejected shares message from {stranger}" in n.log_text()]
    assert refused, "no committee member saw (and refused) the stranger's shares"


async def _flood(target: NodeProcess, count: int) -> dict[int, int]:
    """``count`` share requests, each signed by a fresh key no one admitted."""
    statuses: dict[int, int] = {}
    body = b"{}"
    async with aiohttp.ClientSession() as http:
        async def one() -> None:
            headers = request_headers(NodeKeys.generate(), "/peer/v1/shares", body,
                                      time.time())
            async with http.post(f"{target.url}/peer/v1/shares", data=body,
                                 headers=headers) as resp:
                statuses[resp.status] = statuses.get(resp.status, 0) + 1

        await asyncio.gather(*(one() for _ in range(count)))
    return statuses


def test_unknown_senders_cannot_make_a_member_hammer_the_founder(street: Federation) -> None:
    target = street.honest[1]
    before = target.api("GET", "/status")[1]["load"]["admission_catch_ups"]
    started = time.monotonic()
    statuses = asyncio.run(_flood(target, 400))
    elapsed = time.monotonic() - started
    assert statuses == {403: 400}
    after = target.api("GET", "/status")[1]["load"]["admission_catch_ups"]
    assert 1 <= after - before <= math.floor(elapsed / CATCH_UP_EVERY_S) + 1, (after, elapsed)


def test_a_member_lying_about_its_admission_log_gets_bounded_pushes(
    street: Federation,
) -> None:
    founder, honest = street.honest[0], street.honest[1:]
    street.restart_mallory("lying_admission_acks")
    mallory = street.mallory

    def lies() -> int:
        return mallory.log_text().count("EVIL lying_admission_acks")

    for i in range(3):
        join_household(founder, f"bulk {i}")
    wait_for(lambda: lies() >= 2, 10, what="mallory's lying answers")
    time.sleep(4)
    # The first push, then one page per wake-up and backoff (0.5, 1, 2 s...): without the
    # bounds the founder resent the log to mallory hundreds of times a second, for ever.
    assert lies() <= 12, lies()
    # Meanwhile the honest members learn a new household by push, at once (no catch-up:
    # nobody unknown called them).
    known = households_known(founder)
    join_household(founder, "bulk 3")
    for node in honest:
        wait_for(lambda n=node: households_known(n) == known + 1, 3,
                 what=f"the new household on {node.name}")
    assert "answered a push of" in founder.log_text()
