"""Cancelling a tree of executions: each descendant in its own short transaction, after its parent committed."""

from __future__ import annotations

from zart.store import cancel as cancel_store
from zart.store import db


def cancel_descendants(database_url: str, execution_id: str, before_run: int | None = None) -> list[str]:
    """Cancel the active children of `execution_id`, and theirs; returns the parents left to wake.

    One transaction per child (a child locks itself, then its parent), so no lock cycles form. `before_run`
    limits the first level to children of earlier runs: a new run's own children are left alone."""
    frontier: list[tuple[str, int | None]] = [(execution_id, before_run)]
    to_wake: list[str] = []
    while frontier:
        parent, limit = frontier.pop()
        with db.autocommit(database_url) as conn:
            children = cancel_store.active_children(conn, parent, limit)
        for child in children:
            with db.transaction(database_url) as conn:
                done = cancel_store.cancel(conn, child)
            if done.finished:
                frontier.append((child, None))
            if done.wake_parent is not None:
                to_wake.append(done.wake_parent)
    return to_wake
