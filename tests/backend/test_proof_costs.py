"""The proof-cost benchmark runs end to end on a few reports (so it cannot rot unnoticed)."""

from __future__ import annotations

from benchmarks.proof_costs import histogram_task, measure
from mpc_backend.protocol.validity import shared_length


def test_measure_reports_every_stage_for_proved_reports_that_verify() -> None:
    spec = histogram_task(6)
    row = measure(spec, 20, 3)  # raises if an honest report does not verify
    assert len(spec.buckets) + 1 == row["buckets"] == 6
    assert row["shared_elements"] == shared_length(spec) > row["report_elements"]
    stages = row["us_per_report"]
    assert {"encode", "prove", "share", "seal", "sign", "verify_member",
            "judge_coordinator"} <= set(stages)
    # Sealing (an HPKE encapsulation per member) dwarfs sharing, whatever the machine.
    assert stages["seal"] > stages["share"] > 0 and stages["prove"] > 0
