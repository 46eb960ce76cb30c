"""Hearth beside MPyC as N grows: the table of issue 13, regenerated.

    python benchmarks/scale_table.py [--households 100 1000 5000 10000] [--json]

For each N, in this one process tree and one after the other: ``bench_round``'s round
over direct HTTP (3 committee nodes on loopback, t = 1, one task: count, sum, mean,
variance, stddev, a 6-bucket histogram and quantiles; N in-process households), then
``bench_mpyc`` (3 MPyC parties on loopback, the same readings, count, mean, stddev and
the 6-bucket histogram with 14-bit secure comparisons). Both check their outputs
against the plaintext; a wrong output fails the run. The floor (``benchmarks/floor.py``)
and the HTTP floor (``benchmarks/http_floor.py``: a bare aiohttp server, the same client)
are measured once at the end, with nothing else running.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import uvloop

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks import bench_mpyc, bench_round  # noqa: E402
from benchmarks.floor import measure_floor  # noqa: E402
from benchmarks.http_floor import measure_http_floor  # noqa: E402

DEFINITIONS = f"""\
committee compute at close: CPU seconds of the 3 committee nodes together, from the
  earliest moment the close can start (round end + grace) until every node holds the
  result, less the CPU the benchmark's own result polling costs them (measured first)
MPyC inputs -> outputs: wall time from a barrier after the 3 parties have connected,
  through secret-sharing the inputs, to every party holding the opened outputs
