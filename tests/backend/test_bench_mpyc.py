"""The MPyC comparison: three real MPyC parties on loopback compute the round benchmark's
statistics over the same readings; the script checks them against plaintext, notices a
wrong output, and kills its parties when they overrun."""

from __future__ import annotations

import os
from bisect import bisect_right
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from benchmarks import bench_mpyc
from benchmarks.bench_round import TASK, readings

pytestmark = [pytest.mark.bench]

N = 30


def test_mpyc_outputs_equal_the_plaintext_statistics() -> None:
    figures = bench_mpyc.run(N, timeout_s=120)
    assert figures["correct"] is True and figures["mismatches"] == []
    assert figures["secure_type"].startswith("SecInt(14)")
    assert figures["comparisons"] == 5 * N
    assert figures["inputs_to_outputs_s"] > 0 and all(c > 0 for c in figures["party_cpu_s"])
    # Independent truth: numpy on the benchmark's readings (two decimals, the task's
    # resolution), buckets as Hearth's encoding places them.
    values = readings(N, 1)[:, 0]
    stats = figures["statistics"]
    assert stats["count"] == N
    assert stats["mean"] == pytest.approx(values.mean(), abs=1e-9)
    assert stats["stddev"] == pytest.approx(values.std(), abs=1e-9)
    buckets = np.bincount([bisect_right(TASK["buckets"], v) for v in values], minlength=6)
    assert stats["histogram"] == buckets.tolist()


def test_a_wrong_output_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    truth = bench_mpyc.expected

    def off_by_one(q: np.ndarray) -> dict[str, Any]:
        wrong = truth(q)
        return {**wrong, "sumsq": wrong["sumsq"] + 1}

    monkeypatch.setattr(bench_mpyc, "expected", off_by_one)
    figures = bench_mpyc.run(N, timeout_s=120)
    assert figures["correct"] is False
    assert figures["mismatches"] == ["sumsq"]
    found = bench_mpyc.statistics({"count": 4, "sum": 8, "sumsq": 20, "at_or_above": [4] * 5})
    assert bench_mpyc.mismatches({**found, "mean": found["mean"] + 1e-6}, found) == ["mean"]


def test_parties_are_killed_on_timeout() -> None:
    with pytest.raises(TimeoutError):
        bench_mpyc.run(N, timeout_s=0.01)
    assert not _party_children()


def _party_children() -> list[int]:
    """Our child processes that are MPyC parties (killed ones are reaped, so gone)."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            ppid = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
            cmdline = (proc / "cmdline").read_bytes()
        except (OSError, IndexError, ValueError):
            continue
        if ppid == os.getpid() and b"--party" in cmdline:
            found.append(int(proc.name))
    return found
