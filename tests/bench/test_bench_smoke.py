"""The benchmark suite must keep running: its quickest workload, in --quick mode, produces figures."""

from __future__ import annotations

from bench.main import main


def test_quick_physical_workload_produces_figures() -> None:
    rows = main(["--quick", "physical"])
    assert [row.measure for row in rows] == ["INSERT+COMMIT, 1 connection", "INSERT+COMMIT, 8 connections"]
    assert all(row.verdict != "ERROR" and row.figure.endswith(("/s", "each)")) for row in rows)
    assert rows[1].ratio.endswith("×")


def test_quick_schedules_workload_fires_and_reports_lag_and_cost() -> None:
    rows = main(["--quick", "schedules"])
    assert [row.measure.split(",")[0].split(" (")[0] for row in rows] == [
        "firing lag",
        "fire time → doorbell published",
        "sweep duty duration per sweep",
        "CPU per second of sweeping",
    ]
    assert all(row.verdict != "ERROR" for row in rows)
    assert "ticks/s" in rows[0].measure and rows[0].figure.startswith("p50 ")
