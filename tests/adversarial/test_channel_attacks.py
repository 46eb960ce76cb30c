"""Channels under attack: a member that is offered channels, and a household that has its own.

Mallory (``patches.channel_attacks``) sits on every committee of the task (k = 4 of four
members). Offered a channel by an honest household H, it forwards H's offer to the other
members and sends each a report of 40 in H's name over H's channel with mallory (the
secret it knows, keys derived for that member); at start it sends shares over its own
channel naming house0 as the sender, floods house1 with offers one by one and house2 with
a burst; it answers every share delivered over a channel with a wrong ack. The honest
members must refuse all of it, by code and without storing anything for it, and the
round releases exactly the honest households' statistics. The households must keep
mallory's seat pending and resend.
"""

from __future__ import annotations

import contextlib
import math
import re
import sqlite3
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pytest

from mpc_backend.storage.sqlite import DB_FILE_NAME
from tests.backend.nodes import NodeProcess, wait_for
from tests.relay_broker import TRANSPORTS

from .conftest import HONEST_TIMING, PERIOD, TASK_ARGS, Federation, elm_street, outcome

pytestmark = pytest.mark.slow

TASK = "chan"
HONEST = [19.0, 20.0, 21.0]
DONE = "EVIL channel_attacks: household attacks done"


@pytest.fixture(scope="module", params=TRANSPORTS)
def street(tmp_path_factory: pytest.TempPathFactory,
           request: pytest.FixtureRequest) -> Iterator[Federation]:
    root = tmp_path_factory.mktemp("channel-attacks")
    with elm_street(root, HONEST_TIMING, "channel_attacks", transport=request.param) as cluster:
        cluster.nodes[0].cli("task", "add", "--metric", "indoor temperature", "--id", TASK,
                             "--k", "4", "--t", "1", *TASK_ARGS)
        yield cluster


@pytest.fixture(scope="module")
def contributed(street: Federation) -> tuple[int, list[dict[str, Any]]]:
    """Mallory's household attacks done, the honest households contribute in one round: the
    second they contribute to (the first, sealed with HPKE, has them offer their channels)."""
    wait_for(lambda: DONE in street.mallory.log_text(), 30, what="mallory's household attacks")

    def contribute(node: NodeProcess, value: float) -> dict[str, Any]:
        status, answer = node.api("POST", "/readings", {"task": TASK, "value": value})
        assert status == 200, answer
        return answer

    for _ in range(2):
        now = time.time()
        time.sleep((math.floor(now / PERIOD) + 1) * PERIOD - now + 0.3)
        with ThreadPoolExecutor(max_workers=3) as pool:
            jobs = zip(street.honest, HONEST, strict=True)
            answers = list(pool.map(lambda job: contribute(*job), jobs))
        assert len({a["round"] for a in answers}) == 1, "contributions straddled a round"
    return answers[0]["round"], answers


def evil_lines(street: Federation, what: str) -> list[str]:
    return [line for line in street.mallory.log_text().splitlines()
            if f"EVIL channel_attacks: {what}" in line]


