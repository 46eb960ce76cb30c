"""Validity proofs for one report: a fully linear proof (FLP) over GF(2^61 - 1).

This is the FLP of Boneh, Boyle, Corrigan-Gibbs, Gilboa and Ishai as Prio3 uses
it (draft-irtf-cfrg-vdaf, "FLP from a general-purpose PCP"), with one gadget,
Square(x) = x^2, and the committee's randomness chosen interactively after every
report of the round is fixed (the draft's joint randomness and query randomness
both come from the committee here, so the household cannot grind offline).

The input is the report [1, q, q^2, one-hot buckets] (only the blocks the task
uses) followed by a witness: the bits of q and, unless Q + 1 is a power of two,
the bits of q + (2^B - 1 - Q). The circuit's checks, each zero for a valid input:

* count - 1;
* b^2 - b for every bit and every bucket (one gadget call each);
* q^2 - (q^2 block) (one gadget call);
* sum 2^i bit_i - q and sum 2^i bit'_i - q - offset (so q is in [0, Q]);
* sum of buckets - 1.

Gadget call k (1..M) squares input element ``calls[k-1]``. The prover's wire
polynomial f interpolates a random seed at 0 and the call inputs at 1..M; the
proof is [seed, p(0..2M), mask] with p = f^2 of degree 2M, and a random mask for
the consistency check. The shared vector is input || proof, Shamir-shared like
the report alone was.

The verifier is one affine map of a member's shares: four values per report,
[v, f(r), p(r), c] with v = sum_c rho_c check_c (gadget outputs read from p),
f(r) and p(r) by Lagrange interpolation at a random r > 2M, and c a random
combination of every shared element plus the mask. A report is valid iff
v = 0 and f(r)^2 = p(r), and its shares are consistent iff every member's c
(and the rest) lie on one degree-t polynomial. For a valid report the four
values are (0, uniform, its square, uniform): independent of the reading.

Soundness: an invalid input passes with probability at most (2M + 1) / (P - 2M - 1)
per randomness (2M for the polynomial identity at r, 1 for the random
combination of checks): below 2^-51 for every task Hearth accepts (M <= 346).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from mpc_backend.arith import FieldRNG, P, _field, field_add, field_mul, shamir_reconstruct

from .encoding import vector_layout, vector_length
from .task import TaskSpec

VERIFIER_WIDTH = 4
"""Elements of one report's verifier message: v, f(r), p(r), c."""

_JOINT_CONTEXT = b"hearth/verify/v1\x00"


@dataclass(frozen=True)
class Circuit:
    """Where each block sits in a task's shared vector, and what the gadget squares."""

    report_length: int
    count: int
    q: int | None
    q2: int | None
    buckets: tuple[int, ...]
    bits: int  # B: bits of q (0 without a sum block)
    offset: int  # 2^B - 1 - Q; 0 if Q + 1 is a power of two (one bit block suffices)
    calls: tuple[int, ...]  # input element squared by gadget call 1..M

    @property
    def witness_length(self) -> int:
        return self.bits * (2 if self.offset else 1)

    @property
    def input_length(self) -> int:
        return self.report_length + self.witness_length

    @property
    def gadget_calls(self) -> int:
        return len(self.calls)

    @property
    def proof_start(self) -> int:
        return self.input_length

    @property
    def shared_length(self) -> int:
        """Elements a household shares per report: input, then [seed, p(0..2M), mask]."""
        return self.input_length + 2 * self.gadget_calls + 3

    def bit_block(self, second: bool) -> range:
        start = self.report_length + (self.bits if second else 0)
        return range(start, start + self.bits)


@lru_cache(maxsize=256)
def circuit(spec: TaskSpec) -> Circuit:
    """The validity circuit of ``spec`` (cached: specs are immutable)."""
    layout = vector_layout(spec)
    q = layout["sum_q"].start if "sum_q" in layout else None
    q2 = layout["sum_q2"].start if "sum_q2" in layout else None
    buckets = tuple(range(layout["histogram"].start, layout["histogram"].stop)) \
        if "histogram" in layout else ()
    bits = spec.levels.bit_length() if q is not None else 0
    offset = (1 << bits) - 1 - spec.levels if q is not None else 0
    report_length = vector_length(spec)
    first = range(report_length, report_length + bits)
    second = range(report_length + bits, report_length + 2 * bits) if offset else range(0)
    calls = (*first, *second, *buckets, *(() if q2 is None else (q,)))
    return Circuit(report_length, layout["count"].start, q, q2, buckets, bits, offset, calls)


