"""Retention queries: find finished top-level executions older than a cutoff and delete each with its tree.

A batch picks a few hundred roots (top-level, final, finished before the cutoff) from the partial index on
completion time, locking them with SKIP LOCKED so it never waits on a row someone else holds. Each root goes
with all its descendants, its runs, events, steps, attempts and audit entries, in one short transaction; a
root with a descendant still active (or locked by someone changing it) is left for a later pass. The counting
triggers see every deleted row, so the maintained counts stay exact.
"""

from __future__ import annotations

from datetime import datetime
from typing import NamedTuple

from sqlalchemy import Connection, text

from zart.store.sql import one, scalar

# `after` (the last batch's newest root) lets a run of batches start past the index entries it just deleted,
# which stay in the index until vacuum and would otherwise be walked again by every batch
_FINISHED_ROOTS = """
    SELECT r.id, r.status, r.completed_at FROM executions r
    WHERE r.parent_id IS NULL AND r.status IN ('completed', 'failed', 'cancelled')
      AND r.status = :status AND r.completed_at < now() - make_interval(secs => :age)
      AND r.completed_at >= coalesce(CAST(:after AS timestamptz), '-infinity')
      AND NOT EXISTS (SELECT 1 FROM executions c
                      WHERE c.parent_id = r.id AND c.status IN ('pending', 'running', 'waiting'))
"""

# the roots with every descendant
_TREE = """
    tree AS (
        SELECT id, id AS root, status FROM roots
        UNION ALL
        SELECT c.id, t.root, c.status FROM executions c JOIN tree t ON c.parent_id = t.id
    )
"""

# a tree with any active member is dropped whole (as the statement's snapshot saw them: for a count)
_TREES = f"""
    {_TREE}, doomed AS (
        SELECT id FROM tree WHERE root NOT IN (
            SELECT root FROM tree WHERE status IN ('pending', 'running', 'waiting'))
    )
"""

# For a delete, every member is locked first and judged by its latest version: a restart or dead-step retry of
# a descendant may commit after the statement's snapshot (which saw it finished), and a delete that waited for
# it would otherwise remove the execution just revived. A member someone else holds (SKIP LOCKED, so the batch
# never waits) or that changed to active keeps its tree for a later pass.
_LOCKED_TREES = f"""
    {_TREE}, members AS MATERIALIZED (
        SELECT e.id, e.status FROM executions e WHERE e.id IN (SELECT id FROM tree) FOR UPDATE SKIP LOCKED
    ), doomed AS (
        SELECT id FROM tree WHERE root NOT IN (
            SELECT t.root FROM tree t LEFT JOIN members m ON m.id = t.id
            WHERE m.id IS NULL OR m.status IN ('pending', 'running', 'waiting'))
    )
"""

_DELETE_BATCH = text(
    f"""
    WITH RECURSIVE roots AS (
        SELECT id, status, completed_at FROM ({_FINISHED_ROOTS}
            ORDER BY r.completed_at LIMIT :limit FOR UPDATE OF r SKIP LOCKED) picked
    ), {_LOCKED_TREES},
    steps_gone AS (DELETE FROM steps WHERE execution_id IN (SELECT id FROM doomed)),
    attempts_gone AS (DELETE FROM step_attempts WHERE execution_id IN (SELECT id FROM doomed)),
    remote_gone AS (DELETE FROM remote_steps WHERE execution_id IN (SELECT id FROM doomed)),
    actions_gone AS (DELETE FROM admin_actions WHERE execution_id IN (SELECT id FROM doomed)),
    gone AS (DELETE FROM executions WHERE id IN (SELECT id FROM doomed) RETURNING id)
    SELECT (SELECT count(*) FROM gone) AS deleted, (SELECT max(completed_at) FROM roots) AS last,
           (SELECT extract(epoch FROM min(r.completed_at) + make_interval(secs => :age) - now())
            FROM executions r WHERE r.parent_id IS NULL AND r.status IN ('completed', 'failed', 'cancelled')
              AND r.status = :status) AS due_in
    """
)

_COUNT = text(
    f"""
    WITH RECURSIVE roots AS (SELECT id, status FROM ({_FINISHED_ROOTS}) picked), {_TREES}
    SELECT count(*) FROM doomed
    """
)


class Batch(NamedTuple):
    """What one batch did: executions deleted (roots and descendants); the newest root's completion time (None
    when no root was due), where the next batch may start; and, as the batch began, the seconds until the oldest
    root of that status is due (≤ 0: one is due, perhaps held by an active child; None: there is none)."""

    deleted: int
    last: datetime | None
    due_in: float | None


def delete_batch(
    conn: Connection, *, status: str, age: float, limit: int, after: datetime | None = None
) -> Batch:
    """Delete up to `limit` trees whose root finished as `status` over `age` seconds ago (and not before
    `after`)."""
    row = one(conn, _DELETE_BATCH, status=status, age=age, limit=limit, after=after)
    assert row is not None
    due_in = row["due_in"]
    return Batch(int(row["deleted"]), row["last"], None if due_in is None else float(due_in))


def count(conn: Connection, *, status: str, age: float) -> int:
    """How many executions `delete_batch` would delete, all batches together (a dry run)."""
    return int(scalar(conn, _COUNT, status=status, age=age, after=None))


RETENTION_LOCK_KEY = 0x7A617274 + 1

_TRY_LOCK = text("SELECT pg_try_advisory_xact_lock(:key)")


def try_lock(conn: Connection) -> bool:
    """One pruner at a time across the fleet (SKIP LOCKED already keeps several correct, this keeps them quiet)."""
    return bool(scalar(conn, _TRY_LOCK, key=RETENTION_LOCK_KEY))
