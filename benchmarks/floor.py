"""The floor a report's ingest cannot go below on this machine, with the project's own parts.

    python benchmarks/floor.py [--reps 200] [--json]

Per report a committee node must at least: open one HPKE-sealed share (the nodes'
suite, ML-KEM768+X25519 where available), verify one Ed25519 signature, and make
the share durable: one SQLite commit in WAL mode with ``synchronous=FULL`` (the
database made and configured as ``storage/sqlite.py`` does, in the temp directory
the benchmark's nodes use), or its share of a commit when 48 rows share one. A
household at least seals one share per committee member and signs one envelope per
member. Every figure is the median of ``reps`` timed calls on one core (µs), with
plaintexts, ciphertexts and rows of the sizes a real report has (a report of
``bench_round``'s task, proved and shared for a 3-member committee).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from mpc_backend.arith import FieldRNG  # noqa: E402
from mpc_backend.crypto import NodeKeys, seal_share, share_aad, verify_signature  # noqa: E402
from mpc_backend.node.household import seal_report, shares_envelope  # noqa: E402
from mpc_backend.node.roster import MemberInfo  # noqa: E402
from mpc_backend.protocol import TaskSpec  # noqa: E402
from mpc_backend.storage.sqlite import SQLiteStorage  # noqa: E402

ROWS_PER_COMMIT = 48
FEDERATION = "floor"


def median_us(fn: Callable[[], Any], reps: int) -> float:
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e6


def measure_floor(task: dict[str, Any], committee: int = 3, reps: int = 200) -> dict[str, Any]:
    """Medians in µs of each floor operation, and the floors per report in ms."""
    spec = TaskSpec.from_dict({**task, "task_id": "floor", "metric": "floor", "period_s": 60,
                               "min_contributors": 3, "k": committee, "t": (committee - 1) // 2})
    household = NodeKeys.generate()
    members = [NodeKeys.generate() for _ in range(committee)]
    infos = [MemberInfo.of_keys(k, f"m{i}", f"http://127.0.0.1:{i + 1}", 1.0, False)
             for i, k in enumerate(members)]
    sealed = seal_report(household, FEDERATION, spec, 1, infos, 20.0, FieldRNG())
    aad = share_aad(FEDERATION, spec.task_id, 1, household.node_id, members[0].node_id)
    share = members[0].open_share(sealed[0], aad)
    envelope = shares_envelope(household, FEDERATION, [(spec.task_id, 1, sealed[0])])
    signed = json.dumps(envelope).encode()  # as many bytes as the envelope a node verifies
    sig = household.sign(signed)
    seal_us = median_us(lambda: seal_share(members[0].hpke_public, members[0].hpke_suite,
                                           share, aad), reps)
    figures = {
        "hpke_suite": members[0].hpke_suite,
        "share_bytes": len(share),
        "hpke_open_us": median_us(lambda: members[0].open_share(sealed[0], aad), reps),
        "ed25519_verify_us": median_us(
            lambda: verify_signature(household.signing_public, signed, sig), reps),
        "hpke_seal_us": seal_us,
        "ed25519_sign_us": median_us(lambda: household.sign(signed), reps),
        **_commit_floor(share, reps),
    }
    figures["ingest_floor_ms"] = (figures["hpke_open_us"] + figures["ed25519_verify_us"]
                                  + figures["commit_1_row_us"]) / 1000
    figures["ingest_floor_batched_ms"] = (figures["hpke_open_us"] + figures["ed25519_verify_us"]
                                          + figures["commit_per_row_48_us"]) / 1000
    figures["rows_per_commit"] = ROWS_PER_COMMIT
    figures["reps"] = reps
    return {k: round(v, 4) if isinstance(v, float) else v for k, v in figures.items()}


def client_floor_ms(floor: dict[str, Any], committee: int, tasks: int) -> float:
    """A household's least work per report: one seal per member, and per member one signed
    envelope carrying all its tasks' shares, its signed request and the ack's verification."""
    return (committee * floor["hpke_seal_us"]
            + committee * (2 * floor["ed25519_sign_us"] + floor["ed25519_verify_us"]) / tasks
            ) / 1000


def _commit_floor(share: bytes, reps: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="bench-floor-") as tmp:
        storage = SQLiteStorage(Path(tmp))
        asyncio.run(_open_close(storage))  # the project's schema, in WAL mode
        db = sqlite3.connect(storage.path, isolation_level=None)
        try:
            # Per connection, as storage/sqlite.py sets them.
            db.execute("PRAGMA synchronous=FULL")
            db.execute("PRAGMA secure_delete=ON")
            mode = db.execute("PRAGMA journal_mode").fetchone()[0]
            if mode != "wal":
                raise RuntimeError(f"the floor database is in {mode} mode, not WAL")
            digest = hashlib.sha256(share).digest()
            counter = iter(range(10**9))

            def row() -> tuple[Any, ...]:
                return ("floor", 1, f"sender-{next(counter)}", digest, share, time.time())

            insert = ("INSERT INTO shares (task, round, sender, digest, share, received_at) "
                      "VALUES (?, ?, ?, ?, ?, ?)")

            def commit(rows: int) -> None:
                db.execute("BEGIN IMMEDIATE")
                db.executemany(insert, [row() for _ in range(rows)])
                db.execute("COMMIT")

            one = median_us(lambda: commit(1), reps)
            batch = median_us(lambda: commit(ROWS_PER_COMMIT), max(10, reps // 10))
        finally:
            db.close()
    return {"commit_1_row_us": one, "commit_per_row_48_us": batch / ROWS_PER_COMMIT}


async def _open_close(storage: SQLiteStorage) -> None:
    await storage.open()
    await storage.close()


def main() -> None:
    from benchmarks.bench_round import TASK  # noqa: PLC0415 (the task the round benchmark uses)

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=200)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    floor = measure_floor(TASK, reps=args.reps)
    if args.json:
        print(json.dumps(floor, indent=2))
        return
    print_floor(floor)


def print_floor(f: dict[str, Any]) -> None:
    rows = [
        (f"HPKE open ({f['hpke_suite']}, {f['share_bytes']} B share)",
         f"{f['hpke_open_us']:.1f} us"),
        ("Ed25519 verify", f"{f['ed25519_verify_us']:.1f} us"),
        ("SQLite WAL commit, synchronous=FULL, 1 row", f"{f['commit_1_row_us']:.1f} us"),
        (f"  per row, {f['rows_per_commit']} rows per commit",
         f"{f['commit_per_row_48_us']:.1f} us"),
        ("floor per report: open + verify + 1-row commit", f"{f['ingest_floor_ms']:.3f} ms"),
        (f"  with {f['rows_per_commit']} rows per commit",
         f"{f['ingest_floor_batched_ms']:.3f} ms"),
        ("HPKE seal; Ed25519 sign (client floor)",
         f"{f['hpke_seal_us']:.1f} us; {f['ed25519_sign_us']:.1f} us"),
    ]
    width = max(len(name) for name, _ in rows)
    print(f"floor, this machine, this run (median of {f['reps']} calls, one core)")
    for name, value in rows:
        print(f"  {name:<{width}}  {value}")


if __name__ == "__main__":
    main()