def shared_length(spec: TaskSpec) -> int:
    """Field elements per share of one report with its proof."""
    return circuit(spec).shared_length


# -- proving ------------------------------------------------------------------

def prove(spec: TaskSpec, report: np.ndarray, rng: FieldRNG) -> np.ndarray:
    """report || witness || proof, ready to be Shamir-shared; ValueError if q is out of range."""
    circ = circuit(spec)
    x = np.concatenate([np.asarray(report, dtype=np.uint64), _witness(circ, report)])
    seed, mask = rng.field_elements(2)
    m = circ.gadget_calls
    wires = np.empty(m + 1, np.uint64)
    wires[0] = seed
    wires[1:] = x[list(circ.calls)]
    values = np.empty(2 * m + 1, np.uint64)
    values[: m + 1] = wires
    if m:
        _field.lincomb(list(_extrapolation(m)), wires, values[m + 1 :])
    return np.concatenate([x, [seed], field_mul(values, values), [mask]]).astype(np.uint64)


def _witness(circ: Circuit, report: np.ndarray) -> np.ndarray:
    if circ.q is None:
        return np.zeros(0, np.uint64)
    q = int(report[circ.q])
    if not 0 <= q < (1 << circ.bits) - circ.offset:
        raise ValueError(f"q = {q} is outside the task's range; clip the reading first")
    values = [q, q + circ.offset] if circ.offset else [q]
    return np.array([(v >> i) & 1 for v in values for i in range(circ.bits)], np.uint64)


@lru_cache(maxsize=64)
def _extrapolation(m: int) -> np.ndarray:
    """(m + 1, m) matrix E: row i holds L_i(m + 1 .. 2m) for the nodes 0..m, so that
    the values at m + 1..2m are sum_i wire_i * E[i]."""
    out = np.empty((m + 1, m), np.uint64)
    for col, x in enumerate(range(m + 1, 2 * m + 1)):
        out[:, col] = _lagrange_basis(m, x)
    return out


def _lagrange_basis(n: int, x: int) -> list[int]:
    """[L_0(x), ..., L_n(x)] for the nodes 0..n, x not a node (barycentric form)."""
    full = 1
    for j in range(n + 1):
        full = full * (x - j) % P
    fact = [1] * (n + 1)
    for i in range(1, n + 1):
        fact[i] = fact[i - 1] * i % P
    basis = []
    for i in range(n + 1):
        denominator = fact[i] * fact[n - i] * (x - i) % P
        sign = -1 if (n - i) % 2 else 1
        basis.append(sign * full * pow(denominator, P - 2, P) % P)
    return basis


# -- verifying ----------------------------------------------------------------

def joint_seed(federation: str, task: str, round_id: int, seeds: Mapping[str, bytes]) -> bytes:
    """The verifier's randomness for a round, from every contributing member's seed."""
    digest = hashlib.sha256(_JOINT_CONTEXT)
    for part in (federation, task, str(round_id)):
        digest.update(part.encode() + b"\x00")
    for member in sorted(seeds):  # length-prefixed: no two seed maps hash alike
        for part in (member.encode(), seeds[member]):
            digest.update(len(part).to_bytes(4, "big") + part)
    return digest.digest()


@dataclass(frozen=True)
class Query:
    """The verifier as an affine map: message = shares @ coefficients + constants."""

    coefficients: np.ndarray  # (VERIFIER_WIDTH, shared_length)
    constants: tuple[int, ...]  # VERIFIER_WIDTH


