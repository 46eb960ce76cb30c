"""Validity proofs (protocol.validity): completeness, soundness, zero knowledge, randomness.

Independent truth: the reference layout, prover and verifier below are written from the
module's docstring in plain Python integers mod 2^61 - 1, with the naive Lagrange product
formula (not the module's factorial weights or its numpy kernels). A dishonest household
is modelled by running the reference prover honestly on an invalid input, or by lying
about gadget outputs; every such report must be judged invalid, every honest one valid.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mpc_backend.arith import FieldRNG, P, shamir_reconstruct, shamir_share
from mpc_backend.protocol import TaskSpec, encode_report, validity
from mpc_backend.protocol.validity import (
    INCONSISTENT,
    INVALID,
    UNCHECKED,
    VALID,
    VERIFIER_WIDTH,
    circuit,
    joint_seed,
    judge,
    prove,
    query,
    shared_length,
    verifier_shares,
)
from tests.backend import arith_reference as ref

PRIME = 2**61 - 1
ALL_STATS = ["count", "sum", "mean", "variance", "stddev", "histogram", "quantiles"]
SCHEMES = [(1, 3), (2, 5)]  # (t, k)
SEEDS = st.binary(min_size=32, max_size=32)


def make_spec(
    low: float, high: float, resolution: float, stats: list[str], buckets: Sequence[float] = ()
) -> TaskSpec:
    """A task over [low, high] at ``resolution`` computing ``stats``."""
    return TaskSpec.from_dict({
        "metric": "reading", "low": low, "high": high, "resolution": resolution,
        "stats": stats, "buckets": list(buckets), "period_s": 60, "min_contributors": 3,
    })


SPECS: dict[str, TaskSpec] = {
    "count": make_spec(0, 10, 1, ["count"]),  # no gadget call at all
    "sum": make_spec(0, 100, 0.5, ["sum"]),  # Q = 200: B = 8, offset 55
    "mean_stddev": make_spec(-20, 40, 0.1, ["mean", "stddev"]),  # Q = 600: B = 10
    "histogram": make_spec(0, 50, 1, ["histogram"], [10, 20, 35]),
    "all": make_spec(0, 250, 0.5, ALL_STATS, [12, 35.5, 55.5, 150.5]),  # Q = 500
    "pow2": make_spec(0, 255, 1, ["sum", "variance", "histogram"], [64, 128]),  # offset 0
    "tiny": make_spec(0, 2, 1, ["variance"]),  # Q = 2: B = 2, offset 1
}


# -- reference layout, prover and verifier --------------------------------------------

@dataclass(frozen=True)
class Layout:
    """Positions in report || witness || [seed, p(0..2M), mask], from the docstring."""

    levels: int  # Q
    q: int | None
    q2: int | None
    buckets: tuple[int, ...]
    bits: int  # B, smallest with 2^B > Q
    offset: int  # 2^B - 1 - Q
    first: tuple[int, ...]  # bits of q
    second: tuple[int, ...]  # bits of q + offset (only if offset != 0)
    calls: tuple[int, ...]  # element squared by gadget call 1..M
    proof: int  # index of the seed
    count: int = 0

    @property
    def m(self) -> int:
        return len(self.calls)

    @property
    def length(self) -> int:
        return self.proof + 2 * self.m + 3

    @property
    def mask(self) -> int:
        return self.length - 1

    def p(self, k: int) -> int:
        """Index of the proof's p(k)."""
        return self.proof + 1 + k


@cache
def layout(spec: TaskSpec) -> Layout:
    """The reference layout of ``spec``'s shared vector."""
    levels = round((spec.high - spec.low) / spec.resolution)
    stats, pos = set(spec.stats), 1
    q = q2 = None
    if stats & {"sum", "mean", "variance", "stddev"}:
        q, pos = pos, pos + 1
    if stats & {"variance", "stddev"}:
        q2, pos = pos, pos + 1
    buckets: tuple[int, ...] = ()
    if stats & {"histogram", "quantiles"}:
        buckets = tuple(range(pos, pos + len(spec.buckets) + 1))
        pos += len(buckets)
    bits = offset = 0
    if q is not None:
        while (1 << bits) <= levels:
            bits += 1
        offset = (1 << bits) - 1 - levels
    first = tuple(range(pos, pos + bits))
    second = tuple(range(pos + bits, pos + 2 * bits)) if offset else ()
    calls = (*first, *second, *buckets, *((q,) if q2 is not None else ()))
    proof = pos + len(first) + len(second)
    return Layout(levels, q, q2, buckets, bits, offset, first, second, calls, proof)


def to_bits(value: int, width: int) -> list[int]:
    """The low ``width`` bits of ``value``, least significant first (truncating)."""
    return [(value >> i) & 1 for i in range(width)]


