"""Deleting finished executions past their retention: a batch at a time, each batch its own short transaction.

The sweeper calls `sweep` on every pass (a time budget keeps one pass short); `prune` is the on-demand form
behind `zart admin prune` and the admin route. Both delete whole trees (a parent with its children).
"""

from __future__ import annotations

import time

from zart.retention.policy import Policy
from zart.store import db, retention

BATCH = 200
SWEEP_BUDGET_SECONDS = 0.25
PRUNE_REST = 1.0


def delete_one_batch(url: str, status: str, age: float, limit: int = BATCH) -> int | None:
    """One batch for one status; None when another process holds the pruning lock."""
    with db.transaction(url) as conn:
        if not retention.try_lock(conn):
            return None
        return retention.delete_batch(conn, status=status, age=age, limit=limit)


def sweep(url: str, policy: Policy, budget: float = SWEEP_BUDGET_SECONDS) -> int:
    """The sweeper's retention duty: batches until nothing is due or `budget` seconds are spent."""
    deleted = 0
    deadline = time.monotonic() + budget
    for status, age in policy.items():
        while time.monotonic() < deadline:
            batch = delete_one_batch(url, status, age)
            if not batch:
                break
            deleted += batch
    return deleted


def prune(url: str, ages: Policy, *, dry_run: bool, rest: float = PRUNE_REST) -> dict[str, int]:
    """Executions deleted (or, for a dry run, that would be) per final status, trees whole.

    After each batch it rests `rest` times as long as the batch took, leaving room for the workload while a
    large backlog is pruned at once.
    """
    if dry_run:
        with db.autocommit(url) as conn:
            return {status: retention.count(conn, status=status, age=age) for status, age in ages.items()}
    deleted = dict.fromkeys(ages, 0)
    for status, age in ages.items():
        while True:
            started = time.monotonic()
            batch = delete_one_batch(url, status, age)
            if batch is None:  # the sweeper (or another prune) holds the lock: wait our turn
                time.sleep(0.05)
                continue
            if batch == 0:
                break
            deleted[status] += batch
            time.sleep((time.monotonic() - started) * rest)
    return deleted
