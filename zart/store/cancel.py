"""Cancellation: revoke the lease so a running worker stops at its next fenced write."""

from __future__ import annotations

from sqlalchemy import Connection, text

from zart.store.sql import FINAL_STATE_SQL, NOTIFY_FINISHED_SQL, one, rows

_CANCEL = text(
    f"""
    WITH done AS (
        UPDATE executions SET status = 'cancelled', completed_at = now(), updated_at = now(),
               lease_token = NULL, lease_expires_at = NULL, leased_by = NULL, wake_at = NULL,
               waiting_for = NULL, waiting_for_event = NULL, current_step = NULL
        WHERE id = :id AND status IN ('pending', 'running', 'waiting')
        RETURNING id, task, status, output, error, run_index, attempt, created_at, started_at, completed_at
    ), run AS (
        UPDATE runs SET status = 'cancelled', started_at = done.started_at, completed_at = now()
        FROM done WHERE runs.execution_id = done.id AND runs.run_index = done.run_index
    )
    SELECT done.id, {NOTIFY_FINISHED_SQL} FROM done, {FINAL_STATE_SQL}
    """
)

_CHILDREN = text("SELECT id FROM executions WHERE parent_id = :id AND status IN ('pending', 'running', 'waiting')")


def cancel(conn: Connection, execution_id: str) -> bool:
    """Cancel one active execution; False when it is missing or already finished."""
    return one(conn, _CANCEL, id=execution_id) is not None


def active_children(conn: Connection, execution_id: str) -> list[str]:
    return [r["id"] for r in rows(conn, _CHILDREN, id=execution_id)]


def cancel_descendants(conn: Connection, execution_id: str) -> None:
    """Cancel the active children of a cancelled execution, and theirs. Call it on an autocommit connection after
    the parent's cancel committed: each child is cancelled in its own statement, so no lock cycles form."""
    frontier = [execution_id]
    while frontier:
        parent = frontier.pop()
        for child in active_children(conn, parent):
            if cancel(conn, child):
                frontier.append(child)
