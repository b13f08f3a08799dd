"""Cancelling a tree of executions: each descendant in its own short transaction, after its parent committed."""

from __future__ import annotations

from zart.store import cancel as cancel_store
from zart.store import db


def cancel_descendants(database_url: str, execution_id: str, before_run: int | None = None) -> list[str]:
    """Cancel the active descendants of `execution_id`; returns the parents left to wake.

    One transaction per descendant (a child locks itself, then its parent), so no lock cycles form; the
    executions below one are read after it is final (cancelled here, or finished on its own), so none it starts
    meanwhile is missed. A finished child's own active children are reached too (it may have started one
    without waiting for it). `before_run` limits the first level to children of earlier runs, and to active
    ones: a new run's own children are left alone, and so is what a finished child of an earlier run left
    running (a rerun may keep that child's result)."""
    frontier: list[tuple[str, int | None]] = [(execution_id, before_run)]
    to_wake: list[str] = []
    while frontier:
        parent, limit = frontier.pop()
        with db.autocommit(database_url) as conn:
            below = cancel_store.active_below(conn, parent, limit, through_finished=limit is None)
        for child in below:
            with db.transaction(database_url) as conn:
                done = cancel_store.cancel(conn, child)
            if done.finished or limit is None:  # final now, whoever ended it: what it left running goes too
                frontier.append((child, None))
            if done.wake_parent is not None:
                to_wake.append(done.wake_parent)
    return to_wake
