"""benchmarks/committee_capture.py: exact capture odds agree with the real select_committee.

The simulations use fixed node ids and task id, so each check is deterministic;
the bound (Z standard errors around the exact value) is wide enough that a fair
selector passes and tight enough that a 20% capacity bias, or a selector that
ignores the round, fails (test_check_has_power).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
from collections.abc import Sequence
from fractions import Fraction

import pytest

from benchmarks.committee_capture import (
    MAX_CAPACITY,
    MIN_CAPACITY,
    compounded,
    hypergeom_pmf,
    main,
    pct,
    simulate,
    tail,
    weighted_pmf,
    wilson,
)
from mpc_backend.protocol.committee import Member, select_committee

Z = 4.5
TRIALS = 20000
TASK = "capture-test"


def ids(n: int) -> list[str]:
    return [hashlib.sha256(f"capture-test-{i}".encode()).hexdigest()[:32] for i in range(n)]


def max_z(counts: Sequence[int], pmf: Sequence[Fraction], trials: int) -> float:
    """Largest |observed - exact| / standard error over the tails P[X >= j], j >= 1."""
    worst = 0.0
    for j in range(1, len(pmf)):
        p0 = tail(pmf, j)
        freq = sum(counts[j:]) / trials
        if p0 in (0.0, 1.0):
            worst = max(worst, 0.0 if freq == p0 else math.inf)
        else:
            worst = max(worst, abs(freq - p0) / math.sqrt(p0 * (1 - p0) / trials))
    return worst


def brute_force_pmf(caps: Sequence[float], c: int, k: int) -> list[Fraction]:
    """Colluder-seat distribution by enumerating every ordered draw of k members
    (each draw proportional to capacity among those left); the first c collude."""
    w = [Fraction(x) for x in caps]
    pmf = [Fraction(0)] * (c + 1)
    for order in itertools.permutations(range(len(w)), k):
        p, left = Fraction(1), sum(w)
        for i in order:
            p *= w[i] / left
            left -= w[i]
        pmf[sum(i < c for i in order)] += p
    return pmf


# --- exact formulas -------------------------------------------------------------------


def test_hypergeometric_known_values() -> None:
    assert tail(hypergeom_pmf(10, 3, 5), 3) == pytest.approx(1 / 12)  # C(7,2)/C(10,5)
    assert tail(hypergeom_pmf(10, 2, 3), 2) == pytest.approx(1 / 15)  # C(8,1)/C(10,3)
    assert tail(hypergeom_pmf(5, 4, 3), 2) == 1.0  # one honest hub cannot fill 2 of 3 seats
    assert tail(hypergeom_pmf(50, 3, 7), 4) == 0.0  # c <= t: never
    for n, c, k in itertools.product(range(1, 12), range(6), range(1, 8)):
        if c <= n and k <= n:
            assert sum(hypergeom_pmf(n, c, k)) == 1


def test_weighted_with_equal_weights_is_hypergeometric() -> None:
    for n, c, k in itertools.product(range(1, 13), range(6), range(1, 8)):
        if c <= n and k <= n:
            assert weighted_pmf(n, c, k, 1.7, 1.7) == hypergeom_pmf(n, c, k)


@pytest.mark.parametrize(("n", "c", "k"), [(5, 2, 3), (6, 3, 3), (6, 2, 4), (7, 3, 5)])
def test_weighted_matches_enumeration_of_orders(n: int, c: int, k: int) -> None:
    caps = [MAX_CAPACITY] * c + [MIN_CAPACITY] * (n - c)
    assert weighted_pmf(n, c, k, MAX_CAPACITY, MIN_CAPACITY) == brute_force_pmf(caps, c, k)


def test_bounded_capacity_worst_case_is_the_corner() -> None:
    """No capacities in [MIN, MAX] give the colluders better odds than MAX vs MIN."""
    n, c, k = 6, 2, 3
    worst = tail(weighted_pmf(n, c, k, MAX_CAPACITY, MIN_CAPACITY), c)
    grid = (MIN_CAPACITY, 1.0, MAX_CAPACITY)
    for caps in itertools.product(grid, repeat=n):
        assert tail(brute_force_pmf(caps, c, k), c) <= worst
    assert worst == tail(brute_force_pmf([MAX_CAPACITY] * c + [MIN_CAPACITY] * (n - c), c, k), c)


def test_compounded_and_helpers() -> None:
    assert compounded(0.0, 288) == 0.0
    assert compounded(1.0, 288) == 1.0
    assert compounded(0.5, 2) == pytest.approx(0.75)
    assert compounded(0.3, 288) < 1.0  # never rounds up to certainty
    assert compounded(1 / 15, 288) == pytest.approx(1 - (14 / 15) ** 288)
    assert wilson(0, 100)[0] == 0.0
    assert wilson(100, 100)[1] == 1.0
    lo, hi = wilson(50, 100)
    assert lo < 0.5 < hi
    assert pct(1 - 1e-12) != "100%"
    assert pct(1e-12) != "0"


# --- the real select_committee --------------------------------------------------------


@pytest.mark.parametrize(("n", "c", "ks"), [(10, 3, (3, 5, 7)), (20, 2, (3, 5))])
def test_equal_capacity_select_committee_is_hypergeometric(
    n: int, c: int, ks: tuple[int, ...]
) -> None:
    hist = simulate(n, c, ks, TRIALS, 1.0, 1.0, node_ids=ids(n), task_id=TASK)
    for k in ks:
        assert max_z(hist[k], hypergeom_pmf(n, c, k), TRIALS) <= Z, k


@pytest.mark.parametrize(("n", "c", "ks"), [(10, 3, (3, 5, 7)), (20, 4, (3, 5, 7))])
def test_worst_case_select_committee_matches_weighted_exact(
    n: int, c: int, ks: tuple[int, ...]
) -> None:
    hist = simulate(n, c, ks, TRIALS, MAX_CAPACITY, MIN_CAPACITY, node_ids=ids(n), task_id=TASK)
    for k in ks:
        exact = weighted_pmf(n, c, k, MAX_CAPACITY, MIN_CAPACITY)
        assert max_z(hist[k], exact, TRIALS) <= Z, k


def test_check_has_power() -> None:
    """The bound rejects a selector that quietly favours the colluders, or ignores the round."""
    n, c, ks = 10, 3, (3, 5)
    colluders = set(ids(n)[:c])

    def favouring(members: Sequence[Member], task_id: str, round_id: int, k: int) -> list[str]:
        boosted = [
            Member(m.node_id, m.capacity * (1.2 if m.node_id in colluders else 1.0))
            for m in members
        ]
        return select_committee(boosted, task_id, round_id, k)

    def stale(members: Sequence[Member], task_id: str, round_id: int, k: int) -> list[str]:
        return select_committee(members, task_id, 0, k)

    for selector in (favouring, stale):
        hist = simulate(n, c, ks, TRIALS, 1.0, 1.0, select=selector, node_ids=ids(n),
                        task_id=TASK)
        assert all(max_z(hist[k], hypergeom_pmf(n, c, k), TRIALS) > Z for k in ks)


# --- the script -----------------------------------------------------------------------


def test_script_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--rounds", "300", "--sizes", "5", "10", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    rows = out["rows"]
    assert {(r["n"], r["c"], r["k"], r["t"]) for r in rows} >= {(10, 2, 3, 1), (10, 4, 7, 3)}
    assert all(r["c"] > r["t"] and r["k"] <= r["n"] for r in rows)
    assert all(r["sim_lo"] <= r["sim_worst"] <= r["sim_hi"] for r in rows)
    assert all(r["p_equal"] <= r["p_worst"] for r in rows)


def test_script_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--rounds", "200", "--sizes", "10"]) == 0
    out = capsys.readouterr().out
    assert "| 10 | 2 | 3 | 2 | 6.67% | 38.5% |" in out
    assert "t+1" in out and "How to read this" in out
