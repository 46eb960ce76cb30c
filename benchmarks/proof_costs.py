"""What validity proofs cost, stage by stage, beside the same pipeline without them.

    python benchmarks/proof_costs.py [--reports 2000] [--committee 3] [--json]

For a histogram task with 6 and with 32 buckets (count, mean, stddev and the
histogram, so every block of the report is present), one core, measured side by
side in one run:

* client, per report: encode; prove; Shamir-share (the proved vector, and the
  bare report as before proofs); HPKE-seal one share per committee member (both
  sizes); sign (one envelope per member, here one report per envelope);
* committee, per report: verifier shares of one member (the affine map on its
  stored shares), the coordinator's judgement (reconstruct and cross-check every
  report's verifier message from all K members), beside the partial sum the
  member computes with or without proofs; plus building the verifier once per
  round.

Every proved report is checked to verify, so the figures are for work that ran.
"""

from __future__ import annotations

import argparse
import json
import secrets
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from mpc_backend.arith import FieldRNG, field_sum_rows, shamir_share  # noqa: E402
from mpc_backend.crypto import NodeKeys, seal_share, share_aad  # noqa: E402
from mpc_backend.node.household import shares_envelope  # noqa: E402
from mpc_backend.node.wire import pack_elements  # noqa: E402
from mpc_backend.protocol import TaskSpec, encode_report, vector_length  # noqa: E402
from mpc_backend.protocol.validity import (  # noqa: E402
    VALID,
    circuit,
    judge,
    prove,
    query,
    verifier_shares,
)

CHUNKS = 8


def histogram_task(buckets: int) -> TaskSpec:
    edges = [round(-20 + 60 * (j + 1) / buckets, 2) for j in range(buckets - 1)]
    return TaskSpec.from_dict({
        "task_id": f"hist{buckets}", "metric": f"hist{buckets}", "low": -20.0, "high": 40.0,
        "resolution": 0.01, "stats": ["count", "mean", "stddev", "histogram"],
        "buckets": edges, "period_s": 60, "min_contributors": 3})


def _per_report_us(fn: Callable[[], Any], reports: int) -> float:
    start = time.process_time()
    fn()
    return (time.process_time() - start) / reports * 1e6


