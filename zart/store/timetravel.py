"""What zart.testing's driver reads and moves: the state of an execution tree, and a timer made due now."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, text

from zart.store.sql import one, rows

_TREE = text(
    """
    WITH RECURSIVE tree AS (
        SELECT id FROM executions WHERE id = :root
        UNION ALL
        SELECT e.id FROM executions e JOIN tree t ON e.parent_id = t.id
    )
    SELECT e.id, e.task, e.status, e.output, e.error, e.wake_at, e.waiting_for, e.waiting_for_event
    FROM executions e JOIN tree USING (id)
    """
)


def execution_tree(conn: Connection, root_id: str) -> list[dict[str, Any]]:
    """The execution and all its descendants, with what each waits for."""
    return rows(conn, _TREE, root=root_id)


_MAKE_DUE = text(
    """
    UPDATE executions SET wake_at = now(), updated_at = now()
    WHERE id = :id AND status IN ('waiting', 'pending') AND wake_at > now()
    RETURNING id
    """
)


def make_due(conn: Connection, execution_id: str) -> bool:
    """The execution's timer fires now (its step keeps the recorded due time, which the test clock passed)."""
    return one(conn, _MAKE_DUE, id=execution_id) is not None
