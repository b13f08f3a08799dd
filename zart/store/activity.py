"""What the fleet did lately: executions finished per minute, and which workers were seen."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, text

from zart.store.sql import rows

# Matches the partial index of finished top-level executions by completion time (executions_finished_root_idx):
# only the last hour's finishes are read.
_FINISHED_PER_MINUTE = text(
    """
    SELECT floor(extract(epoch FROM now() - completed_at) / 60)::int AS minutes_ago, status, count(*) AS n
    FROM executions
    WHERE parent_id IS NULL AND status IN ('completed', 'failed', 'cancelled')
      AND completed_at > now() - make_interval(mins => :minutes) AND completed_at <= now()
    GROUP BY 1, 2
    """
)


def finished_per_minute(conn: Connection, minutes: int) -> list[dict[str, Any]]:
    """Rows of (minutes_ago, status, n) for top-level executions that finished in the last `minutes` minutes."""
    return rows(conn, _FINISHED_PER_MINUTE, minutes=minutes)


_REGISTERED = text(
    """
    SELECT registered_by AS worker, max(last_seen_at) AS seen_at, count(*) AS tasks
    FROM task_catalog WHERE registered_by IS NOT NULL
    GROUP BY registered_by ORDER BY seen_at DESC LIMIT :limit
    """
)

_BUSY = text(
    """
    SELECT leased_by AS worker, count(*) AS running FROM executions
    WHERE status = 'running' AND leased_by IS NOT NULL GROUP BY leased_by
    """
)


def workers_seen(conn: Connection, limit: int) -> list[dict[str, Any]]:
    """Worker processes that registered tasks (newest first) and how many executions each holds now."""
    busy = {row["worker"]: int(row["running"]) for row in rows(conn, _BUSY)}
    seen = rows(conn, _REGISTERED, limit=limit)
    for row in seen:
        row["running"] = busy.pop(row["worker"], 0)
    seen += [{"worker": worker, "seen_at": None, "tasks": 0, "running": n} for worker, n in busy.items()]
    return seen
