"""Ending an execution: the terminal write and, for a child, its result recorded in the parent.

Both happen in the caller's transaction, so a parent parked on its children can never miss the last one:
whatever ends a child (its own run, a cancel, a timeout, a poison verdict) reports through here. Locks go
child row first, then parent row; nothing takes them in the other order within one transaction, so siblings
finishing together serialise without deadlock.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection

from zart.store import executions, steps


@dataclass(frozen=True)
class Finished:
    finished: bool
    wake_parent: str | None = None


def cancelled_error(execution_id: str) -> dict[str, Any]:
    """What a parent's child step records when the child was cancelled (its `wait_all` raises StepFailed)."""
    return {"type": "Cancelled", "message": f"child execution {execution_id} was cancelled"}


def finish_and_report(
    conn: Connection,
    execution_id: str,
    *,
    status: str,
    token: str | None,
    output: Any = None,
    error: dict[str, Any] | None = None,
    overdue_only: bool = False,
) -> Finished:
    """Make an active execution terminal (fenced on `token` when given; only past its deadline when
    `overdue_only`) and, when it is a child, record the outcome in its parent and wake the parent if that was
    the last child it waited for."""
    done = executions.finish(
        conn, execution_id, status=status, token=token, output=output, error=error, overdue_only=overdue_only
    )
    if done is None:
        return Finished(False)
    parent_id = done["parent_id"]
    if parent_id is None:
        return Finished(True)
    executions.lock_parent(conn, parent_id)
    steps.record_child_result(
        conn,
        parent_id=parent_id,
        run_index=done["parent_run"],
        name=done["parent_step"],
        status="completed" if status == "completed" else "failed",
        output=output,
        error=cancelled_error(execution_id) if status == "cancelled" else error,
    )
    woken = executions.wake_parent_if_children_done(conn, parent_id, done["parent_run"])
    return Finished(True, parent_id if woken else None)