def measure(spec: TaskSpec, reports: int, k: int) -> dict[str, Any]:
    """Microseconds per report for each stage, with and without proofs."""
    t = (k - 1) // 2
    rng = FieldRNG()
    keys = NodeKeys.generate()
    members = [NodeKeys.generate() for _ in range(k)]
    values = np.random.default_rng(7).uniform(-20, 40, reports).round(2)  # plaintext only
    encoded: list[np.ndarray] = []
    proved: list[np.ndarray] = []
    bare: list[np.ndarray] = []
    shared: list[np.ndarray] = []
    sealed: list[list[bytes]] = []

    def seal(rows: np.ndarray) -> list[bytes]:
        return [seal_share(m.hpke_public, m.hpke_suite, pack_elements(rows[seat]),
                           share_aad("fed", spec.task_id, 1, keys.node_id, m.node_id))
                for seat, m in enumerate(members)]

    warm = encode_report(spec, 0.0)  # first calls load code and tables: not the steady state
    for _ in range(20):
        seal(shamir_share(prove(spec, warm, rng), t, k, rng))
        seal(shamir_share(warm, t, k, rng))
    # Each stage runs on CHUNKS slices in turn, with and without proofs alternating, and
    # reports its median per-report time: a slow moment of the machine then hits both
    # sides alike instead of whichever stage happened to run during it.
    samples: dict[str, list[float]] = {}
    for chunk in np.array_split(values, CHUNKS):
        n = len(chunk)
        first = len(encoded)

        def stage(name: str, fn: Callable[[], Any], n: int = n) -> None:
            samples.setdefault(name, []).append(_per_report_us(fn, n))

        stage("encode", lambda c=chunk: encoded.extend(encode_report(spec, float(v)) for v in c))
        stage("prove", lambda f=first: proved.extend(prove(spec, e, rng)
                                                     for e in encoded[f:]))
        stage("share_bare", lambda f=first: bare.extend(shamir_share(e, t, k, rng)
                                                        for e in encoded[f:]))
        stage("share", lambda f=first: shared.extend(shamir_share(p, t, k, rng)
                                                     for p in proved[f:]))
        stage("seal_bare", lambda f=first: [seal(rows) for rows in bare[f:]])
        stage("seal", lambda f=first: sealed.extend(seal(rows) for rows in shared[f:]))
        stage("sign", lambda f=first: [shares_envelope(keys, "fed", [(spec.task_id, 1, ct)])
                                       for cts in sealed[f:] for ct in cts])
    us = {name: float(np.median(times)) for name, times in samples.items()}
    stored = [np.stack([rows[seat] for rows in shared]) for seat in range(k)]
    start = time.process_time()
    verifier = query(spec, secrets.token_bytes(32))
    us["query_ms_per_round"] = (time.process_time() - start) * 1e3
    messages: dict[int, np.ndarray] = {}
    us["verify_member"] = _per_report_us(
        lambda: messages.update({0: verifier_shares(verifier, stored[0])}), reports)
    messages.update({seat: verifier_shares(verifier, stored[seat]) for seat in range(1, k)})
    verdicts: list[str] = []
    us["judge_coordinator"] = _per_report_us(lambda: verdicts.extend(judge(messages, t)),
                                             reports)
    if verdicts != [VALID] * reports:
        raise RuntimeError("an honest report did not verify")
    length = vector_length(spec)
    bare_rows = np.stack([rows[0] for rows in bare])
    us["partial_sum_bare"] = _per_report_us(lambda: field_sum_rows(bare_rows), reports)
    us["partial_sum"] = _per_report_us(
        lambda: field_sum_rows(np.ascontiguousarray(stored[0][:, :length])), reports)
    client_bare = us["encode"] + us["share_bare"] + us["seal_bare"] + us["sign"]
    client = us["encode"] + us["prove"] + us["share"] + us["seal"] + us["sign"]
    circ = circuit(spec)
    return {
        "task": spec.task_id, "buckets": len(spec.buckets) + 1, "committee": k,
        "report_elements": length, "shared_elements": circ.shared_length,
        "gadget_calls": circ.gadget_calls,
        "us_per_report": {name: round(v, 1) for name, v in us.items()},
        "client_ms_without_proofs": round(client_bare / 1e3, 3),
        "client_ms_with_proofs": round(client / 1e3, 3),
        "client_ratio": round(client / client_bare, 2),
        "verify_ms_per_report": round((us["verify_member"] + us["judge_coordinator"]) / 1e3, 4),
    }


def print_table(rows: list[dict[str, Any]]) -> None:
    for row in rows:
        u = row["us_per_report"]
        print(f"{row['task']}: {row['buckets']} buckets, k = {row['committee']}, "
              f"{row['report_elements']} -> {row['shared_elements']} elements shared "
              f"({row['gadget_calls']} gadget calls)")
        print(f"  client per report  without proofs {row['client_ms_without_proofs']} ms, "
              f"with proofs {row['client_ms_with_proofs']} ms ({row['client_ratio']}x)")
        print(f"    encode {u['encode']} us, prove {u['prove']} us, share {u['share']} us "
              f"(bare {u['share_bare']}), seal x{row['committee']} {u['seal']} us "
              f"(bare {u['seal_bare']}), sign {u['sign']} us")
        print(f"  committee per report  verifier shares {u['verify_member']} us per member, "
              f"judgement {u['judge_coordinator']} us at the coordinator, partial sum "
              f"{u['partial_sum']} us (bare {u['partial_sum_bare']}); verifier built once "
              f"per round in {round(u['query_ms_per_round'], 2)} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reports", type=int, default=2000)
    parser.add_argument("--committee", type=int, default=3, choices=(3, 5))
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    rows = [measure(histogram_task(b), args.reports, args.committee) for b in (6, 32)]
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        print_table(rows)


if __name__ == "__main__":
    main()
