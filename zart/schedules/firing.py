"""Firing ticks: the sweeper's schedule duty, and the manual trigger and backfill that share its rules.

A tick becomes an execution whose id is `<schedule id>@<tick>`, inserted with ON CONFLICT DO NOTHING: however
many sweepers race for a tick (or a backfill repeats it), the primary key lets one execution exist. Each
schedule row is locked while it is fired and sweepers skip rows another holds, so they share the work.
Messages are published after commit; a lost one is re-published by the sweeper like any other.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from zart.cancellation import cancel_descendants
from zart.schedules.plan import Decision, decide, due_ticks, fire_time
from zart.schedules.spec import ScheduleSpec
from zart.schedules.ticks import tick_label
from zart.store import cancel as cancel_store
from zart.store import catalog, db, executions, sweeps
from zart.store import schedules as store

log = logging.getLogger(__name__)

SWEEP_LIMIT = 500


@dataclass(frozen=True)
class Fired:
    execution_id: str
    schedule_id: str
    tick: datetime
    fire_at: datetime


@dataclass
class Outcome:
    """What one firing did: executions created, ticks already fired, skipped or buffered, runs cancelled."""

    fired: list[Fired] = field(default_factory=list)
    already_fired: list[str] = field(default_factory=list)
    skipped: list[tuple[datetime, str]] = field(default_factory=list)
    buffered: datetime | None = None
    cancelled: list[str] = field(default_factory=list)


def execution_id_for(schedule_id: str, tick: datetime) -> str:
    return f"{schedule_id}@{tick_label(tick)}"


def manual_execution_id(schedule_id: str) -> str:
    return f"{schedule_id}@manual-{uuid.uuid4().hex[:12]}"


class TaskLookup:
    """Target tasks' timeouts from the catalog, read once per sweep; None marks a task no worker registered."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self._known: dict[str, dict[str, Any] | None] = {}

    def get(self, task: str) -> dict[str, Any] | None:
        if task not in self._known:
            self._known[task] = catalog.get_task(self._conn, task)
        return self._known[task]


def fire_due(database_url: str, publish: Callable[[str], Any], grace: float, limit: int = SWEEP_LIMIT) -> Outcome:
    """The sweeper's duty: fire every due tick of up to `limit` schedules (rows others hold are skipped)."""
    total = Outcome()
    with db.transaction(database_url) as conn:
        now = sweeps.database_now(conn)
        lookup = TaskLookup(conn)
        for row in store.lock_due(conn, limit):
            outcome = fire_row(conn, row, now, grace, lookup)
            total.fired += outcome.fired
            total.already_fired += outcome.already_fired
            total.skipped += outcome.skipped
            total.cancelled += outcome.cancelled
    finish(database_url, total, publish)
    return total


def fire_row(conn: Connection, row: dict[str, Any], now: datetime, grace: float, lookup: TaskLookup) -> Outcome:
    """Fire what is due of one locked schedule row and record where it goes on from."""
    spec = ScheduleSpec.from_row(row)
    candidates = due_ticks(spec, row["next_tick"], now, grace)
    decision = decide(spec.overlap, candidates.due, bool(row["active"]), row["buffered_tick"])
    outcome = apply(conn, spec, decision, now, lookup)
    if candidates.passed_over:
        outcome.skipped.append((now, "missed"))
    following = candidates.next_tick
    record(conn, spec, outcome, now, next_tick=following, buffered=outcome.buffered)
    return outcome


def apply(
    conn: Connection,
    spec: ScheduleSpec,
    decision: Decision,
    now: datetime,
    lookup: TaskLookup,
    ids: Sequence[str] | None = None,
) -> Outcome:
    """Cancel what the decision cancels and insert an execution per fired tick (ids derived unless given)."""
    outcome = Outcome(skipped=list(decision.skipped), buffered=decision.buffered)
    if decision.cancel_active:
        for execution_id in store.active_runs(conn, spec.id):
            if cancel_store.cancel(conn, execution_id).finished:
                outcome.cancelled.append(execution_id)
    task = lookup.get(spec.task)
    for index, tick in enumerate(decision.fire):
        if task is None:
            outcome.skipped.append((tick, "task_not_registered"))
            continue
        execution_id = ids[index] if ids is not None else execution_id_for(spec.id, tick)
        created = executions.insert_execution(
            conn,
            execution_id=execution_id,
            task=spec.task,
            data=spec.data,
            timeout=task["timeout_seconds"],
            triggered_by=f"schedule:{spec.id}",
            schedule_id=spec.id,
            scheduled_for=tick,
            queue=task.get("queue"),
            priority=task.get("priority") or 0,
        )
        if created is None:
            outcome.already_fired.append(execution_id)
        else:
            outcome.fired.append(Fired(execution_id, spec.id, tick, fire_time(spec, tick)))
    return outcome


def record(
    conn: Connection,
    spec: ScheduleSpec,
    outcome: Outcome,
    now: datetime,
    *,
    next_tick: datetime | None,
    buffered: datetime | None,
) -> None:
    last = outcome.fired[-1] if outcome.fired else None
    skip = outcome.skipped[-1] if outcome.skipped else None
    store.record_progress(
        conn,
        spec.id,
        next_tick=next_tick,
        next_fire_at=None if next_tick is None else fire_time(spec, next_tick),
        buffered_tick=buffered,
        last_tick=None if last is None else last.tick,
        last_fired_at=None if last is None else now,
        last_execution_id=None if last is None else last.execution_id,
        last_lag=None if last is None else max(0.0, (now - last.fire_at).total_seconds()),
        last_skip=None if skip is None else {"tick": skip[0].isoformat(), "reason": skip[1], "at": now.isoformat()},
    )
    for tick, reason in outcome.skipped:
        log.info(
            "schedule tick not fired",
            extra={"schedule_id": spec.id, "tick": tick.isoformat(), "reason": reason},
        )


def finish(database_url: str, outcome: Outcome, publish: Callable[[str], Any]) -> None:
    """After commit: cancel the cancelled runs' children, then ring the doorbells."""
    for execution_id in outcome.cancelled:
        for parent in cancel_descendants(database_url, execution_id):
            publish(parent)
    for fired in outcome.fired:
        publish(fired.execution_id)