def bucket_of(spec: TaskSpec, q: int) -> int:
    """Bin j holds [edge_{j-1}, edge_j) in steps: the number of edges at or below q."""
    steps = [round((edge - spec.low) / spec.resolution) for edge in spec.buckets]
    return sum(step <= q for step in steps)


def make_input(spec: TaskSpec, q: int, bucket: int | None = None) -> list[int]:
    """report || witness for level q (any int, reduced mod P where stored), built by hand;
    witness bits are q's and (q + offset)'s low B bits, so out-of-range q gets wrong ones."""
    lay = layout(spec)
    x = [0] * lay.proof
    x[lay.count] = 1
    if lay.q is not None:
        x[lay.q] = q % PRIME
        x[lay.first[0] : lay.first[-1] + 1] = to_bits(q, lay.bits)
        if lay.offset:
            x[lay.second[0] : lay.second[-1] + 1] = to_bits(q + lay.offset, lay.bits)
    if lay.q2 is not None:
        x[lay.q2] = q * q % PRIME
    if lay.buckets:
        x[lay.buckets[bucket_of(spec, q) if bucket is None else bucket]] = 1
    return x


def lagrange(xs: Sequence[int], ys: Sequence[int], x: int) -> int:
    """The polynomial of degree < len(xs) through (xs, ys), at x (plain product formula)."""
    x %= PRIME
    if x in xs:
        return ys[list(xs).index(x)] % PRIME
    total = 0
    for i, (xi, yi) in enumerate(zip(xs, ys, strict=True)):
        num = den = 1
        for j, xj in enumerate(xs):
            if j != i:
                num = num * (x - xj) % PRIME
                den = den * (xi - xj) % PRIME
        total += yi * num * pow(den, PRIME - 2, PRIME)
    return total % PRIME


class ElementSource:
    """Anything with FieldRNG's ``field_elements`` (prove() draws seed and mask from it)."""

    def field_elements(self, n: int) -> np.ndarray:  # pragma: no cover - protocol only
        raise NotImplementedError


def reference_prove(spec: TaskSpec, x: Sequence[int], rng: FieldRNG | ElementSource) -> list[int]:
    """x || [seed, p(0..2M), mask] for ANY input x: f through (0, seed), (k, x[calls[k-1]]),
    p(i) = f(i)^2; seed and mask are rng's next two elements (as prove() draws them)."""
    lay = layout(spec)
    assert len(x) == lay.proof
    seed, mask = (int(v) for v in rng.field_elements(2))
    wires = [seed, *(x[i] for i in lay.calls)]
    nodes = list(range(lay.m + 1))
    p = [lagrange(nodes, wires, i) ** 2 % PRIME for i in range(2 * lay.m + 1)]
    return [*(v % PRIME for v in x), seed, *p, mask]


def checks(spec: TaskSpec, y: Sequence[int]) -> list[int]:
    """Every check of the circuit on the shared vector y, in the docstring's order."""
    lay = layout(spec)
    out = [y[lay.count] - 1]
    for k, target in enumerate(lay.calls, start=1):
        claimed = y[lay.q2] if lay.q2 is not None and target == lay.q else y[target]
        out.append(y[lay.p(k)] - claimed)
    if lay.q is not None:
        out.append(sum(y[b] << i for i, b in enumerate(lay.first)) - y[lay.q])
        if lay.offset:
            out.append(sum(y[b] << i for i, b in enumerate(lay.second)) - y[lay.q] - lay.offset)
    if lay.buckets:
        out.append(sum(y[b] for b in lay.buckets) - 1)
    return [c % PRIME for c in out]


def reference_message(spec: TaskSpec, y: Sequence[int], joint: bytes) -> list[int]:
    """[v, f(r), p(r), c] for the shared vector y: rho (one per check), gamma (one per
    element but the mask) and r (first draw > 2M) taken in that order from FieldRNG(joint)."""
    lay = layout(spec)
    rng = FieldRNG(joint)
    rho = [int(v) for v in rng.field_elements(len(checks(spec, y)))]
    gamma = [int(v) for v in rng.field_elements(lay.length - 1)]
    r = int(rng.field_elements(1)[0])
    while r <= 2 * lay.m:
        r = int(rng.field_elements(1)[0])
    v = sum(w * c for w, c in zip(rho, checks(spec, y), strict=True)) % PRIME
    wires = [y[lay.proof], *(y[i] for i in lay.calls)]
    fr = lagrange(range(lay.m + 1), wires, r)
    pr = lagrange(range(2 * lay.m + 1), [y[lay.p(i)] for i in range(2 * lay.m + 1)], r)
    c = (sum(g * e for g, e in zip(gamma, y, strict=False)) + y[lay.mask]) % PRIME
    return [v, fr, pr, c]


