"""The benchmark suite must keep running: its quickest workload, in --quick mode, produces figures."""

from __future__ import annotations

from bench.main import main


def test_quick_physical_workload_produces_figures() -> None:
    rows = main(["--quick", "physical"])
    assert [row.measure for row in rows] == ["INSERT+COMMIT, 1 connection", "INSERT+COMMIT, 8 connections"]
    assert all(row.verdict != "ERROR" and row.figure.endswith(("/s", "each)")) for row in rows)
    assert rows[1].ratio.endswith("×")