def query(spec: TaskSpec, joint: bytes) -> Query:
    """Build the verifier of ``spec`` for the randomness ``joint``."""
    circ = circuit(spec)
    m, n = circ.gadget_calls, circ.shared_length
    rng = FieldRNG(joint)
    checks = 1 + m + (circ.q is not None) + bool(circ.offset) + bool(circ.buckets)
    rho = [int(v) for v in rng.field_elements(checks)]
    gamma = rng.field_elements(n - 1)
    r = 0
    while r <= 2 * m:  # never a node: f(r) would be a wire value, p(r) a gadget output
        r = int(rng.field_elements(1)[0])
    coef = [[0] * n for _ in range(VERIFIER_WIDTH - 1)]
    v, proof = coef[0], circ.proof_start

    def add(column: list[int], index: int, value: int) -> None:
        column[index] = (column[index] + value) % P

    weights = iter(rho)
    w = next(weights)
    add(v, circ.count, w)
    constant = -w
    for k, target in enumerate(circ.calls, start=1):
        w = next(weights)
        add(v, proof + 1 + k, w)  # the gadget's output p(k)
        add(v, circ.q2 if circ.q2 is not None and k == m else target, -w)
    if circ.q is not None:
        for second in (False, True) if circ.offset else (False,):
            w = next(weights)
            for i, index in enumerate(circ.bit_block(second)):
                add(v, index, w << i)
            add(v, circ.q, -w)
            constant -= w * circ.offset if second else 0
    if circ.buckets:
        w = next(weights)
        for index in circ.buckets:
            add(v, index, w)
        constant -= w
    for k, value in enumerate(_lagrange_basis(m, r)):
        add(coef[1], proof if k == 0 else circ.calls[k - 1], value)
    for k, value in enumerate(_lagrange_basis(2 * m, r)):
        add(coef[2], proof + 1 + k, value)
    matrix = np.empty((VERIFIER_WIDTH, n), np.uint64)
    matrix[:3] = np.array(coef, dtype=np.uint64)
    matrix[3, :-1] = gamma
    matrix[3, -1] = 1  # the mask: c is uniform for an honest prover
    return Query(matrix, (constant % P, 0, 0, 0))


def verifier_shares(q: Query, shares: np.ndarray) -> np.ndarray:
    """(N, 4) verifier shares of N reports from one member's (N, shared_length) shares."""
    rows = np.ascontiguousarray(np.asarray(shares, dtype=np.uint64).T)
    count = rows.shape[1]
    out = np.empty((VERIFIER_WIDTH, count), np.uint64)
    if count:
        columns = list(rows)
        for j in range(VERIFIER_WIDTH):
            if _field.lincomb(columns, q.coefficients[j], out[j]):
                raise ValueError("a share is not a canonical field element")
            out[j] = field_add(out[j], np.full(count, q.constants[j], np.uint64))
    return out.T.copy()


VALID, INVALID, INCONSISTENT, UNCHECKED = "valid", "invalid", "inconsistent", "unchecked"


MAX_UNATTRIBUTED = 1
"""Reports a round may leave out without pinning the failure on their households."""


def judge(shares: Mapping[int, np.ndarray], t: int) -> list[str]:
    """Per report: valid; invalid (its proof fails, on the agreeing verifier shares of at
    least 2t + 1 members, so t liars among them could not have made it fail); inconsistent
    (its verifier shares do not lie on one degree-t polynomial: the household sent
    inconsistent shares, or a member misreported); or unchecked (it fails, on fewer than
    2t + 1 members' shares, so lying members could be the cause). ``shares``: {seat:
    (N, 4) verifier shares}, at least t + 1 seats (x = seat + 1); seats past t + 1
    cross-check the first."""
    seats = sorted(shares)
    if len(seats) < t + 1:
        raise ValueError(f"{len(seats)} verifier shares; t + 1 = {t + 1} are needed")
    first = seats[: t + 1]
    count = shares[first[0]].shape[0]

    def rebuild(group: Sequence[int]) -> np.ndarray:
        stacked = np.stack([shares[s].reshape(-1) for s in group])
        return shamir_reconstruct(stacked, [s + 1 for s in group], t).reshape(count, -1)

    message = rebuild(first)
    consistent = np.ones(count, bool)
    for extra in seats[t + 1 :]:
        consistent &= (rebuild([*first[1:], extra]) == message).all(axis=1)
    fr, pr = message[:, 1], message[:, 2]
    passes = (message[:, 0] == 0) & (field_mul(fr, fr) == pr)
    failed = INVALID if len(seats) >= 2 * t + 1 else UNCHECKED
    return [INCONSISTENT if not ok else VALID if good else failed
            for ok, good in zip(consistent, passes, strict=True)]


def excluded_reports(senders: Sequence[str], verdicts: Sequence[str]) -> dict[str, str]:
    """{sender: verdict} of the reports a round leaves out: every invalid one, and at most
    ``MAX_UNATTRIBUTED`` that cannot be pinned on their household. More than that is what
    a member misreporting its verifier shares would cause to shrink the contributor set
    down to a victim, so it is refused (ValueError) and the round cannot be released."""
    out = {s: v for s, v in zip(senders, verdicts, strict=True) if v != VALID}
    unattributed = sum(v != INVALID for v in out.values())
    if unattributed > MAX_UNATTRIBUTED:
        raise ValueError(
            f"{unattributed} reports failed verification in a way that cannot be pinned on "
            "their households (a committee member may be misreporting its verifier shares); "
            f"at most {MAX_UNATTRIBUTED} may be left out, so the round is not released")
    return out