def accepts(message: Sequence[int]) -> bool:
    """The decision rule: v = 0 and f(r)^2 = p(r)."""
    return message[0] == 0 and message[1] * message[1] % PRIME == message[2]


# -- the protocol under test -----------------------------------------------------------

JOINT = joint_seed("federation", "temp", 7, {"alice": b"a" * 32, "bob": b"b" * 32})


def share_all(
    vectors: Sequence[Sequence[int]], t: int, k: int, seed: bytes = b"s" * 32
) -> np.ndarray:
    """(k, N, n) Shamir shares of N vectors: [s] is seat s's (N, n) stack (x = s + 1)."""
    arr = np.array([[int(v) for v in vec] for vec in vectors], dtype=np.uint64)
    count, n = arr.shape
    return shamir_share(arr.reshape(-1), t, k, FieldRNG(seed)).reshape(k, count, n)


def verify(
    spec: TaskSpec, shares: np.ndarray, joint: bytes = JOINT, seats: Sequence[int] | None = None
) -> dict[int, np.ndarray]:
    """Each seat's (N, 4) verifier shares."""
    q = query(spec, joint)
    chosen = range(len(shares)) if seats is None else seats
    return {s: verifier_shares(q, shares[s]) for s in chosen}


def reconstruct(messages: Mapping[int, np.ndarray], t: int) -> list[list[int]]:
    """The N verifier messages from the first t + 1 seats' verifier shares."""
    seats = sorted(messages)[: t + 1]
    stacked = np.stack([messages[s].reshape(-1) for s in seats])
    flat = shamir_reconstruct(stacked, [s + 1 for s in seats], t)
    return [[int(v) for v in row] for row in flat.reshape(-1, VERIFIER_WIDTH)]


def verdicts(spec: TaskSpec, vectors: Sequence[Sequence[int]], t: int, k: int) -> list[str]:
    """Share, verify at every seat, judge."""
    return judge(verify(spec, share_all(vectors, t, k)), t)


# -- layout ----------------------------------------------------------------------------

@pytest.mark.parametrize("name", SPECS)
def test_circuit_matches_the_reference_layout(name: str) -> None:
    """The circuit puts every block, bit and gadget call where the docstring says."""
    spec, lay = SPECS[name], layout(SPECS[name])
    circ = circuit(spec)
    assert (circ.count, circ.q, circ.q2, circ.buckets) == (0, lay.q, lay.q2, lay.buckets)
    assert (circ.bits, circ.offset, circ.calls) == (lay.bits, lay.offset, lay.calls)
    assert (circ.input_length, circ.proof_start, circ.gadget_calls) == (lay.proof, lay.proof, lay.m)
    assert shared_length(spec) == circ.shared_length == lay.length
    assert list(circ.bit_block(False)) == list(lay.first)
    if lay.offset:
        assert list(circ.bit_block(True)) == list(lay.second)


def test_reference_layout_hits_the_edge_cases() -> None:
    """The chosen shapes cover offset 0 (Q + 1 = 2^B), offset != 0 and no gadget at all."""
    assert (layout(SPECS["pow2"]).bits, layout(SPECS["pow2"]).offset) == (8, 0)
    assert (layout(SPECS["tiny"]).bits, layout(SPECS["tiny"]).offset) == (2, 1)
    assert (layout(SPECS["sum"]).bits, layout(SPECS["sum"]).offset) == (8, 55)
    assert layout(SPECS["count"]).m == 0
    assert layout(SPECS["all"]).m == 9 + 9 + 5 + 1


# -- completeness and agreement with the references ------------------------------------

@settings(max_examples=25, deadline=None)
@given(st.data(), st.sampled_from(sorted(SPECS)), st.sampled_from(SCHEMES), SEEDS, SEEDS)
def test_honest_reports_verify(
    data: st.DataObject, name: str, scheme: tuple[int, int], prover_seed: bytes, member_seed: bytes
) -> None:
    """Every in-range reading, endpoints included, proves valid; any t + 1 seats agree."""
    spec, lay = SPECS[name], layout(SPECS[name])
    t, k = scheme
    steps = [0, lay.levels, *data.draw(st.lists(st.integers(0, lay.levels), max_size=4))]
    rng = FieldRNG(prover_seed)
    vectors = []
    for step in steps:
        value = min(spec.high, spec.low + step * spec.resolution)
        vector = prove(spec, encode_report(spec, value), rng)
        assert [int(v) for v in vector[: lay.proof]] == make_input(spec, step)  # hit the level
        vectors.append(vector)
    joint = joint_seed("federation", spec.task_id, 1, {"m": member_seed})
    messages = verify(spec, share_all(vectors, t, k, prover_seed), joint)
    assert judge(messages, t) == [VALID] * len(steps)
    subset = data.draw(st.lists(st.integers(0, k - 1), min_size=t + 1, max_size=t + 1, unique=True))
    assert judge({s: messages[s] for s in subset}, t) == [VALID] * len(steps)
    for message in reconstruct(messages, t):
        assert message[0] == 0
        assert message[1] * message[1] % PRIME == message[2]


