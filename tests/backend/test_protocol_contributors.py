"""The deterministic contributor-set rule and the check every member runs before answering."""

from __future__ import annotations

import itertools
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mpc_backend.protocol.contributors import (
    SetRefused,
    answering_members,
    check_contributor_set,
    contributor_set,
    senders_digest,
)

HONEST = frozenset(f"h{i}" for i in range(6))


def test_the_set_is_every_sender_named_by_t_plus_one_statements() -> None:
    held = {"a": frozenset("xyz"), "b": frozenset("xy"), "c": frozenset("yw")}
    assert contributor_set(held, 1) == ["x", "y"]
    assert contributor_set(held, 2) == ["y"]
    assert answering_members(held, ["x", "y"]) == ["a", "b"]


def test_digest_ignores_order_and_names_the_set() -> None:
    assert senders_digest(["b", "a"]) == senders_digest(["a", "b"])
    assert senders_digest(["a", "b"]) != senders_digest(["a", "b", "c"])


def test_a_lying_member_cannot_shrink_the_set_to_a_victim() -> None:
    """k = 3, t = 1: the attacker signs {victim, itself}; the honest member refuses."""
    held = {"honest": HONEST | {"att"}, "att": frozenset({"h0", "att"})}
    target = contributor_set(held, 1)
    assert target == ["att", "h0"]  # what the liar would like summed
    with pytest.raises(SetRefused, match="leaves out sender h1"):
        check_contributor_set("honest", held, target, k=3, t=1)


def test_silence_counts_as_holding_so_an_absent_member_cannot_help_a_liar() -> None:
    """k = 5, t = 2: two liars plus two silent members still cannot drop honest senders."""
    held = {"honest": HONEST, "l1": frozenset({"h0"}), "l2": frozenset({"h0"})}
    with pytest.raises(SetRefused, match="leaves out sender h1"):
        check_contributor_set("honest", held, contributor_set(held, 2), k=5, t=2)


def test_a_sender_provably_held_by_at_most_t_members_may_be_left_out() -> None:
    """A household whose shares reached only this member cannot be summed: leave it out."""
    held = {"a": HONEST | {"late"}, "b": HONEST, "c": HONEST}
    senders = contributor_set(held, 1)
    assert "late" not in senders
    check_contributor_set("a", held, senders, k=3, t=1)  # 2 of 3 statements lack it


def test_the_members_own_statement_and_t_plus_one_statements_are_required() -> None:
    held = {"a": HONEST, "b": HONEST}
    with pytest.raises(SetRefused, match="own held statement"):
        check_contributor_set("c", held, sorted(HONEST), k=3, t=1)
    with pytest.raises(SetRefused, match="at least t \\+ 1 = 3"):
        check_contributor_set("a", held, sorted(HONEST), k=5, t=2)


def test_a_member_cannot_sum_shares_it_does_not_hold_unless_only_checking() -> None:
    held = {"a": frozenset("xy"), "b": frozenset("xyz"), "c": frozenset("xyz")}
    with pytest.raises(SetRefused, match="holds no share from 1 sender"):
        check_contributor_set("a", held, ["x", "y", "z"], k=3, t=1)
    check_contributor_set("a", held, ["x", "y", "z"], k=3, t=1, must_hold=False)


@settings(max_examples=300, deadline=None)
@given(data=st.data(), k_t=st.sampled_from([(3, 1), (5, 2), (7, 3)]))
def test_no_coalition_of_t_liars_gets_an_honest_member_to_drop_an_honest_sender(
    data: st.DataObject, k_t: tuple[int, int]
) -> None:
    """Whatever t members sign and whichever statements a coordinator forwards, a set an
    honest member accepts holds every sender that it and at least t + 1 honest members hold.
    """
    k, t = k_t
    members = [f"m{i}" for i in range(k)]
    liars, honest = members[:t], members[t:]
    senders = [f"s{i}" for i in range(8)]
    truth = {m: frozenset(data.draw(st.sets(st.sampled_from(senders)))) for m in honest}
    lies = {m: frozenset(data.draw(st.sets(st.sampled_from(senders)))) for m in liars}
    statements = {**truth, **lies}
    me = data.draw(st.sampled_from(honest))
    forwarded = data.draw(st.sets(st.sampled_from(members))) | {me}
    held = {m: statements[m] for m in forwarded}
    target = contributor_set(held, t)
    try:
        check_contributor_set(me, held, target, k, t)
    except SetRefused:
        return
    for sender in truth[me]:
        if sum(sender in truth[m] for m in honest) >= t + 1:
            assert sender in target


def test_every_omission_rule_is_exercised_by_small_cases() -> None:
    """Exhaustive over three members: an accepted set always includes the honest pair's."""
    universe = ["p", "q", "r"]
    subsets = [frozenset(c) for n in range(4) for c in itertools.combinations(universe, n)]
    for liar in subsets:
        held = {"h1": frozenset(universe), "h2": frozenset(universe), "liar": liar}
        for forwarded in (("h1", "liar"), ("h1", "h2", "liar")):
            view = {m: held[m] for m in forwarded}
            target = contributor_set(view, 1)
            try:
                check_contributor_set("h1", view, target, k=3, t=1)
            except SetRefused:
                continue
            assert target == universe


def _reference_set(held: dict[str, frozenset[str]], t: int) -> list[str]:
    """The rule as stated: every sender counted over every statement."""
    counts = Counter(s for senders in held.values() for s in senders)
    return sorted(s for s, n in counts.items() if n >= t + 1)


@settings(max_examples=300, deadline=None)
@given(data=st.data(), k_t=st.sampled_from([(3, 1), (5, 2), (7, 3)]))
def test_the_set_and_its_check_match_counting_every_sender(
    data: st.DataObject, k_t: tuple[int, int]
) -> None:
    """The set-operation shortcuts give what counting each sender over each statement
    gives, and the check refuses exactly where the counted rule does."""
    k, t = k_t
    senders = [f"s{i}" for i in range(10)]
    members = data.draw(st.lists(st.sampled_from([f"m{i}" for i in range(k)]), min_size=1,
                                 unique=True))
    held = {m: frozenset(data.draw(st.sets(st.sampled_from(senders)))) for m in members}
    assert contributor_set(held, t) == _reference_set(held, t)
    me = members[0]
    asked = sorted(data.draw(st.sets(st.sampled_from(senders)))) if data.draw(st.booleans()) \
        else _reference_set(held, t)
    counts = Counter(s for h in held.values() for s in h)
    expected_ok = (len(held) >= t + 1 and asked == _reference_set(held, t)
                   and set(asked) <= held[me]
                   and all(len(held) - counts[s] >= k - t for s in held[me] - set(asked)))
    try:
        check_contributor_set(me, held, asked, k, t)
    except SetRefused:
        assert not expected_ok
    else:
        assert expected_ok
