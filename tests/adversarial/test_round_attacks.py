"""A committee member attacks the round close; the honest members' result must not move.

Each test restarts ``mallory`` (a member, on the committee of the attacked
round) with one patched function, lets every household contribute known
values, and checks what the honest members end with: the exact statistics over
every contributor (or a visible failure where that is the only safe outcome),
and the attack recorded against mallory in their ``status``.
"""

from __future__ import annotations

import re
import time

import numpy as np
import pytest

from .conftest import (
    Federation,
    contribute_where_mallory_sits,
    outcome,
    reports_about,
)

pytestmark = pytest.mark.slow

VALUES = [20.51, 21.27, 19.73, 22.09]  # houses 0-2 and mallory's own honest reading


def assert_exact(result: dict[str, object]) -> None:
    """Released over all four households, equal to numpy's statistics on the readings."""
    assert result["status"] == "released", result
    assert result["contributors"] == len(VALUES)
    stats = result["statistics"]
    assert isinstance(stats, dict)
    assert stats["count"] == len(VALUES)
    assert stats["mean"] == pytest.approx(np.mean(VALUES), abs=0.005)
    assert stats["stddev"] == pytest.approx(np.std(VALUES), abs=0.01)
    assert len(result["signed_by"]) >= 2  # type: ignore[arg-type]


def mallory_logged(federation: Federation, line: str, timeout: float = 30) -> None:
    """Wait for ``line`` in mallory's log: its attack may still be finishing after the
    honest members have settled the round. Fails naming the line if it never comes."""
    deadline = time.monotonic() + timeout
    while line not in (log := federation.mallory.log_text()):
        assert time.monotonic() < deadline, f"mallory never logged {line!r}: {log[-2000:]}"
        time.sleep(0.2)


def test_a_coordinator_cannot_choose_the_contributor_set(federation: Federation) -> None:
    """Mallory signs a held statement naming two victims and itself, forwards it with one
    honest statement so the rule yields exactly {victim, victim, mallory}, commits to that
    set itself and asks for partial sums before anyone else closes.

    The honest members refuse and name mallory. Mallory's own commitment to its set then
    stops them releasing theirs (they cannot tell it from an honest member's that missed
    deliveries, and two released sums would tell a household's reading), so the round
    fails visibly: no statistic over any set but all four households is ever released.
    """
    federation.restart_mallory("capture_set")
    round_id, committee = contribute_where_mallory_sits(federation, "capture", VALUES)
    honest_seats = [n for n in federation.honest if n.node_id in committee]
    for node in federation.honest:
        result = outcome(node, "capture", round_id)
        if result["status"] != "failed":
            assert_exact(result)
        assert result["statistics"] is None or result["contributors"] == len(VALUES)
    mallory_logged(federation, f"EVIL capture_set: capture round {round_id}: forwarding 2 of")
    # Mallory forwarded one honest statement: that member was asked, refused and named it.
    refused = [n for n in honest_seats
               if reports_about(n, federation.mallory.node_id).get("contributor_set_refused")]
    assert refused, "no honest committee member recorded the refused set"
    assert all("misbehaviour by member mallory" in n.log_text() for n in refused)


def test_stalling_cannot_extend_a_round_past_its_deadline(federation: Federation) -> None:
    """Mallory refreshes a coordinator's claim every half second and never closes. Each
    claim is honoured once, so the honest seats close in their turn and release."""
    federation.restart_mallory("stall")
    round_id, _ = contribute_where_mallory_sits(federation, "stall", VALUES)
    for node in federation.honest:
        result = outcome(node, "stall", round_id)
        assert_exact(result)
    mallory_logged(federation, f"EVIL stall: refreshed claims on stall round {round_id}")


def test_a_forged_result_is_refused_and_the_real_one_released(federation: Federation) -> None:
    """Mallory pushes "40 contributors, mean 35.0" signed by itself for the ended round, the
    open one and one three rounds ahead, and asks the others to co-sign a doctored document.
    Nobody stores or signs it; the ended round still releases the real statistics."""
    federation.restart_mallory("forge_results")
    round_id, _ = contribute_where_mallory_sits(federation, "forge", VALUES)
    for node in federation.honest:
        assert_exact(outcome(node, "forge", round_id))
        rounds_stored = {r["round"] for r in node.cli_json("results", "--task", "forge",
                                                            "--limit", "50")["results"]}
        assert round_id + 4 not in rounds_stored
        kinds = reports_about(node, federation.mallory.node_id)
        assert kinds.get("forged_result", 0) >= 3, (node.name, kinds)
    mallory_logged(federation, f"EVIL forge_results: forge round {round_id}: 0 member(s) co-signed")


def test_one_randomness_per_round_so_no_report_is_verified_twice(
    federation: Federation,
) -> None:
    """Before the honest close, mallory asks each other committee member to reveal its seed
    for a different two-statement set and to verify under it. The first that is asked
    answers; every later one sees that member's binding to another set and refuses, so no
    report's verifier message exists under two randomnesses (which would tell its reading).
    The honest close then cannot gather t + 1 verifiers either: the round fails visibly."""
    federation.restart_mallory("two_randomness")
    round_id, committee = contribute_where_mallory_sits(federation, "split", VALUES)
    honest_seats = [n for n in federation.honest if n.node_id in committee]
    for node in federation.honest:
        result = outcome(node, "split", round_id)
        assert result["status"] == "failed", result
    mallory_logged(federation, f"EVIL two_randomness: split round {round_id}: verifier shares "
                               "from 1 of 2 members")
    assert any("revealed its verification seed for another set" in n.log_text()
               for n in honest_seats)


def test_a_lying_verifier_cannot_shrink_the_set_to_a_victim(federation: Federation) -> None:
    """Mallory, a committee member, misreports its verifier shares for every report but one
    honest household's and its own, so that the others look inconsistent and leave the set,
    leaving a victim with mallory. More than one report that cannot be pinned on its
    household is never left out: no result over a shrunk set is released anywhere."""
    federation.restart_mallory("lying_verifier")
    round_id, _ = contribute_where_mallory_sits(federation, "shrink", VALUES)
    for node in federation.honest:
        result = outcome(node, "shrink", round_id)
        assert result["status"] == "failed", result
        assert "cannot be pinned on their households" in (result["reason"] or ""), result
    lied = re.findall(r"EVIL lying_verifier: misreported (\d) of 4 reports",
                      federation.mallory.log_text())
    assert lied and int(lied[0]) >= 2, "the lie was not told for two honest households"
