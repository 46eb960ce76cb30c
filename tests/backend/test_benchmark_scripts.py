"""Every benchmark script starts: its imports resolve (one benchmark borrowing a helper
another has dropped fails here, not when someone next runs it) and ``--help`` says how
to run it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.backend.nodes import REPO

SCRIPTS = sorted(p for p in (REPO / "benchmarks").glob("*.py"))


def test_every_benchmark_is_listed() -> None:
    assert {p.name for p in SCRIPTS} >= {"bench_round.py", "bench_workers.py", "floor.py",
                                          "http_floor.py", "scale_table.py"}


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_benchmark_script_answers_help(script: Path) -> None:
    done = subprocess.run([sys.executable, str(script), "--help"], capture_output=True,
                          text=True, timeout=120, cwd=REPO, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.startswith("usage:"), done.stdout[:500]
