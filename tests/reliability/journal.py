"""Reading the body journal against the committed checkpoints: the proof behind "no completed step runs again"."""

from __future__ import annotations

import statistics
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import text

from zart.store import db


@dataclass(frozen=True)
class BodyRun:
    execution_id: str
    step: str
    started: float


def body_runs(journal: Path) -> list[BodyRun]:
    runs = []
    if journal.exists():
        for line in journal.read_text().splitlines():
            execution_id, step, phase, stamp, _pid = line.split(" ")
            if phase == "start":
                runs.append(BodyRun(execution_id, step, float(stamp)))
    return runs


def committed_checkpoints(database_url: str, prefix: str) -> dict[tuple[str, str], float]:
    """(execution, step) → epoch of its commit, for every completed step checkpoint under `prefix`."""
    with db.autocommit(database_url) as conn:
        rows = conn.execute(
            text(
                "SELECT execution_id, name, EXTRACT(EPOCH FROM completed_at) AS at, "
                "(SELECT count(*) FROM step_attempts a WHERE a.execution_id = s.execution_id "
                " AND a.run_index = s.run_index AND a.step_name = s.name AND a.outcome = 'completed') AS writes "
                "FROM steps s WHERE status = 'completed' AND kind = 'step' AND execution_id LIKE :prefix"
            ),
            {"prefix": prefix + "%"},
        )
        result = {}
        for row in rows:
            assert row.writes <= 1, f"checkpoint of {row.execution_id}/{row.name} written {row.writes} times"
            result[(row.execution_id, row.name)] = float(row.at)
        return result


@dataclass
class Audit:
    body_runs: int
    distinct_steps: int
    reruns: int
    runs_after_checkpoint: list[BodyRun]
    recovery_seconds: list[float]

    def summary(self) -> dict[str, Any]:
        recoveries = sorted(self.recovery_seconds)
        return {
            "body_runs": self.body_runs,
            "steps": self.distinct_steps,
            "reruns_of_interrupted_bodies": self.reruns,
            "runs_after_checkpoint": len(self.runs_after_checkpoint),
            "recovery_p50_s": round(statistics.median(recoveries), 3) if recoveries else None,
            "recovery_max_s": round(recoveries[-1], 3) if recoveries else None,
        }


def audit(journal: Path, database_url: str, prefix: str, kills: list[float]) -> Audit:
    """Count re-runs, find any body started after its checkpoint committed, and time kill → re-run."""
    runs = body_runs(journal)
    checkpoints = committed_checkpoints(database_url, prefix)
    by_step: dict[tuple[str, str], list[BodyRun]] = defaultdict(list)
    for run in runs:
        by_step[(run.execution_id, run.step)].append(run)
    late = [r for r in runs if r.started > checkpoints.get((r.execution_id, r.step), float("inf"))]
    recovery = []
    for attempts in by_step.values():
        for rerun in sorted(attempts, key=lambda r: r.started)[1:]:
            before = [k for k in kills if k <= rerun.started]
            if before:
                recovery.append(rerun.started - before[-1])
    return Audit(
        body_runs=len(runs),
        distinct_steps=len(by_step),
        reruns=len(runs) - len(by_step),
        runs_after_checkpoint=late,
        recovery_seconds=recovery,
    )
