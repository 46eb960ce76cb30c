"""The same statistics as Hearth's round benchmark, computed with MPyC, for comparison.

    python benchmarks/bench_mpyc.py --households 1000 [--json] [--timeout 600]

MPyC 0.11 (the ``bench`` extra; a benchmark dependency only) with 3 parties, each a
separate process on loopback (free ports, listening on 127.0.0.1 only), threshold 1
(Shamir, like Hearth's 3-member committee). N readings come from the same seeded
generator as ``bench_round`` (one task), in fixed point at the task's resolution
(0.01, so -20..40 °C is -2000..4000); party i inputs its third of them.
The parties compute, on secret-shared ``SecInt(14)`` arrays (14-bit secure integers,
MPyC's vectorised numpy arrays; the field has 46 bits for 14-bit comparisons at
MPyC's default 30-bit statistical security):

* the sum and the sum of squares (N secure multiplications);
* for each of the 5 bucket boundaries the number of readings at or above it
  (5 N secure 14-bit comparisons, ``x >= b``), whose differences are the 6-bucket
  histogram;

and open those aggregates. Count, mean and population stddev follow in the clear,
exactly as Hearth decodes its opened aggregate (the count is public in both: Hearth
publishes its contributors, MPyC's parties know their input lengths). The opened
figures are checked against numpy on the plaintext; the script exits 1 if any differs.

Time "inputs -> outputs": from a barrier after all parties have connected, through
secret-sharing the inputs, to every party holding the opened outputs (the largest of
the three parties' clocks); CPU is each party's process time over the same span.
Parties are killed on error or timeout.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import math
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.bench_round import TASK, readings  # noqa: E402
from tests.backend.nodes import free_port  # noqa: E402

PARTIES = 3
BIT_LENGTH = 14


def fixed_point(values: np.ndarray) -> np.ndarray:
    """Readings as integers at the task's resolution, clipped to its range (as Hearth encodes)."""
    clipped = np.clip(values, TASK["low"], TASK["high"])
    return np.rint(clipped / TASK["resolution"]).astype(np.int64)


def boundaries() -> list[int]:
    return [round(b / TASK["resolution"]) for b in TASK["buckets"]]


def expected(q: np.ndarray) -> dict[str, Any]:
    """The opened aggregates and the statistics, from the plaintext (numpy)."""
    return statistics({
        "count": int(q.size),
        "sum": int(q.sum()),
        "sumsq": int((q * q).sum()),
        "at_or_above": [int((q >= b).sum()) for b in boundaries()],
    })


def statistics(opened: dict[str, Any]) -> dict[str, Any]:
    """Count, mean, population stddev and the histogram from the opened aggregates."""
    n, s, ss = opened["count"], opened["sum"], opened["sumsq"]
    res = TASK["resolution"]
    ge = [n, *opened["at_or_above"], 0]
    return {
        **opened,
        "mean": s / n * res,
        "stddev": math.sqrt((n * ss - s * s) / (n * n)) * res,
        "histogram": [ge[i] - ge[i + 1] for i in range(len(ge) - 1)],
    }


def mismatches(found: dict[str, Any], truth: dict[str, Any]) -> list[str]:
    """What differs: exact for the integers, 1e-9 relative for mean and stddev."""
    wrong = [k for k in ("count", "sum", "sumsq", "at_or_above", "histogram")
             if found.get(k) != truth[k]]
    wrong += [k for k in ("mean", "stddev")
              if not math.isclose(found.get(k, math.nan), truth[k], rel_tol=1e-9, abs_tol=1e-12)]
    return wrong