def rows(node: NodeProcess, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    with contextlib.closing(sqlite3.connect(node.data_dir / DB_FILE_NAME)) as db, db:
        return db.execute(sql, args).fetchall()


def test_the_round_releases_the_honest_readings(
    street: Federation, contributed: tuple[int, list[dict[str, Any]]]
) -> None:
    round_id, _ = contributed
    for node in street.honest:
        result = outcome(node, TASK, round_id)
        assert result["status"] == "released", result
        assert result["contributors"] == 3 and result["excluded"] == []
        assert result["statistics"]["mean"] == pytest.approx(np.mean(HONEST), abs=0.005)


def test_a_stolen_channel_does_not_speak_for_its_household(
    street: Federation, contributed: tuple[int, list[dict[str, Any]]]
) -> None:
    """Every honest household's channel with mallory, tried at each other member in that
    household's name: unknown there (403 unknown_channel), refused before anything is read."""
    tried = evil_lines(street, "shares in ")
    assert len(tried) == 3 * 2, tried  # each household's channel at the two other members
    for line in tried:
        sender, member, cid, answer = re.search(
            r"shares in (\w+)'s name to (\w+) over its channel (\w+): (.*)$", line).groups()
        if street.broker is None:  # over the relay the refusal is sealed to the household
            assert answer == "403 unknown_channel", line
        node = next(n for n in street.honest if n.name == member)
        assert (f"refused a request to /peer/v1/shares from {sender}: channel {cid} unknown "
                "or expired") in node.log_text()
        assert not rows(node, "SELECT 1 FROM channels WHERE channel = ?", cid)


def test_a_forwarded_offer_is_for_another_member(
    street: Federation, contributed: tuple[int, list[dict[str, Any]]]
) -> None:
    forwarded = evil_lines(street, "forwarded ")
    assert len(forwarded) == 3 * 2, forwarded
    for line in forwarded:
        cid, member, answer = re.search(r"of channel (\w+) to (\w+): (.*)$", line).groups()
        assert answer == "422 wrong_recipient", line
        node = next(n for n in street.honest if n.name == member)
        assert not rows(node, "SELECT 1 FROM channels WHERE channel = ?", cid)


def test_a_household_cannot_name_another_as_sender(street: Federation) -> None:
    wait_for(lambda: DONE in street.mallory.log_text(), 30, what="mallory's household attacks")
    (in_envelope,) = evil_lines(street, "own channel ")[:1]
    (in_header,) = evil_lines(street, "own channel ")[1:]
    # Its own channel and MAC, another's name in the envelope: the names differ.
    assert in_envelope.endswith(": 403 auth_failed"), in_envelope
    # Another's name in Hearth-Sender: no such channel of that household's.
    expected = "403 unknown_channel" if street.broker is None else "unreadable"
    assert expected in in_header, in_header
    victim = street.nodes[0]
    assert "but the request carrying it is signed by" in victim.log_text()


def test_offers_are_capped_per_sender(street: Federation) -> None:
    """One by one: eight live channels, then 429 too_many_channels."""
    wait_for(lambda: DONE in street.mallory.log_text(), 30, what="mallory's household attacks")
    answers = [line.rsplit(": ", 1)[1] for line in evil_lines(street, "flood offer to ")]
    assert answers == ["200"] * 8 + ["429 too_many_channels"] * 3, answers
    flooded = street.nodes[1]
    assert rows(flooded, "SELECT count(*) FROM channels WHERE direction = 'in' AND peer = ?",
                street.mallory.node_id) == [(8,)]


def test_concurrent_offers_stay_within_the_cap(street: Federation) -> None:
    """A burst of 24 offers at once: no more than 8 stored (without the per-sender lock,
    21-24 were)."""
    wait_for(lambda: DONE in street.mallory.log_text(), 30, what="mallory's household attacks")
    (burst,) = evil_lines(street, "burst of ")
    stored = rows(street.nodes[2], "SELECT count(*) FROM channels WHERE direction = 'in' "
                  "AND peer = ?", street.mallory.node_id)[0][0]
    assert stored <= 8, f"{burst}; {stored} stored"


def test_wrong_acks_keep_the_share_pending(
    street: Federation, contributed: tuple[int, list[dict[str, Any]]]
) -> None:
    """Each household's seat at mallory stays unacknowledged and is resent; the other seats
    are acknowledged over their channels."""
    round_id, answers = contributed
    mallory = street.mallory
    assert all(a["acknowledged_by"] == 3 for a in answers), answers
    wait_for(lambda: {"other_items", "signed", "bad_mac"} <= {
        line.rsplit(" ", 2)[1] for line in evil_lines(street, "answered ")}, 20,
        what="every kind of wrong ack")
    def seats(node: NodeProcess) -> dict[str, tuple[int, int]]:
        return {m: (a, n) for m, a, n in rows(
            node, "SELECT member, acked, attempts FROM deliveries WHERE task = ? AND round = ?",
            TASK, round_id)}

    for node in street.honest:
        wait_for(lambda node=node: seats(node)[mallory.node_id][1] >= 2, 20,
                 what=f"{node.name} resending to mallory")
        others = seats(node)
        acked, _ = others.pop(mallory.node_id)
        assert not acked
        assert all(a for a, _ in others.values()), others
        assert f"ignored an acknowledgement from {mallory.name}" in node.log_text()
