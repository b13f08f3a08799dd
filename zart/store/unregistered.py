"""Executions waiting for a worker that registers their task: how long one has existed, and waking them."""

from __future__ import annotations

from sqlalchemy import Connection, text

from zart.store.sql import scalar

_AGE = text("SELECT EXTRACT(EPOCH FROM now() - created_at) FROM executions WHERE id = :id")

_WAKE = text(
    """
    UPDATE executions SET wake_at = now(), updated_at = now()
    WHERE status = 'waiting' AND (waiting_for ->> 'kind') = 'worker' AND task = ANY(:tasks) AND wake_at > now()
    """
)


def age_seconds(conn: Connection, execution_id: str) -> float:
    """Seconds since the execution was created (0 if it is gone)."""
    return float(scalar(conn, _AGE, id=execution_id) or 0.0)


def wake_for_tasks(conn: Connection, tasks: list[str]) -> int:
    """Make the executions waiting for a worker with one of `tasks` due now (the sweeper publishes them)."""
    return conn.execute(_WAKE, {"tasks": tasks}).rowcount
