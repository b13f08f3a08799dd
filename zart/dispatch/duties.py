"""The sweeper's duties, one small function each, so each can be run and tested alone.

Duties under the sweep lock take the sweep's connection and return the executions that need a doorbell;
the others open their own short transactions (and take the lock again where only one sweeper may act).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import Connection

from zart import pruning
from zart.celery.calls import home, revoke
from zart.config import Settings
from zart.dispatch.broker import BrokerState
from zart.engine.runner import finish_with_parent
from zart.flow.handoff import dispatch_held
from zart.observability import hooks
from zart.store import counts, db, executions, liveness, pause, remote, sweeps

log = logging.getLogger(__name__)

SWEEP_BATCH = 500
SELF_CLAIM_WAKE = 8  # doorbells a sweep rings for stale ready rows when the fleet drains its queues itself
TIMED_OUT = {"type": "ExecutionTimeout", "message": "execution exceeded its timeout"}


@dataclass(frozen=True)
class Round:
    """What one sweep knows before its transaction opens: the settings and what the broker holds."""

    settings: Settings
    broker: BrokerState | None


# ---------------------------------------------------------------- under the sweep lock


def redispatch_lost(conn: Connection, round_: Round) -> list[str]:
    """Re-publish pending rows whose message was probably lost (measured before any wake-up of this sweep).

    Queue by queue: a queue's messages are weighed against the ready rows routed to it only, so a backlog on one
    queue (its pool stopped, say) never keeps another queue's lost doorbells from being rung again. Rows of a
    queue the broker was not asked about (a task routed since) are weighed against no messages."""
    broker = round_.broker
    if broker is None:
        return []
    groups: list[tuple[sweeps.QueueSet | None, int]] = [(None, broker.queued)]  # no task routed: every row
    if broker.routed:
        default = round_.settings.queue
        measured = {default: broker.queued, **broker.routed}
        groups = [(sweeps.QueueSet((queue,), with_default=queue == default), n) for queue, n in measured.items()]
        groups.append((sweeps.QueueSet(tuple(measured), with_default=True, others=True), 0))
    ready: list[str] = []
    for of, queued in groups:
        unclaimed = sweeps.count_ready_pending(conn, SWEEP_BATCH + queued, of)
        budget = redispatch_budget(unclaimed, replace(broker, queued=queued))
        if budget:
            ready += sweeps.redispatch_stale(
                conn, round_.settings.redispatch_after, budget, broker.forgotten_before, of
            )
    return hooks.repaired("messages", ready)


def wake_timers(conn: Connection, round_: Round) -> list[str]:
    return hooks.repaired("timers", sweeps.wake_due(conn, SWEEP_BATCH))


def recover_leases(conn: Connection, round_: Round) -> list[str]:
    """Runs whose worker died: pending again (the claim counts the recovery against the poison limit)."""
    return hooks.repaired("leases", sweeps.recover_expired_leases(conn, SWEEP_BATCH))


def release_pauses(conn: Connection, round_: Round) -> list[str]:
    return hooks.repaired("pauses", pause.release_lifted(conn, SWEEP_BATCH) + pause.release_orphaned(conn))


def wake_silent_remote_steps(conn: Connection, round_: Round) -> list[str]:
    """Workflows waiting on a Celery task nobody reported on in time: their replay re-dispatches or fails it."""
    return hooks.repaired("remote", remote.wake_silent(conn, SWEEP_BATCH))


LOCKED_DUTIES = (redispatch_lost, wake_timers, recover_leases, release_pauses, wake_silent_remote_steps)


def redispatch_budget(unclaimed: int, broker: BrokerState | None) -> int:
    """How many stale pending rows to re-publish: none while the broker is unreachable (the publication would
    fail and only lengthen the row's back-off), and no more than have no message in the queue.

    When the queue holds at least as many messages as there are unclaimed rows, every row is probably
    queued behind a busy fleet; re-publishing would only bury the real messages under duplicates.
    With workers that take ready executions themselves, each doorbell drains the queue, and new executions
    get none while one is queued (see Publisher.ring_unless_queued): a few per sweep keep every stale row
    moving without burying a backlog under duplicates.
    """
    if broker is None:
        return 0
    cap = SELF_CLAIM_WAKE if broker.self_claiming else SWEEP_BATCH
    return max(0, min(cap, unclaimed - broker.queued))


# ---------------------------------------------------------------- in their own transactions


def fail_overdue(url: str, round_: Round) -> list[str]:
    """Fail executions past their task's timeout, running ones too (their worker's later writes are fenced
    out); each re-checks the deadline as it fails the row. Returns the parents to wake."""
    with db.autocommit(url) as conn:
        overdue = hooks.repaired("overdue", sweeps.overdue(conn, SWEEP_BATCH))
    parents = []
    for execution_id in overdue:
        _, parent = finish_with_parent(
            url, execution_id, status="failed", token=None, error=TIMED_OUT, overdue_only=True
        )
        if parent is not None:
            parents.append(parent)
    return parents


def revoke_cancelled_remote_steps(url: str, round_: Round) -> list[str]:
    """Revoke the Celery tasks a cancelled run sent that are still in flight, so one still queued never starts
    (one already running finishes; its result is ignored, as before).

    Done here rather than by the cancel: a cancel is a write to the store from wherever it is made (the CLI and
    the API need no broker), and the sweeper has zart's broker at hand, which the tasks were sent through
    (a team's app with a broker of its own is not reached). Best effort: while the broker cannot be reached the
    dispatches stay in flight and a later sweep tries again, until they are given up as any stale dispatch is."""
    app = home().app
    if round_.broker is None or app is None:
        return []
    with db.autocommit(url) as conn:
        tokens = remote.in_flight_of_cancelled_runs(conn, SWEEP_BATCH)
    if tokens and revoke(app, tokens):  # two sweeps revoking the same task at once send it twice: harmless
        with db.autocommit(url) as conn:
            remote.mark_revoked(conn, tokens)
    return []


def repair_stranded(url: str, round_: Round) -> list[str]:
    """The liveness check: log every stranded execution loudly, and repair those whose cause is known."""
    with db.transaction(url) as conn:
        if not sweeps.try_lock(conn):
            return []
        found = liveness.stranded(conn, SWEEP_BATCH)
        ready = hooks.repaired("stranded", [row["execution_id"] for row in found if _repair(conn, row)])
    for row in found:
        repaired = row["execution_id"] in ready
        log.error(
            "stranded execution %s (%s, %s): %s",
            row["execution_id"],
            row["status"],
            row["cause"],
            "repaired" if repaired else "no known repair; an operator must look at it",
            extra={"execution_id": row["execution_id"], "cause": row["cause"], "repaired": repaired},
        )
    return ready


def _repair(conn: Connection, row: dict[str, Any]) -> bool:
    execution_id, cause = row["execution_id"], row["cause"]
    if cause in ("children_finished", "remote_finished"):
        executions.lock_parent(conn, execution_id)  # the parent row first, as a finishing child takes it
        liveness.report_finished_children(conn, execution_id)
        return executions.wake_parent_if_children_done(conn, execution_id, row["run_index"])
    if cause == "pause_rule_inactive":
        return liveness.release_from_inactive_rule(conn, execution_id)
    if cause == "limit_gone":
        return liveness.release_from_missing_limit(conn, execution_id)
    return False  # an expired lease is the lease duty's next round; anything else needs a person


def dispatch_held_executions(url: str, round_: Round) -> list[str]:
    """The safety net for limits: held executions that may start now but got no doorbell (the run that freed
    their slot died before ringing, or a limit was raised elsewhere). One query over the limits, not a scan of
    held rows; a rate-limited head is rung only once its token is due."""
    ready: list[str] = []
    with db.transaction(url) as conn:
        if sweeps.try_lock(conn):
            dispatch_held(conn, None, lambda execution_id, _: ready.append(execution_id), 0.0)
    return hooks.repaired("held", ready)


def fold_counts(url: str, round_: Round) -> list[str]:
    with db.transaction(url) as conn:
        if sweeps.try_lock(conn):
            counts.fold_deltas(conn)
    return []


def apply_retention(url: str, round_: Round) -> list[str]:
    """Delete a few batches of executions past their retention."""
    if round_.settings.retention:
        hooks.pruned(pruning.sweep(url, round_.settings.retention))
    return []


# Housekeeping last: a failure in one is logged and never holds up the others or recovery.
OWN_TRANSACTION_DUTIES = (
    fail_overdue,
    revoke_cancelled_remote_steps,
    dispatch_held_executions,
    repair_stranded,
    fold_counts,
    apply_retention,
)
