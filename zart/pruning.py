"""Deleting finished executions past their retention: a batch at a time, each batch its own short transaction.

The sweeper calls `sweep` on every pass (a time budget keeps one pass short); `prune` is the on-demand form
behind `zart admin prune` and the admin route. Both delete whole trees (a parent with its children).

Consecutive batches start where the previous one stopped (its newest root's completion time): the index
entries of rows just deleted stay until vacuum, and walking them again in every batch would make a large
prune slower the further it gets. A sweep that finds nothing forgets its place, so the next one starts from
the oldest root again (one that waited for an active child is found then). A sweep that found nothing due
does not ask again before the oldest finished root of that status is due, or, with none, before an execution
finishing now would be: an idle or young database costs no statement per pass.
"""

from __future__ import annotations

import time
from datetime import datetime

from zart.retention.policy import Policy
from zart.store import db, retention
from zart.store.retention import Batch

BATCH = 200
SWEEP_BUDGET_SECONDS = 0.25
PRUNE_REST = 1.0

_sweep_resumes: dict[tuple[str, str], datetime] = {}
_sweep_rests: dict[tuple[str, str, float], float] = {}  # (url, status, age) -> monotonic time to ask again


def delete_one_batch(
    url: str, status: str, age: float, after: datetime | None = None, limit: int = BATCH
) -> Batch | None:
    """One batch for one status; None when another process holds the pruning lock."""
    with db.transaction(url) as conn:
        if not retention.try_lock(conn):
            return None
        return retention.delete_batch(conn, status=status, age=age, limit=limit, after=after)


def _next_start(deleted: int, last: datetime | None, after: datetime | None) -> datetime | None:
    """Where the batch after this one starts; None when nothing more is due (or only held trees are left)."""
    if last is None or (deleted == 0 and last == after):
        return None
    return last


def rest_seconds(batch: Batch, age: float) -> float:
    """How long a sweep may leave a status alone after `batch`, which ended its work: until its oldest finished
    root is due; with none, `age` (an execution finishing now is due no sooner); not at all while a root is due
    (one held by an active child is asked for again every pass)."""
    if batch.last is not None:
        return 0.0
    if batch.due_in is None:
        return age
    return max(0.0, min(batch.due_in, age))


def _rest_until_due(url: str, status: str, age: float, batch: Batch) -> None:
    rest = rest_seconds(batch, age)
    if rest > 0:
        _sweep_rests[(url, status, age)] = time.monotonic() + rest


def sweep(url: str, policy: Policy, budget: float = SWEEP_BUDGET_SECONDS) -> int:
    """The sweeper's retention duty: batches until nothing is due or `budget` seconds are spent."""
    deleted = 0
    deadline = time.monotonic() + budget
    for status, age in policy.items():
        key = (url, status)
        if _sweep_rests.get((url, status, age), 0.0) > time.monotonic():
            continue
        after = _sweep_resumes.pop(key, None)
        while time.monotonic() < deadline:
            batch = delete_one_batch(url, status, age, after)
            if batch is None:  # another process is pruning
                return deleted
            deleted += batch.deleted
            after = _next_start(batch.deleted, batch.last, after)
            if after is None:
                _rest_until_due(url, status, age, batch)
                break
        if after is not None:
            _sweep_resumes[key] = after  # out of time, not out of work: carry on from here next pass
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
        after = None
        while True:
            started = time.monotonic()
            result = delete_one_batch(url, status, age, after)
            if result is None:  # the sweeper holds the lock for a moment: our turn comes
                time.sleep(0.05)
                continue
            deleted[status] += result.deleted
            after = _next_start(result.deleted, result.last, after)
            if after is None:
                break
            time.sleep((time.monotonic() - started) * rest)
    return deleted
