"""Cancellation: the terminal write (completion's, so a child reports to its parent) and the active children."""

from __future__ import annotations

from sqlalchemy import Connection, text

from zart.store import completion
from zart.store.sql import rows

_CHILDREN = text(
    """
    SELECT id FROM executions
    WHERE parent_id = :id AND status IN ('pending', 'running', 'waiting')
      AND (CAST(:before_run AS integer) IS NULL OR parent_run < :before_run)
    """
)


def cancel(conn: Connection, execution_id: str) -> completion.Finished:
    """Cancel one active execution (a running worker stops at its next fenced write); call it in a transaction,
    since a child's cancel also records a failed child step in its parent and may wake the parent."""
    return completion.finish_and_report(conn, execution_id, status="cancelled", token=None)


def active_children(conn: Connection, execution_id: str, before_run: int | None = None) -> list[str]:
    """The active children of an execution; with `before_run`, only those its earlier runs started."""
    return [r["id"] for r in rows(conn, _CHILDREN, id=execution_id, before_run=before_run)]
