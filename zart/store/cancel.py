"""Cancellation: the terminal write (completion's, so a child reports to its parent) and the active executions
below one."""

from __future__ import annotations

from sqlalchemy import Connection, text

from zart.store import completion
from zart.store.sql import rows

# The active executions nearest below `id`: its active children and, when `through_finished`, the active
# descendants of its finished children (a child that finished may have left a child of its own running). Only the
# first level is limited to runs before `before_run`.
_ACTIVE_BELOW = text(
    """
    WITH RECURSIVE walk AS (
        SELECT id, status FROM executions
        WHERE parent_id = :id AND (CAST(:before_run AS integer) IS NULL OR parent_run < :before_run)
        UNION ALL
        SELECT c.id, c.status FROM executions c JOIN walk w ON c.parent_id = w.id
        WHERE :through_finished AND w.status NOT IN ('pending', 'running', 'waiting')
    )
    SELECT id FROM walk WHERE status IN ('pending', 'running', 'waiting')
    """
)


def cancel(conn: Connection, execution_id: str) -> completion.Finished:
    """Cancel one active execution (a running worker stops at its next fenced write); call it in a transaction,
    since a child's cancel also records a failed child step in its parent and may wake the parent."""
    return completion.finish_and_report(conn, execution_id, status="cancelled", token=None)


def active_below(
    conn: Connection, execution_id: str, before_run: int | None = None, *, through_finished: bool = True
) -> list[str]:
    """The active children of an execution (with `before_run`, only those its earlier runs started) and, when
    `through_finished`, the active executions below its finished children, however deep."""
    rows_found = rows(conn, _ACTIVE_BELOW, id=execution_id, before_run=before_run, through_finished=through_finished)
    return [r["id"] for r in rows_found]
