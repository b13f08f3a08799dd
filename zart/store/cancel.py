"""Cancellation's one query of its own: which children are still active (the terminal write is completion's)."""

from __future__ import annotations

from sqlalchemy import Connection, text

from zart.store.sql import rows

_CHILDREN = text(
    """
    SELECT id FROM executions
    WHERE parent_id = :id AND status IN ('pending', 'running', 'waiting')
      AND (CAST(:before_run AS integer) IS NULL OR parent_run < :before_run)
    """
)


def active_children(conn: Connection, execution_id: str, before_run: int | None = None) -> list[str]:
    """The active children of an execution; with `before_run`, only those its earlier runs started."""
    return [r["id"] for r in rows(conn, _CHILDREN, id=execution_id, before_run=before_run)]
