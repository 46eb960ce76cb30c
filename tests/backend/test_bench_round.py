"""The round benchmark still runs through the relay (a small street, one task): its
released means match the plaintext and no envelope is refused."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.backend.nodes import REPO

pytestmark = [pytest.mark.relay, pytest.mark.slow]


def test_bench_round_runs_through_the_relay() -> None:
    done = subprocess.run(
        [sys.executable, "benchmarks/bench_round.py", "--households", "6", "--tasks", "1",
         "--transport", "relay", "--json"],
        capture_output=True, text=True, timeout=240, cwd=REPO, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    figures = json.loads(done.stdout)
    (run,) = figures["runs"]
    assert run["transport"] == "relay"
    assert run["results_correct"] is True
    assert run["rejected_envelopes"] == 0
    assert all(rate > 0 for rate in run["reports_per_s_per_node"].values())
    assert run["broker_cpu_s"] >= 0 and run["broker_peak_rss_mb"] > 0
