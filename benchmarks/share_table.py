"""Share rows in SQLite: the rowid table storage/sqlite.py makes, beside the table keyed by
(task, round, sender) itself (WITHOUT ROWID) it used before, side by side in one run.

    python benchmarks/share_table.py [--rows 10000] [--per-commit 48] [--json]

Each layout gets a fresh database in WAL mode with ``synchronous=FULL`` (as the node opens
it) and one round's shares: ~1 KB each (an 832-byte share, its digest), from senders in
random order, ``--per-commit`` to a transaction, each row first looked up by its key as
the node's group commit does. Prints the wall and CPU time per row over the whole round
and over its first and last tenths (a layout whose rows cost more as the round fills shows
it there), and the WAL's size at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import sqlite3
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mpc_backend.storage.sqlite import SHARES_TABLE

LAYOUTS = {"rowid (now)": SHARES_TABLE,
           "without rowid (before)": SHARES_TABLE.removesuffix(";") + " WITHOUT ROWID"}
Row = tuple[str, int, str, bytes, bytes, float]


def measure(create: str, rows: list[Row], per_commit: int, directory: Path) -> dict[str, Any]:
    path = directory / "node.sqlite3"
    db = sqlite3.connect(path, isolation_level=None)
    try:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        db.execute(create)
        per_row: list[float] = []
        cpu0, wall0 = time.process_time(), time.perf_counter()
        for start in range(0, len(rows), per_commit):
            group = rows[start:start + per_commit]
            t0 = time.perf_counter()
            db.execute("BEGIN IMMEDIATE")
            for row in group:
                if db.execute("SELECT digest FROM shares WHERE task = ? AND round = ? "
                              "AND sender = ?", row[:3]).fetchone() is None:
                    db.execute("INSERT INTO shares VALUES (?, ?, ?, ?, ?, ?)", row)
            db.execute("COMMIT")
            per_row.extend([(time.perf_counter() - t0) / len(group)] * len(group))
        wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
        tenth = max(1, len(per_row) // 10)
        return {"wall_us": round(wall / len(rows) * 1e6, 1),
                "cpu_us": round(cpu / len(rows) * 1e6, 1),
                "first_tenth_wall_us": round(sum(per_row[:tenth]) / tenth * 1e6, 1),
                "last_tenth_wall_us": round(sum(per_row[-tenth:]) / tenth * 1e6, 1),
                "wal_mb": round(os.path.getsize(f"{path}-wal") / 1e6, 1)}
    finally:
        db.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10000, help="shares in the round")
    parser.add_argument("--per-commit", type=int, default=48, help="shares per transaction")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    now = time.time()
    rows = [("metric_0", 1, secrets.token_hex(16), os.urandom(32), os.urandom(832), now)
            for _ in range(args.rows)]
    figures = {}
    for name, create in LAYOUTS.items():
        with tempfile.TemporaryDirectory(prefix="share-table-") as directory:
            figures[name] = measure(create, rows, args.per_commit, Path(directory))
    if args.json:
        print(json.dumps(figures, indent=2))
        return
    print(f"{args.rows} shares, {args.per_commit} a commit, WAL, synchronous=FULL; per row:")
    width = max(map(len, figures))
    for name, f in figures.items():
        print(f"  {name:<{width}}  wall {f['wall_us']:6.1f} us  CPU {f['cpu_us']:6.1f} us  "
              f"first tenth {f['first_tenth_wall_us']:6.1f} us  last tenth "
              f"{f['last_tenth_wall_us']:6.1f} us  WAL {f['wal_mb']} MB")
    now_, before = figures["rowid (now)"], figures["without rowid (before)"]
    print(f"  before / now: wall {before['wall_us'] / now_['wall_us']:.2f}x, "
          f"CPU {before['cpu_us'] / now_['cpu_us']:.2f}x")


if __name__ == "__main__":
    main()