def run(n: int, timeout_s: float = 600) -> dict[str, Any]:
    """3 MPyC parties over N readings; figures, the statistics, and whether they are right."""
    if n < PARTIES:
        raise ValueError(f"need at least {PARTIES} readings, one per party")
    q = fixed_point(readings(n, 1)[:, 0])
    sizes = [n // PARTIES + (i < n % PARTIES) for i in range(PARTIES)]
    starts = np.cumsum([0, *sizes])
    addresses = [f"127.0.0.1:{free_port()}" for _ in range(PARTIES)]
    with tempfile.TemporaryDirectory(prefix="bench-mpyc-") as tmp:
        procs: list[subprocess.Popen[bytes]] = []
        try:
            for i in range(PARTIES):
                job = {"sizes": sizes, "values": q[starts[i]:starts[i + 1]].tolist(),
                       "boundaries": boundaries(), "bit_length": BIT_LENGTH}
                (Path(tmp) / f"in{i}.json").write_text(json.dumps(job))
                cmd = [sys.executable, __file__, "--party", str(Path(tmp) / f"in{i}.json"),
                       "--no-log", "-I", str(i)]
                for address in addresses:
                    cmd += ["-P", address]
                with (open(Path(tmp) / f"out{i}.json", "wb") as out,
                      open(Path(tmp) / f"err{i}.log", "wb") as err):
                    procs.append(subprocess.Popen(cmd, stdout=out, stderr=err, cwd=REPO))
            deadline = time.monotonic() + timeout_s
            while any(p.poll() is None for p in procs):
                if any(p.returncode not in (None, 0) for p in procs):
                    break
                if time.monotonic() > deadline:
                    raise TimeoutError(f"MPyC parties did not finish within {timeout_s} s")
                time.sleep(0.05)
            failed = [i for i, p in enumerate(procs) if p.returncode != 0]
            if failed:
                errors = (Path(tmp) / f"err{failed[0]}.log").read_text(errors="replace")
                raise RuntimeError(f"MPyC party {failed[0]} failed: {errors[-2000:]}")
            answers = [json.loads((Path(tmp) / f"out{i}.json").read_text().splitlines()[-1])
                       for i in range(PARTIES)]
        finally:
            for p in procs:
                if p.poll() is None:
                    p.kill()
                    p.wait()
    if any(a["opened"] != answers[0]["opened"] for a in answers):
        raise RuntimeError("MPyC parties opened different outputs")
    truth = expected(q)
    found = statistics({"count": n, **answers[0]["opened"]})
    wrong = mismatches(found, truth)
    return {
        "households": n,
        "parties": PARTIES,
        "secure_type": f"SecInt({BIT_LENGTH}), {answers[0]['field_bits']}-bit prime field",
        "gmpy2": answers[0]["gmpy2"],
        "comparisons": len(boundaries()) * n,
        "inputs_to_outputs_s": round(max(a["seconds"] for a in answers), 3),
        "party_cpu_s": [round(a["cpu_s"], 3) for a in answers],
        "per_value_ms": round(max(a["seconds"] for a in answers) / n * 1000, 4),
        "statistics": {k: found[k] for k in ("count", "mean", "stddev", "histogram")},
        "mismatches": wrong,
        "correct": not wrong,
    }


def party(job_file: str) -> None:
    """One MPyC party (its MPyC options, -I and -P, are left in sys.argv for mpyc)."""
    # MPyC listens with host=None, i.e. on every interface; keep the parties on loopback.
    create_server = asyncio.base_events.BaseEventLoop.create_server

    async def loopback_server(self: Any, factory: Any, host: Any = None, *args: Any,
                              **kwargs: Any) -> Any:
        return await create_server(self, factory, host or "127.0.0.1", *args, **kwargs)

    asyncio.base_events.BaseEventLoop.create_server = loopback_server  # type: ignore[method-assign]
    # Importing mpyc.runtime reads sys.argv and sets up this party: parties only.
    from mpyc.runtime import mpc  # noqa: PLC0415

    job = json.loads(Path(job_file).read_text())
    secint = mpc.SecInt(job["bit_length"])

    async def compute() -> None:
        await mpc.start()
        await mpc.barrier("inputs")
        w0, c0 = time.perf_counter(), time.process_time()
        parts = []
        for i, size in enumerate(job["sizes"]):
            own = np.array(job["values"] if i == mpc.pid else [0] * size, dtype=np.int64)
            parts.append(mpc.input(secint.array(own), senders=i))
        x = mpc.np_concatenate(parts)
        # All 5 N comparisons in one vectorised call (x broadcast against the boundaries).
        bounds = np.array(job["boundaries"], dtype=np.int64).reshape(-1, 1)
        at_or_above = mpc.np_sum(x.reshape(1, -1) >= bounds, axis=1)
        sums = mpc.output([mpc.np_sum(x), mpc.np_sum(x * x)])
        counts = mpc.output(at_or_above)
        opened = [int(v) for v in [*await sums, *await counts]]
        seconds, cpu = time.perf_counter() - w0, time.process_time() - c0
        await mpc.shutdown()
        print(json.dumps({
            "opened": {"sum": opened[0], "sumsq": opened[1], "at_or_above": opened[2:]},
            "seconds": seconds, "cpu_s": cpu,
            "gmpy2": importlib.util.find_spec("gmpy2") is not None,
            "field_bits": secint.field.order.bit_length(),
        }))

    mpc.run(compute())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--households", type=int, default=1000, help="readings N")
    parser.add_argument("--timeout", type=float, default=600, help="seconds before the "
                        "parties are killed")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    figures = run(args.households, args.timeout)
    if args.json:
        print(json.dumps(figures, indent=2))
    else:
        print_figures(figures)
    if not figures["correct"]:
        sys.exit(1)


def print_figures(f: dict[str, Any]) -> None:
    stats = f["statistics"]
    rows = [
        ("readings x parties", f"{f['households']} x {f['parties']} (loopback, t = 1)"),
        ("secure type", f"{f['secure_type']}, gmpy2 {'yes' if f['gmpy2'] else 'no'}"),
        ("secure comparisons", str(f["comparisons"])),
        ("inputs -> outputs", f"{f['inputs_to_outputs_s']} s"),
        ("per value", f"{f['per_value_ms']} ms"),
        ("CPU per party", ", ".join(f"{c} s" for c in f["party_cpu_s"])),
        ("mean, stddev", f"{stats['mean']:.4f}, {stats['stddev']:.4f}"),
        ("histogram", str(stats["histogram"])),
        ("outputs match plaintext", "True" if f["correct"] else
         f"False ({', '.join(f['mismatches'])})"),
    ]
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value}")


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--party":
        job_file = sys.argv[2]
        del sys.argv[1:3]
        party(job_file)
    else:
        main()