Hearth end to end = clients + ingest + close compute, on this one machine: clients = the
  wall time to encode, prove, share, seal and sign all N reports and check their acks, one
  after the other on one core; ingest = the sum of the 3 nodes' sending windows (one node
  at a time, all its envelopes concurrently); close compute as above (waits excluded: the
  grace period and the scheduler's tick are protocol timing, not work)
Hearth at once = the same sum over a later round, whose envelopes go to all 3 nodes at
  once (one window: the nodes and the sending client share both cores, like MPyC's
  parties), which is how issue 13's table measured ingest
Hearth one upload = the same sum over a third round in which each household sends one
  request, to the committee node its hash picks, which passes the other two nodes' shares
  on in batches (what a household's node does), all nodes at once
Hearth pipelined = one window + close compute over a fourth round: one upload per
  household, each household sealing, sending and checking its acks as it goes, with
  {bench_round.IN_FLIGHT} households in flight (the other rounds: 48 requests), so the
  client's work overlaps the nodes' ingest as MPyC's parties' input and compute share the
  cores; cores busy = CPU over wall in that window (MPyC: its parties' CPU over inputs ->
  outputs)
hubs in parallel (model) = one household's client work + the slowest node's window +
  close compute: each hub on its own machine, modelled from per-node measurements on this
  one (each household seals on its own hub; each node ingests on its own)
joins (setup): wall time of the N joins (32 in flight), not part of end to end;
  joins/s over the first and the last third of them (equal: linear in N)
channel offers (setup): wall time of the 3 N channel offers (each household offers each
  member a secret once a day: one HPKE seal and signature on the household's side, one
  HPKE open and signature check on the member's), not part of end to end: afterwards a
  report costs neither side a public-key operation
per value = the figure / N; ratio = Hearth per value / MPyC per value (< 1: Hearth faster)
CPU/value = what one value costs this machine in CPU time: Hearth at once (one upload) =
  the client's work, its sending, every node's ingest (and forwarding) in that round's
  window and the close compute;
  MPyC = its 3 parties' CPU from inputs to outputs. CPU per value over wall per value: how
  many of the cores each keeps busy
ingest x floor = each node's ingest wall time per report (its own window, a core of its
  own, the client on the other / its reports) over the floor: one HPKE open + one Ed25519
  verify + a one-row SQLite WAL commit"""


def hearth(n: int) -> dict[str, Any]:
    args = argparse.Namespace(households=n, tasks=1, committee=3, period=None, concurrency=48,
                              in_flight=bench_round.IN_FLIGHT,
                              join_concurrency=None, keep=False)
    return uvloop.run(bench_round.run(args, "direct"))


def row(n: int, h: dict[str, Any], m: dict[str, Any], floor: dict[str, Any]) -> dict[str, Any]:
    mpyc_per_value = m["inputs_to_outputs_s"] / n * 1000
    mpyc_cpu_per_value = sum(m["party_cpu_s"]) / n * 1000
    per_value = {key: h[f"{key}_s"] / n * 1000
                 for key in ("end_to_end", "end_to_end_together", "end_to_end_upload",
                             "end_to_end_pipelined", "hubs_in_parallel")}
    return {
        "households": n,
        "hearth_close_compute_s": h["close_compute_total_s"],
        "mpyc_inputs_to_outputs_s": m["inputs_to_outputs_s"],
        "hearth_end_to_end_s": h["end_to_end_s"],
        "hearth_end_to_end_together_s": h["end_to_end_together_s"],
        "hearth_end_to_end_upload_s": h["end_to_end_upload_s"],
        "hearth_end_to_end_pipelined_s": h["end_to_end_pipelined_s"],
        "hearth_hubs_in_parallel_s": h["hubs_in_parallel_s"],
        "hearth_clients_s": h["client_wall_s"],
        "hearth_ingest_s": h["send_wall_s"],
        "hearth_ingest_windows_s": h["ingest_windows_s"],
        "hearth_joins_s": h["joins_s"],
        "hearth_channels_s": h["channels_s"],
        "joins_per_s_first_third": h["joins_per_s_first_third"],
        "joins_per_s_last_third": h["joins_per_s_last_third"],
        "hearth_per_value_ms": round(per_value["end_to_end"], 4),
        "hearth_together_per_value_ms": round(per_value["end_to_end_together"], 4),
        "hearth_upload_per_value_ms": round(per_value["end_to_end_upload"], 4),
        "hearth_parallel_per_value_ms": round(per_value["hubs_in_parallel"], 4),
        "mpyc_per_value_ms": round(mpyc_per_value, 4),
        "hearth_over_mpyc": round(per_value["end_to_end"] / mpyc_per_value, 2),
        "hearth_together_over_mpyc": round(per_value["end_to_end_together"] / mpyc_per_value, 2),
        "hearth_upload_over_mpyc": round(per_value["end_to_end_upload"] / mpyc_per_value, 2),
        "hearth_pipelined_over_mpyc": round(per_value["end_to_end_pipelined"] / mpyc_per_value,
                                            2),
        "hearth_pipelined_cores_busy": h["pipelined"]["send_cores_busy"],
        "hearth_pipelined_in_flight": h["in_flight"],
        "hearth_pipelined_close_compute_s": h["pipelined"]["close_compute_total_s"],
        "mpyc_cores_busy": round(sum(m["party_cpu_s"]) / m["inputs_to_outputs_s"], 2),
        "hearth_pipelined_cpu_per_value_ms": h["pipelined_cpu_ms_per_report"],
        "hearth_parallel_over_mpyc": round(per_value["hubs_in_parallel"] / mpyc_per_value, 2),
        "hearth_together_cpu_per_value_ms": h["together_cpu_ms_per_report"],
        "mpyc_cpu_per_value_ms": round(mpyc_cpu_per_value, 4),
        "hearth_over_mpyc_cpu": round(h["together_cpu_ms_per_report"] / mpyc_cpu_per_value, 2),
        "hearth_upload_cpu_per_value_ms": h["upload_cpu_ms_per_report"],
        "hearth_upload_over_mpyc_cpu": round(h["upload_cpu_ms_per_report"] / mpyc_cpu_per_value,
                                             2),
        "ingest_wall_ms_per_report": {name: s["wall"] for name, s in
                                      h["stages_ms_per_report"].items()},
        "ingest_over_floor": bench_round.node_floor_ratios(h, floor),
        "round_close_latency_s": h["round_close_latency_s"],
        "correct": h["results_correct"] and m["correct"],
    }


COLUMNS: list[tuple[str, str, str]] = [
    ("N", "households", "{}"),
    ("Hearth compute at close", "hearth_close_compute_s", "{:.3f} s"),
    ("MPyC inputs->outputs", "mpyc_inputs_to_outputs_s", "{:.2f} s"),
    ("Hearth end to end", "hearth_end_to_end_s", "{:.2f} s"),
    ("Hearth at once", "hearth_end_to_end_together_s", "{:.2f} s"),
    ("Hearth one upload", "hearth_end_to_end_upload_s", "{:.2f} s"),
    ("Hearth pipelined", "hearth_end_to_end_pipelined_s", "{:.2f} s"),
    ("Hearth joins (setup)", "hearth_joins_s", "{:.1f} s"),
    ("channel offers (setup)", "hearth_channels_s", "{:.1f} s"),
    ("Hearth parallel hubs", "hearth_hubs_in_parallel_s", "{:.2f} s"),
    ("Hearth/value", "hearth_per_value_ms", "{:.3f} ms"),
    ("at once/value", "hearth_together_per_value_ms", "{:.3f} ms"),
    ("parallel/value", "hearth_parallel_per_value_ms", "{:.3f} ms"),
    ("MPyC/value", "mpyc_per_value_ms", "{:.3f} ms"),
    ("Hearth/MPyC", "hearth_over_mpyc", "{:.2f}x"),
    ("at once/MPyC", "hearth_together_over_mpyc", "{:.2f}x"),
    ("one upload/MPyC", "hearth_upload_over_mpyc", "{:.2f}x"),
    ("pipelined/MPyC", "hearth_pipelined_over_mpyc", "{:.2f}x"),
    ("parallel/MPyC", "hearth_parallel_over_mpyc", "{:.2f}x"),
    ("at once CPU/value", "hearth_together_cpu_per_value_ms", "{:.3f} ms"),
    ("MPyC CPU/value", "mpyc_cpu_per_value_ms", "{:.3f} ms"),
    ("CPU at once/MPyC", "hearth_over_mpyc_cpu", "{:.2f}x"),
    ("one upload CPU/value", "hearth_upload_cpu_per_value_ms", "{:.3f} ms"),
    ("CPU one upload/MPyC", "hearth_upload_over_mpyc_cpu", "{:.2f}x"),
    ("pipelined CPU/value", "hearth_pipelined_cpu_per_value_ms", "{:.3f} ms"),
    ("cores busy pipelined/MPyC", "cores_busy", ""),
    ("joins/s 1st->3rd third", "join_rates", ""),
    ("ingest x floor per node", "ingest_over_floor", ""),
]


def print_table(rows: list[dict[str, Any]], floor: dict[str, Any]) -> None:
    def cell(r: dict[str, Any], key: str, fmt: str) -> str:
        if key == "join_rates":
            return f"{r['joins_per_s_first_third'] or '-'} -> {r['joins_per_s_last_third'] or '-'}"
        if key == "cores_busy":
            return f"{r['hearth_pipelined_cores_busy']:.2f}/{r['mpyc_cores_busy']:.2f}"
        if key == "ingest_over_floor":
            return ", ".join("-" if x is None else f"{x:.2f}x" for x in r[key].values())
        return fmt.format(r[key])

    table = [[name for name, _, _ in COLUMNS],
             *[[cell(r, key, fmt) for _, key, fmt in COLUMNS] for r in rows]]
    widths = [max(len(line[i]) for line in table) for i in range(len(COLUMNS))]
    for line in table:
        print("  ".join(c.rjust(w) for c, w in zip(line, widths, strict=True)))
    print()
    print(f"floor per report {floor['ingest_floor_ms']:.3f} ms (HPKE open "
          f"{floor['hpke_open_us']:.0f} us, Ed25519 verify {floor['ed25519_verify_us']:.0f} us, "
          f"1-row commit {floor['commit_1_row_us']:.0f} us; {floor['commit_per_row_48_us']:.1f}"
          f" us per row at {floor['rows_per_commit']} a commit)")
    print(f"HTTP floor per request {floor['http_wall_us']:.0f} us wall (bare aiohttp server "
          f"CPU {floor['http_server_cpu_us']:.0f} us, client CPU "
          f"{floor['http_client_cpu_us']:.0f} us); one per committee node: "
          f"{3 * floor['http_wall_us'] / 1000:.3f} ms per value")
    print("outputs match plaintext: " + ", ".join(f"N={r['households']} {r['correct']}"
                                                  for r in rows))
    print()
    print(DEFINITIONS)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--households", type=int, nargs="+", default=[100, 1000, 5000, 10000])
    parser.add_argument("--mpyc-timeout", type=float, default=1800)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    figures = []
    for n in args.households:
        h = hearth(n)
        m = bench_mpyc.run(n, args.mpyc_timeout)
        figures.append((n, h, m))
        print(f"N={n}: Hearth and MPyC done", file=sys.stderr, flush=True)
    floor = {**measure_floor(bench_round.TASK), **measure_http_floor(bench_round.TASK)}
    rows = [row(n, h, m, floor) for n, h, m in figures]
    if args.json:
        print(json.dumps({"rows": rows, "floor": floor, "definitions": DEFINITIONS,
                          "hearth": [h for _, h, _ in figures],
                          "mpyc": [m for _, _, m in figures]}, indent=2))
    else:
        print_table(rows, floor)
    if not all(r["correct"] for r in rows):
        sys.exit(1)


if __name__ == "__main__":
    main()
