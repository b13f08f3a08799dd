"""Recorded histories to replay against new code: executions with their current run's input and steps."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, text

from zart.store.sql import rows

_EXECUTIONS = text(
    """
    SELECT e.id, e.task, e.status, e.run_index, e.attempt, e.input, e.created_at
    FROM executions e
    WHERE e.status <> 'cancelled' AND e.function_ref IS NULL AND e.task <> :child_task
      AND (CAST(:task AS text) IS NULL OR e.task = :task)
      AND (CAST(:since AS timestamptz) IS NULL OR e.created_at >= :since)
    ORDER BY e.created_at DESC, e.id DESC
    LIMIT :limit
    """
)

_STEPS = text(
    """
    SELECT execution_id, name, position, kind, status, output, error, attempts, failures, exec_attempt, wake_at,
           wake_at <= now() AS due, child_id
    FROM steps WHERE (execution_id, run_index) IN (SELECT * FROM unnest(CAST(:ids AS text[]), CAST(:runs AS int[])))
    ORDER BY execution_id, position
    """
)


def recorded_histories(
    conn: Connection, *, task: str | None, since: datetime | None, limit: int, child_task: str
) -> list[dict[str, Any]]:
    """The newest executions (not cancelled, not function children), each with `steps` of its current run."""
    found = rows(conn, _EXECUTIONS, task=task, since=since, limit=limit, child_task=child_task)
    if not found:
        return []
    by_id = {row["id"]: {**row, "steps": []} for row in found}
    ids = [row["id"] for row in found]
    runs = [row["run_index"] for row in found]
    for step in rows(conn, _STEPS, ids=ids, runs=runs):
        by_id[step.pop("execution_id")]["steps"].append(step)
    return [by_id[execution_id] for execution_id in ids]
