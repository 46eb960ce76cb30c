"""The round benchmark still runs through the relay (a small street, one task): its
released means match the plaintext, no envelope is refused, and it says where the time
goes: per-stage figures per report, the floor measured in the same run, and their ratios;
each committee node's ingest in its own window, and end to end on one machine (those windows
one after the other, the next rounds' envelopes to every node at once, or one upload per
household, also pipelined) and with the hubs in parallel (model), each consistent with its
parts."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from typing import Any

import pytest

from benchmarks.bench_round import STAGE_ROWS, floor_ratios, print_report
from tests.backend.nodes import REPO

pytestmark = [pytest.mark.relay, pytest.mark.slow]

FLOOR_FIGURES = ("hpke_open_us", "ed25519_verify_us", "commit_1_row_us", "commit_per_row_48_us",
                 "hpke_seal_us", "ed25519_sign_us", "http_wall_us", "http_server_cpu_us",
                 "http_client_cpu_us")


def test_bench_round_runs_through_the_relay(capsys: pytest.CaptureFixture[str]) -> None:
    done = subprocess.run(
        [sys.executable, "benchmarks/bench_round.py", "--households", "6", "--tasks", "1",
         "--transport", "relay", "--auth", "both", "--json",
         "--period", "15"],  # not the 20 s sized for load: eight rounds are most of the test
        capture_output=True, text=True, timeout=420, cwd=REPO, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    figures = json.loads(done.stdout)
    # Over channels and as before them (HPKE + signatures per report), side by side.
    assert [(r["transport"], r["auth"]) for r in figures["runs"]] == [
        ("relay", "channels"), ("relay", "signed")]
    assert figures["runs"][0]["channels_s"] > 0 and figures["runs"][1]["channels_s"] == 0
    floor = figures["floor"]
    assert all(floor[k] > 0 for k in FLOOR_FIGURES)
    assert floor["commit_per_row_48_us"] < floor["commit_1_row_us"]  # a shared commit pays
    assert floor["ingest_floor_ms"] == pytest.approx(
        (floor["hpke_open_us"] + floor["ed25519_verify_us"] + floor["commit_1_row_us"]) / 1000,
        abs=1e-3)
    for run in figures["runs"]:
        check_run(run, floor)

    # The text report shows every stage row, the floor and the ratios, per run.
    print_report(figures["runs"], floor, figures["proof_costs"])
    text = capsys.readouterr().out
    for label, _ in STAGE_ROWS:
        assert label in text
    assert "signed/channels" in text and "channel offers (setup, once a day)" in text
    assert "floor per report: open + verify + 1-row commit" in text
    assert f"wall per request        {floor['http_wall_us']:.1f} us" in text
    for run in figures["runs"]:
        ratios = run["floor_ratios"]
        assert f"({ratios['wall']}x, {ratios['wall_batched']}x at 48/commit)" in text
        assert all(f"({x}x)" in text for x in run["wall_over_floor_per_node"].values())
    assert "hubs in parallel (model) = one household's client work" in text
    assert text.count("cores busy)") == 3 * len(figures["runs"])  # a cell per run and round


def check_run(run: dict[str, Any], floor: dict[str, Any]) -> None:
    assert run["results_correct"] is True
    assert run["rejected_envelopes"] == 0
    assert all(rate > 0 for rate in run["reports_per_s_per_node"].values())
    assert run["broker_cpu_s"] >= 0 and run["broker_peak_rss_mb"] > 0

    # One node at a time: each node's wall per report is its own window over its reports,
    # over the floor; the windows add up to the ingest figure.
    windows = run["ingest_windows_s"]
    assert len(run["stages_ms_per_report"]) == 3 and windows.keys() == run[
        "stages_ms_per_report"].keys()
    assert run["send_wall_s"] == pytest.approx(sum(windows.values()), abs=1e-3)
    per_node = run["wall_over_floor_per_node"]
    for name, stages in run["stages_ms_per_report"].items():
        assert windows[name] > 0
        assert stages["wall"] == pytest.approx(windows[name] / 6 * 1000, rel=0.01)
        assert per_node[name] == pytest.approx(stages["wall"] / floor["ingest_floor_ms"],
                                               rel=0.01)
        assert stages["cpu"] > 0
        # The node's own counters (status load.ingest) are present, not None.
        assert all(stages[k] is not None and stages[k] >= 0
                   for k in ("verify", "open", "commit", "handler"))
        assert stages["transport"] == pytest.approx(
            stages["wall"] - stages["verify"] - stages["open"] - stages["commit"], abs=1e-3)
    # End to end on one machine, and with each hub on its own (the model), from the parts.
    assert run["end_to_end_s"] == pytest.approx(
        run["client_wall_s"] + run["send_wall_s"] + run["close_compute_total_s"], abs=2e-3)
    assert run["hubs_in_parallel_s"] == pytest.approx(
        run["client_wall_s"] / 6 + max(windows.values()) + run["close_compute_total_s"],
        abs=2e-3)
    assert run["hubs_in_parallel_s"] < run["end_to_end_s"]
    # The next rounds, every node's envelopes at once (one window), each a whole round of
    # its own: as separate requests to each node, then one upload per household.
    reports = run["households"] * run["tasks"]
    for mode in ("together", "upload", "pipelined"):
        check_at_once(run, mode, reports)
    # Through a forwarder, each household's requests to the two other nodes; never before.
    assert run["together"]["forwarded_requests"] == 0
    assert run["upload"]["forwarded_requests"] == 2 * run["households"]
    assert run["pipelined"]["forwarded_requests"] == 2 * run["households"]
    mean = run["stages_ms_per_report_mean"]
    ratios = run["floor_ratios"]
    assert ratios["wall"] == pytest.approx(mean["wall"] / floor["ingest_floor_ms"], rel=0.01)
    assert ratios["wall_batched"] > ratios["wall"] > 0
    assert ratios["cpu"] == pytest.approx(mean["cpu"] / floor["ingest_floor_ms"], rel=0.01)
    assert ratios["client"] > 0 and run["client_ms_per_report"] > 0
    # Transport (HTTP, JSON, the event loop) over a bare aiohttp server's wall per request:
    # over direct HTTP only, which is what that floor measures.
    direct = floor_ratios({**run, "transport": "direct"}, floor)["transport"]
    assert direct == pytest.approx(mean["transport"] / (floor["http_wall_us"] / 1000),
                                   abs=0.006)
    assert ratios["transport"] == (None if run["transport"] == "relay" else direct)
    assert run["close_compute_total_s"] > 0
    assert math.isclose(run["close_compute_total_s"], sum(run["close_compute_s"].values()),
                        abs_tol=1e-3)
    assert run["joins_s"] > 0
    assert run["joins_per_s_first_third"] > 0 and run["joins_per_s_last_third"] > 0


def check_at_once(run: dict[str, Any], mode: str, reports: int) -> None:
    """A round with every node's envelopes in one window: correct, and its figures add up."""
    at_once = run[mode]
    assert at_once["results_correct"] is True and at_once["rejected_envelopes"] == 0
    assert min(at_once["send_wall_s"], at_once["close_compute_total_s"]) > 0
    # Pipelined, the client's work is all in the window; otherwise some is around it.
    pipelined = mode == "pipelined"
    assert (at_once["client_wall_s"] == 0) is pipelined
    assert (at_once["client_ms_per_report"] == 0) is pipelined
    assert run[f"end_to_end_{mode}_s"] == pytest.approx(
        at_once["client_wall_s"] + at_once["send_wall_s"] + at_once["close_compute_total_s"],
        abs=2e-3)
    # Its window's CPU is every node's (about the three nodes' own windows together, not one
    # node's third of that) and the sending client's; all parts add the client's work
    # around the window and the close.
    node_cpu, send_cpu = (at_once["send_node_cpu_ms_per_report"],
                          at_once["send_client_cpu_ms_per_report"])
    assert node_cpu > 0.5 * sum(s["cpu"] for s in run["stages_ms_per_report"].values())
    assert send_cpu > 0
    assert at_once["send_cores_busy"] == pytest.approx(
        (node_cpu + send_cpu) * reports / 1000 / at_once["send_wall_s"], rel=0.05)
    assert run[f"{mode}_cpu_ms_per_report"] == pytest.approx(
        at_once["client_ms_per_report"] + node_cpu + send_cpu
        + at_once["close_compute_total_s"] / reports * 1000, abs=0.02)
