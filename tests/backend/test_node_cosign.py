"""What a committee member checks before co-signing a released result (pure functions)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import pytest

from mpc_backend.arith import FieldRNG, shamir_share
from mpc_backend.crypto import NodeKeys, b64url_encode, sign_envelope
from mpc_backend.node.cosign import check_released, reconstruct_checked
from mpc_backend.node.roster import MemberInfo
from mpc_backend.node.wire import pack_elements
from mpc_backend.protocol import TaskSpec, decode_aggregate, encode_report, vector_length
from mpc_backend.protocol.contributors import senders_digest
from mpc_backend.storage import RoundCommit

FED, NOW, ROUND = "f" * 32, 1_800_000_000.0, 7
SPEC = TaskSpec.from_dict({
    "task_id": "temp", "metric": "temp", "low": 0, "high": 40, "resolution": 0.5,
    "stats": ["count", "mean"], "period_s": 60, "min_contributors": 3, "k": 3, "t": 1})
KEYS = [NodeKeys.generate() for _ in range(3)]
COMMITTEE = [MemberInfo.of_keys(k, f"hub{i}", f"http://127.0.0.1:{9000 + i}", 1.0, False)
             for i, k in enumerate(KEYS)]
SENDERS = sorted(["a" * 32, "b" * 32, "c" * 32])
VALUES = [20.0, 21.5, 25.0]


def partials(values: list[float] = VALUES) -> list[np.ndarray]:
    """Each seat's partial sum: the sum of its shares of every report."""
    rng = FieldRNG()
    shares = [shamir_share(encode_report(SPEC, v), 1, 3, rng) for v in values]
    length = vector_length(SPEC)
    return [np.array([sum(int(s[seat][i]) for s in shares) % (2**61 - 1) for i in range(length)],
                     dtype=np.uint64) for seat in range(3)]


PARTIALS = partials()


def evidence(values: list[np.ndarray], seats: list[int]) -> dict[str, Any]:
    return {str(seat): sign_envelope(
        KEYS[seat], "round-partial-reply", FED,
        {"task": "temp", "round": ROUND, "senders_digest": senders_digest(SENDERS),
         "dealers": [], "partial": b64url_encode(pack_elements(values[seat]))}, now=NOW)
        for seat in seats}


def doc(statistics: dict[str, Any] | None = None, contributors: int = 3,
        values: list[np.ndarray] = PARTIALS) -> dict[str, Any]:
    if statistics is None:
        total = reconstruct_checked({0: values[0], 1: values[1]}, 1)
        assert total is not None
        statistics = decode_aggregate(SPEC, total, noisy=False)
    return {"senders_digest": senders_digest(SENDERS), "contributors": contributors,
            "dealers": [], "excluded": [], "statistics": statistics}


def commit(seat: int, values: list[np.ndarray] = PARTIALS) -> RoundCommit:
    return RoundCommit("temp", ROUND, tuple(SENDERS), pack_elements(values[seat]), "x", NOW)


def check(document: dict[str, Any], proof: dict[str, Any], me: int = 1,
          required: tuple[int, ...] = (), values: list[np.ndarray] = PARTIALS) -> None:
    check_released(SPEC, COMMITTEE, KEYS[me].node_id, commit(me, values), document, proof,
                   FED, NOW, required)


def test_the_honest_result_is_signed_and_equals_the_plaintext_mean() -> None:
    document = doc()
    assert document["statistics"]["mean"] == pytest.approx(np.mean(VALUES))
    check(document, evidence(PARTIALS, [0, 1]))
    check(document, evidence(PARTIALS, [0, 1, 2]), required=(2,))


def test_doctored_statistics_are_refused() -> None:
    forged = doc({**doc()["statistics"], "mean": 35.0})
    with pytest.raises(ValueError, match="not what the partial sums reconstruct"):
        check(forged, evidence(PARTIALS, [0, 1]))


def test_the_signers_own_partial_must_be_used() -> None:
    with pytest.raises(ValueError, match="own partial sum is not among those used"):
        check(doc(), evidence(PARTIALS, [0, 2]), me=1)


def test_a_reachable_member_holding_the_set_cannot_be_left_out() -> None:
    with pytest.raises(ValueError, match=r"seat\(s\) \[2\]"):
        check(doc(), evidence(PARTIALS, [0, 1]), required=(2,))


def test_a_partial_off_the_polynomial_is_caught_by_an_extra_one() -> None:
    bent = [p.copy() for p in PARTIALS]
    bent[0][1] = (int(bent[0][1]) + 1) % (2**61 - 1)
    with pytest.raises(ValueError, match="do not lie on one polynomial"):
        check(doc(), evidence(bent, [0, 1, 2]))


def test_another_contributor_set_or_count_is_refused() -> None:
    """Or other DP noise dealers, or other excluded reports than this member committed with."""
    with pytest.raises(ValueError, match="over another contributor set"):
        check(doc(contributors=4), evidence(PARTIALS, [0, 1]))
    with pytest.raises(ValueError, match="other DP noise dealers"):
        check({**doc(), "dealers": ["x"]}, evidence(PARTIALS, [0, 1]))
    blamed = [{"household": "d" * 32, "verdict": "invalid"}]
    with pytest.raises(ValueError, match="other excluded reports"):
        check({**doc(), "excluded": blamed}, evidence(PARTIALS, [0, 1]))
    # The same verdict this member committed with is what it signs.
    judged = replace(commit(1), excluded=(("d" * 32, "invalid"),))
    check_released(SPEC, COMMITTEE, KEYS[1].node_id, judged, {**doc(), "excluded": blamed},
                   evidence(PARTIALS, [0, 1]), FED, NOW, ())
    with pytest.raises(ValueError, match="other excluded reports"):
        check_released(SPEC, COMMITTEE, KEYS[1].node_id, judged, doc(),
                       evidence(PARTIALS, [0, 1]), FED, NOW, ())


def test_a_partial_signed_by_someone_else_is_refused() -> None:
    proof = evidence(PARTIALS, [0, 1])
    proof["0"] = sign_envelope(KEYS[2], "round-partial-reply", FED, proof["0"]["body"], now=NOW)
    with pytest.raises(ValueError, match="partial sum of hub0 is not authentic"):
        check(doc(), proof)


def test_a_total_that_counts_other_than_the_contributors_is_refused() -> None:
    """Three senders named, but the shares add up to two reports (a doubled or missing one)."""
    two = partials([20.0, 21.5])
    with pytest.raises(ValueError, match="count is not the number of contributors"):
        check(doc(values=two), evidence(two, [0, 1]), values=two)
