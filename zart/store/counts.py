"""Execution counts by task and status: the summary plus the deltas not yet folded in (exact, and fast)."""

from __future__ import annotations

from sqlalchemy import Connection, text

from zart.store.sql import rows, scalar

_COUNTED = """
    SELECT task, status, n FROM execution_counts
    UNION ALL SELECT task, status, delta FROM execution_count_deltas
"""

_BY_STATUS = text(f"SELECT status, sum(n) AS n FROM ({_COUNTED}) c GROUP BY status")

_MATCHING = text(
    f"""
    SELECT coalesce(sum(n), 0) FROM ({_COUNTED}) c
    WHERE (CAST(:task AS text) IS NULL OR task = :task) AND (CAST(:status AS text) IS NULL OR status = :status)
    """
)

_FOLD = text(
    """
    WITH moved AS (DELETE FROM execution_count_deltas RETURNING task, status, delta),
    summed AS (SELECT task, status, sum(delta) AS n FROM moved GROUP BY task, status)
    INSERT INTO execution_counts (task, status, n) SELECT task, status, n FROM summed
    ON CONFLICT (task, status) DO UPDATE SET n = execution_counts.n + EXCLUDED.n
    """
)

_PRUNE = text("DELETE FROM execution_counts WHERE n = 0")


_PENDING_BY_TASK = text(
    f"""
    SELECT c.task, c.n,
           (SELECT EXTRACT(EPOCH FROM now() - min(e.created_at)) FROM executions e
            WHERE e.status = 'pending' AND e.task = c.task) AS oldest_age
    FROM (SELECT task, sum(n) AS n FROM ({_COUNTED}) counted WHERE status = 'pending' GROUP BY task) c
    WHERE c.n > 0
    ORDER BY c.task
    """
)


def pending_by_task(conn: Connection) -> list[dict]:
    """Per task: executions pending (from the counts) and the age in seconds of the oldest (one index probe)."""
    return [
        {"task": row["task"], "pending": int(row["n"]), "oldest_age": float(row["oldest_age"] or 0.0)}
        for row in rows(conn, _PENDING_BY_TASK)
    ]


def by_status(conn: Connection) -> dict[str, int]:
    return {row["status"]: int(row["n"]) for row in rows(conn, _BY_STATUS)}


def matching(conn: Connection, *, task: str | None, status: str | None) -> int:
    return int(scalar(conn, _MATCHING, task=task, status=status))


def fold_deltas(conn: Connection) -> None:
    """Move the deltas into the summary (the sweeper does this under its lock)."""
    conn.execute(_FOLD)
    conn.execute(_PRUNE)


_REBUILD = (
    text("LOCK TABLE executions IN SHARE MODE"),
    text("DELETE FROM execution_count_deltas"),
    text("DELETE FROM execution_counts"),
    text("INSERT INTO execution_counts (task, status, n) SELECT task, status, count(*) FROM executions GROUP BY 1, 2"),
)


def rebuild(conn: Connection) -> None:
    """Recount from the table (after a bulk load that bypassed triggers, or a manual repair)."""
    for statement in _REBUILD:
        conn.execute(statement)