@settings(max_examples=25, deadline=None)
@given(st.data(), st.sampled_from(sorted(SPECS)), SEEDS)
def test_prove_equals_the_reference_prover(data: st.DataObject, name: str, seed: bytes) -> None:
    """prove() outputs exactly report || witness || [seed, p(0..2M), mask] of the reference."""
    spec, lay = SPECS[name], layout(SPECS[name])
    step = data.draw(st.one_of(st.sampled_from([0, lay.levels]), st.integers(0, lay.levels)))
    value = min(spec.high, spec.low + step * spec.resolution)
    got = prove(spec, encode_report(spec, value), FieldRNG(seed))
    assert got.dtype == np.uint64
    assert [int(v) for v in got] == reference_prove(spec, make_input(spec, step), FieldRNG(seed))


@settings(max_examples=25, deadline=None)
@given(st.sampled_from(sorted(SPECS)), st.sampled_from(SCHEMES), SEEDS, SEEDS)
def test_verifier_equals_the_reference_verifier(
    name: str, scheme: tuple[int, int], vector_seed: bytes, joint: bytes
) -> None:
    """The reconstructed [v, f(r), p(r), c] equals the reference's, for uniformly random
    vectors as well as honest ones, and the verdict follows the decision rule."""
    spec, lay = SPECS[name], layout(SPECS[name])
    t, k = scheme
    source = FieldRNG(vector_seed)
    vectors = [[int(v) for v in source.field_elements(lay.length)] for _ in range(3)]
    vectors.append(reference_prove(spec, make_input(spec, lay.levels // 2), source))
    messages = verify(spec, share_all(vectors, t, k, vector_seed), joint)
    expected = [reference_message(spec, y, joint) for y in vectors]
    assert reconstruct(messages, t) == expected
    assert judge(messages, t) == [VALID if accepts(m) else INVALID for m in expected]
    assert judge(messages, t)[-1] == VALID


# -- soundness -------------------------------------------------------------------------

def corrupt_inputs(spec: TaskSpec) -> dict[str, list[int]]:
    """Invalid report || witness vectors, one block wrong in each (built by hand)."""
    lay = layout(spec)
    big_q = lay.levels
    q0 = max(2, big_q // 3)
    base = make_input(spec, q0)

    def edit(changes: Mapping[int, int], x: Sequence[int] = base) -> list[int]:
        out = list(x)
        for index, value in changes.items():
            out[index] = value % PRIME
        return out

    cases = {f"count={c}": edit({lay.count: c}) for c in (0, 2, 1000, P - 1)}
    if lay.q is not None:
        wrong = {"Q+1": big_q + 1, "Q+2": big_q + 2, "2^B": 1 << lay.bits,
                 "2^B-1": (1 << lay.bits) - 1, "P-800": P - 800, "P-1": P - 1}
        for label, q in wrong.items():
            if q > big_q:
                cases[f"q={label}, truncated bits"] = make_input(spec, q)
        cases["q=Q+1, bits of Q"] = edit({lay.q: big_q + 1, **(
            {lay.q2: (big_q + 1) ** 2} if lay.q2 is not None else {})}, make_input(spec, big_q))
        cases["q=P-800, bits of an in-range q"] = edit({lay.q: P - 800, **(
            {lay.q2: 640_000} if lay.q2 is not None else {})}, make_input(spec, 800 % (big_q + 1)))
        cases["bit=2"] = edit({lay.first[0]: 2})
        cases["bit=P-1"] = edit({lay.first[-1]: P - 1})
        cases["bits=[q, 0, ...] (sum holds)"] = edit(
            {b: (q0 if i == 0 else 0) for i, b in enumerate(lay.first)})
        for i, b in enumerate(lay.first):
            cases[f"bit {i} flipped"] = edit({b: 1 - base[b]})
        cases["bits of q+1"] = edit(dict(zip(lay.first, to_bits(q0 + 1, lay.bits), strict=True)))
        if lay.offset:
            cases["second bit 0 flipped"] = edit({lay.second[0]: 1 - base[lay.second[0]]})
            cases["second block = first block"] = edit(
                {s: base[f] for f, s in zip(lay.first, lay.second, strict=True)})
            cases["second=[q+offset, 0, ...] (sum holds)"] = edit(
                {b: (q0 + lay.offset if i == 0 else 0) for i, b in enumerate(lay.second)})
            cases["second bit=2"] = edit({lay.second[-1]: 2})
    if lay.q2 is not None:
        for label, value in {"q*q+1": q0 * q0 + 1, "0": 0, "q": q0, "-q*q": -q0 * q0}.items():
            cases[f"q2={label}"] = edit({lay.q2: value})
    if lay.buckets:
        home = bucket_of(spec, q0)
        other = home - 1 if home else home + 1
        one_hot = {b: 0 for b in lay.buckets}
        cases["bucket=2"] = edit({**one_hot, lay.buckets[home]: 2})
        cases["buckets 2 and P-1 (sum holds)"] = edit(
            {**one_hot, lay.buckets[home]: 2, lay.buckets[other]: P - 1})
        cases["two buckets"] = edit({**one_hot, lay.buckets[home]: 1, lay.buckets[other]: 1})
        cases["no bucket"] = edit(one_hot)
        cases["every bucket"] = edit({b: 1 for b in lay.buckets})
    return cases


@cache
def proved_corruptions(name: str) -> dict[str, list[int]]:
    """Each corrupt input with an honestly computed proof (reference prover), plus one
    honest vector as a control."""
    spec = SPECS[name]
    rng = FieldRNG(hashlib.sha256(name.encode()).digest())
    cases = {label: reference_prove(spec, x, rng) for label, x in corrupt_inputs(spec).items()}
    cases["honest control"] = reference_prove(spec, make_input(spec, 1), rng)
    return cases


@pytest.mark.parametrize("scheme", SCHEMES)
@pytest.mark.parametrize("name", SPECS)
def test_invalid_inputs_proved_honestly_are_rejected(name: str, scheme: tuple[int, int]) -> None:
    """A household that proves an invalid report (bad count, q out of range or negative,
    q^2 block wrong, buckets not one-hot, witness bits wrong) is judged invalid."""
    spec = SPECS[name]
    cases = proved_corruptions(name)
    assert len(cases) >= 5
    expected = {label: VALID if label == "honest control" else INVALID for label in cases}
    for label, y in cases.items():  # the reference verifier agrees
        assert accepts(reference_message(spec, y, JOINT)) == (expected[label] == VALID), label
    got = dict(zip(cases, verdicts(spec, list(cases.values()), *scheme), strict=True))
    assert got == expected


def test_the_corruptions_cover_every_block() -> None:
    """The corruption list really exercises each block (guards the test above)."""
    labels = set(corrupt_inputs(SPECS["all"]))
    for needed in ("count=0", "count=2", "count=1000", "q=P-800, truncated bits",
                   "q=Q+1, truncated bits", "q=2^B-1, truncated bits", "q2=q*q+1", "bucket=2",
                   "two buckets", "no bucket", "bit=2", "bit 0 flipped",
                   "second block = first block"):
        assert needed in labels
    assert "q=2^B, truncated bits" in corrupt_inputs(SPECS["pow2"])  # Q + 1 = 2^B


@pytest.mark.parametrize("name", ["pow2", "sum"])
@pytest.mark.parametrize("excess", [1, 2, 1000, P - 1 - 255, P - 800 - 255])
def test_prove_refuses_q_out_of_range(name: str, excess: int) -> None:
    """prove() will not prove a report whose q is outside [0, Q] (Q + excess, mod P)."""
    spec, lay = SPECS[name], layout(SPECS[name])
    assert lay.q is not None
    report = encode_report(spec, spec.high)
    report[lay.q] = (lay.levels + excess) % P
    with pytest.raises(ValueError, match="outside the task's range"):
        prove(spec, report, FieldRNG(b"x" * 32))


@pytest.mark.parametrize("scheme", SCHEMES)
@pytest.mark.parametrize("name", ["count", "sum", "all", "pow2", "tiny"])
def test_each_tampered_proof_element_is_rejected(name: str, scheme: tuple[int, int]) -> None:
    """Changing the seed or any p(i) of an honest proof (by 1 or by a random amount) makes
    it invalid; the mask only blinds c, so any value of it stays valid."""
    spec, lay = SPECS[name], layout(SPECS[name])
    rng = FieldRNG(b"t" * 32)
    honest = [int(v) for v in prove(spec, encode_report(spec, spec.high), rng)]
    vectors, expected = [honest], [VALID]
    for index in range(lay.proof, lay.length):
        for delta in (1, int(rng.field_elements(1)[0]) or 1):
            y = list(honest)
            y[index] = (y[index] + delta) % PRIME
            vectors.append(y)
            expected.append(VALID if index == lay.mask else INVALID)
    assert verdicts(spec, vectors, *scheme) == expected


def lying_cases(spec: TaskSpec) -> dict[str, list[int]]:
    """Inputs whose affine checks hold but a gadget check fails, with a proof that claims
    the gadget outputs the check wants (p(k) := x[target], or the q^2 block), so v = 0."""
    lay = layout(spec)
    q0 = max(2, lay.levels // 3)
    base = make_input(spec, q0)
    inputs: dict[str, list[int]] = {}
    if lay.buckets:
        home = bucket_of(spec, q0)
        x = list(base)
        x[lay.buckets[home]], x[lay.buckets[home - 1 if home else 1]] = 2, P - 1
        inputs["buckets 2 and -1"] = x
    if lay.q is not None:
        x = list(base)
        for i, b in enumerate(lay.first):
            x[b] = q0 if i == 0 else 0
        inputs["bits [q, 0, ...]"] = x
    if lay.q2 is not None:
        x = list(base)
        x[lay.q2] = q0 * q0 + 5
        inputs["q2 = q^2 + 5"] = x
    rng = FieldRNG(b"l" * 32)
    cases = {}
    for label, x in inputs.items():
        y = reference_prove(spec, x, rng)
        for k, target in enumerate(lay.calls, start=1):
            y[lay.p(k)] = y[lay.q2] if lay.q2 is not None and target == lay.q else y[target]
        cases[label] = y
    return cases


@pytest.mark.parametrize("name", ["all", "pow2", "mean_stddev", "histogram"])
def test_lying_about_gadget_outputs_is_caught_by_the_polynomial_identity(name: str) -> None:
    """A prover can zero v by claiming the gadget outputs it needs, but then p != f^2."""
    spec = SPECS[name]
    cases = lying_cases(spec)
    assert cases
    for label, y in cases.items():
        message = reference_message(spec, y, JOINT)
        assert message[0] == 0, label  # the lie works against v alone...
        assert message[1] ** 2 % PRIME != message[2], label  # ...not against the identity
    for t, k in SCHEMES:
        assert verdicts(spec, list(cases.values()), t, k) == [INVALID] * len(cases)


# -- consistency -----------------------------------------------------------------------

@pytest.mark.parametrize("scheme", SCHEMES)
@pytest.mark.parametrize("name", ["count", "all"])
def test_an_inconsistent_share_is_detected(name: str, scheme: tuple[int, int]) -> None:
    """One member's share of one element changed (report, witness, proof or mask, at any
    seat) makes that report inconsistent when all k > t + 1 seats are judged; the other
    reports of the batch stay valid."""
    spec, lay = SPECS[name], layout(SPECS[name])
    t, k = scheme
    elements = sorted({0, lay.proof - 1, lay.proof, lay.p(0), lay.p(lay.m), lay.mask})
    spots = list(itertools.product(range(k), elements))
    rng = FieldRNG(b"i" * 32)
    vectors = [prove(spec, encode_report(spec, spec.low), rng) for _ in range(len(spots) + 2)]
    vectors.append(reference_prove(spec, corrupt_inputs(spec)["count=2"], rng))  # invalid too
    shares = share_all(vectors, t, k)
    for report, (seat, element) in enumerate(spots):
        shares[seat, report, element] = (int(shares[seat, report, element]) + 1) % P
    shares[k - 1, -1, 0] = (int(shares[k - 1, -1, 0]) + 1) % P
    got = judge(verify(spec, shares), t)
    assert got == [INCONSISTENT] * len(spots) + [VALID] * 2 + [INCONSISTENT]
    # Leave one seat out: without the bad seat the report is valid again; with it, it is
    # inconsistent if a seat is left to cross-check, else the bad share corrupts the
    # reconstructed element and the proof fails (unless it hit the free mask), which with
    # only t + 1 seats is "unchecked": nobody can tell the household from a lying member.
    for seat in range(k):
        others = judge(verify(spec, shares, seats=[s for s in range(k) if s != seat]), t)
        for report, (bad, element) in enumerate(spots):
            want = (VALID if bad == seat else INCONSISTENT if k - 1 > t + 1
                    else VALID if element == lay.mask else UNCHECKED)
            assert others[report] == want, (seat, report, element)


def test_judge_needs_t_plus_1_seats() -> None:
    """Fewer than t + 1 verifier shares cannot be judged."""
    zeros = np.zeros((2, VERIFIER_WIDTH), np.uint64)
    with pytest.raises(ValueError, match=r"t \+ 1 = 2"):
        judge({0: zeros}, 1)
    with pytest.raises(ValueError, match=r"t \+ 1 = 3"):
        judge({0: zeros, 4: zeros}, 2)
    with pytest.raises(ValueError):
        judge({}, 1)
    assert judge({0: zeros, 1: zeros}, 1) == [VALID, VALID]  # (0, 0, 0, 0): 0^2 = 0


@pytest.mark.parametrize("scheme", SCHEMES)
def test_a_failing_proof_is_invalid_only_on_2t_plus_1_seats(scheme: tuple[int, int]) -> None:
    """On fewer than 2t + 1 agreeing seats a failing proof cannot be blamed on the household
    (t lying members could have made it fail): "unchecked"; on 2t + 1 it is "invalid";
    a valid one stays valid however many seats judge it."""
    t, k = scheme
    spec = SPECS["all"]
    bad, good = proved_corruptions("all")["bucket=2"], proved_corruptions("all")["honest control"]
    messages = verify(spec, share_all([bad, good], t, k))
    for size in range(t + 1, k + 1):
        verdict = INVALID if size >= 2 * t + 1 else UNCHECKED
        for seats in itertools.combinations(range(k), size):
            assert judge({s: messages[s] for s in seats}, t) == [verdict, VALID], seats


def test_verifier_shares_refuse_noncanonical_elements() -> None:
    """A share element >= P is refused rather than silently reduced."""
    spec = SPECS["sum"]
    shares = np.zeros((1, shared_length(spec)), np.uint64)
    shares[0, 3] = P
    with pytest.raises(ValueError, match="canonical"):
        verifier_shares(query(spec, JOINT), shares)


# -- zero knowledge --------------------------------------------------------------------

def top_bits(values: np.ndarray) -> np.ndarray:
    """Counts of the top 4 bits of 61-bit elements (16 bins)."""
    return np.bincount((values >> np.uint64(57)).astype(np.int64), minlength=16)


def two_sample_chi_square(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson's two-sample statistic for equal-sized samples: sum (a - b)^2 / (a + b);
    chi^2(bins - 1) when both come from one distribution."""
    assert a.sum() == b.sum()
    both = a + b
    used = both > 0
    return float((((a - b) ** 2)[used] / both[used]).sum())


def zk_messages(spec: TaskSpec, value: float, rng: FieldRNG | ElementSource, n: int) -> np.ndarray:
    """(n, 4) reconstructed verifier messages of n fresh proofs of ``value`` (2-of-5)."""
    report = encode_report(spec, value)
    vectors = [prove(spec, report, rng) for _ in range(n)]
    messages = verify(spec, share_all(vectors, 2, 5, b"z" * 32))
    assert judge(messages, 2) == [VALID] * n
    return np.array(reconstruct(messages, 2), dtype=np.uint64)


ZK_PROOFS = 4000


def test_verifier_messages_do_not_depend_on_the_reading() -> None:
    """Over many proofs, v = 0, p(r) = f(r)^2, and f(r) and c are uniform with the same
    distribution for the lowest and the highest reading."""
    spec = SPECS["all"]
    low = zk_messages(spec, spec.low, FieldRNG(b"L" * 32), ZK_PROOFS)
    high = zk_messages(spec, spec.high, FieldRNG(b"H" * 32), ZK_PROOFS)
    limit = ref.chi_square_limit(15)
    for messages in (low, high):
        assert (messages[:, 0] == 0).all()
        fr = [int(v) for v in messages[:, 1]]
        assert [v * v % PRIME for v in fr] == [int(v) for v in messages[:, 2]]
        assert len(set(fr)) == ZK_PROOFS  # fresh randomness each time
        for column in (1, 3):
            assert ref.chi_square(top_bits(messages[:, column])) < limit, column
    for column in (1, 3):  # f(r), c
        assert two_sample_chi_square(top_bits(low[:, column]), top_bits(high[:, column])) < limit


class LowEntropyRNG(ElementSource):
    """A broken prover RNG: the seed takes 4 values, the mask stays uniform."""

    def __init__(self) -> None:
        self._draws = 0
        self._rng = FieldRNG(b"e" * 32)

    def field_elements(self, n: int) -> np.ndarray:
        assert n == 2
        self._draws += 1
        return np.array([self._draws % 4, int(self._rng.field_elements(1)[0])], np.uint64)


def test_the_zero_knowledge_check_detects_a_weak_seed() -> None:
    """Control: with a 4-valued seed, f(r) gives the reading away and the same statistic
    sees it; c, blinded by the still-uniform mask, does not."""
    spec = SPECS["all"]
    low = zk_messages(spec, spec.low, LowEntropyRNG(), 1000)
    high = zk_messages(spec, spec.high, LowEntropyRNG(), 1000)
    limit = ref.chi_square_limit(15)
    assert two_sample_chi_square(top_bits(low[:, 1]), top_bits(high[:, 1])) > limit
    assert two_sample_chi_square(top_bits(low[:, 3]), top_bits(high[:, 3])) < limit


def test_one_proof_must_meet_only_one_query() -> None:
    """Why the verifier randomness must be used once per proof: f(r1)/L0(r1) - f(r2)/L0(r2)
    cancels the seed and leaves a fixed function of the input, equal for two proofs of one
    reading and different for another reading (documents the assumption, not a bug)."""
    spec, lay = SPECS["sum"], layout(SPECS["sum"])
    queries = [query(spec, JOINT), query(spec, joint_seed("federation", "temp", 8, {"a": b""}))]

    def leak(vector: np.ndarray) -> int:
        out = 0
        for sign, q in zip((1, -1), queries, strict=True):
            fr = int(verifier_shares(q, vector[None, :])[0, 1])
            out += sign * fr * pow(int(q.coefficients[1, lay.proof]), PRIME - 2, PRIME)
        return out % PRIME

    rng = FieldRNG(b"d" * 32)
    first, second = (prove(spec, encode_report(spec, 10.0), rng) for _ in range(2))
    other = prove(spec, encode_report(spec, 90.0), rng)
    assert first[lay.proof] != second[lay.proof]  # different seeds
    assert leak(first) == leak(second) != leak(other)


# -- the verifier's randomness -----------------------------------------------------------

def test_joint_seed_depends_on_everything_it_binds() -> None:
    """Seeds, member names, round, task and federation each change the joint randomness
    and the query built from it; the order of the seeds mapping does not."""
    a, b = b"a" * 32, b"b" * 32
    flipped = bytes([a[0] ^ 1]) + a[1:]
    variants = {
        "base": ("fed", "temp", 7, {"alice": a, "bob": b}),
        "one bit of a seed": ("fed", "temp", 7, {"alice": flipped, "bob": b}),
        "seeds swapped": ("fed", "temp", 7, {"alice": b, "bob": a}),
        "member renamed": ("fed", "temp", 7, {"carol": a, "bob": b}),
        "member added": ("fed", "temp", 7, {"alice": a, "bob": b, "carol": a}),
        "member missing": ("fed", "temp", 7, {"alice": a}),
        "next round": ("fed", "temp", 8, {"alice": a, "bob": b}),
        "round digit moved into task": ("fed", "temp7", 7, {"alice": a, "bob": b}),
        "other task": ("fed", "humidity", 7, {"alice": a, "bob": b}),
        "other federation": ("fed2", "temp", 7, {"alice": a, "bob": b}),
        "federation/task boundary moved": ("fe", "dtemp", 7, {"alice": a, "bob": b}),
        "name/seed boundary moved": ("fed", "temp", 7, {"alic": b"e" + a, "bob": b}),
    }
    joints = {label: joint_seed(*args) for label, args in variants.items()}
    assert all(len(j) == 32 for j in joints.values())
    assert len(set(joints.values())) == len(variants)
    assert joint_seed("fed", "temp", 7, {"bob": b, "alice": a}) == joints["base"]
    spec = SPECS["all"]
    matrices = {label: query(spec, j).coefficients for label, j in joints.items()}
    for x, y in itertools.combinations(matrices, 2):
        assert not np.array_equal(matrices[x], matrices[y]), (x, y)


@pytest.mark.parametrize("name", SPECS)
def test_query_is_deterministic_and_never_evaluates_at_a_node(name: str) -> None:
    """Same joint, same query; r is never one of the nodes 0..2M: every Lagrange weight of
    f(r) and p(r) is nonzero (a node would give a unit or zero row) and they sum to 1."""
    spec, lay = SPECS[name], layout(SPECS[name])
    for joint in (JOINT, b"\x00" * 32, hashlib.sha256(name.encode()).digest()):
        first, again = query(spec, joint), query(spec, joint)
        np.testing.assert_array_equal(first.coefficients, again.coefficients)
        assert first.constants == again.constants
        assert first.coefficients.shape == (VERIFIER_WIDTH, lay.length)
        f_weights = [int(first.coefficients[1, i]) for i in (lay.proof, *lay.calls)]
        p_weights = [int(first.coefficients[2, lay.p(i)]) for i in range(2 * lay.m + 1)]
        for weights in (f_weights, p_weights):
            assert all(weights)
            assert sum(weights) % PRIME == 1


def test_query_redraws_r_until_it_is_not_a_node(monkeypatch: pytest.MonkeyPatch) -> None:
    """Offered every node 0..2M first, query() rejects them all and lands on the first
    genuine draw: the same query as without the offered nodes."""
    spec, lay = SPECS["all"], layout(SPECS["all"])
    real = query(spec, JOINT)
    offered: list[int] = []

    class NodesFirst:
        def __init__(self, seed: bytes) -> None:
            self._rng = FieldRNG(seed)
            self._nodes = list(range(2 * lay.m + 1))

        def field_elements(self, n: int) -> np.ndarray:
            if n == 1 and self._nodes:
                offered.append(self._nodes.pop(0))
                return np.array([offered[-1]], np.uint64)
            return self._rng.field_elements(n)

    monkeypatch.setattr(validity, "FieldRNG", NodesFirst)
    patched = query(spec, JOINT)
    assert offered == list(range(2 * lay.m + 1))
    np.testing.assert_array_equal(patched.coefficients, real.coefficients)
    assert patched.constants == real.constants
