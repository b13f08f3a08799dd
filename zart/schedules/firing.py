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
from zart.schedules.celery_target import CELERY_TARGET_TASK, execution_input
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


@dataclass
class Plan:
    """One schedule's share of a firing: its decision, and where the schedule goes on from."""

    spec: ScheduleSpec
    decision: Decision
    next_tick: datetime | None
    passed_over: bool = False
    ids: Sequence[str] | None = None  # explicit execution ids (a manual trigger); derived from the ticks otherwise


PublishMany = Callable[[list[str]], Any]


def fire_due(database_url: str, publish: PublishMany, grace: float, limit: int = SWEEP_LIMIT) -> Outcome:
    """The sweeper's duty: fire every due tick of up to `limit` schedules (rows others hold are skipped), with
    one statement for all the executions and one for all the schedules' progress."""
    with db.transaction(database_url) as conn:
        now = sweeps.database_now(conn)
        plans = [plan_row(row, now, grace) for row in store.lock_due(conn, limit)]
        outcome = apply(conn, plans, now, TaskLookup(conn))
    finish(database_url, outcome, publish)
    return outcome


def plan_row(row: dict[str, Any], now: datetime, grace: float) -> Plan:
    """What to do with one locked, due schedule row (pure: see zart.schedules.plan)."""
    spec = ScheduleSpec.from_row(row)
    candidates = due_ticks(spec, row["next_tick"], now, grace)
    decision = decide(spec.overlap, candidates.due, bool(row["active"]), row["buffered_tick"])
    return Plan(spec, decision, candidates.next_tick, candidates.passed_over)


def apply(conn: Connection, plans: Sequence[Plan], now: datetime, lookup: TaskLookup) -> Outcome:
    """Carry the plans out: cancel what they cancel, insert an execution per fired tick, record progress."""
    outcome = Outcome()
    wanted: list[tuple[dict[str, Any], Plan]] = []
    skipped: dict[str, list[tuple[datetime, str]]] = {}
    for plan in plans:
        spec, decision = plan.spec, plan.decision
        skipped[spec.id] = list(decision.skipped) + ([(now, "missed")] if plan.passed_over else [])
        if decision.cancel_active:
            for execution_id in store.active_runs(conn, spec.id):
                if cancel_store.cancel(conn, execution_id).finished:
                    outcome.cancelled.append(execution_id)
        workflow, data = target(spec)
        task = lookup.get(workflow)
        for index, tick in enumerate(decision.fire):
            if task is None:
                skipped[spec.id].append((tick, "task_not_registered"))
                continue
            execution_id = plan.ids[index] if plan.ids is not None else execution_id_for(spec.id, tick)
            item = {
                "id": execution_id,
                "task": workflow,
                "data": data,
                "timeout": task["timeout_seconds"],
                "schedule_id": spec.id,
                "tick": tick,
                "limit": task.get("flow_limit") or workflow,
                "priority": task.get("priority") or 0,
            }
            wanted.append((item, plan))
    created = executions.insert_scheduled(conn, [item for item, _ in wanted])
    last: dict[str, Fired] = {}
    for item, plan in wanted:
        if item["id"] in created:
            fired = Fired(item["id"], plan.spec.id, item["tick"], fire_time(plan.spec, item["tick"]))
            outcome.fired.append(fired)
            last[plan.spec.id] = fired
        else:
            outcome.already_fired.append(item["id"])
    store.record_progress(conn, {plan.spec.id: _progress(plan, last.get(plan.spec.id), skipped, now) for plan in plans})
    for plan in plans:
        outcome.skipped += skipped[plan.spec.id]
        outcome.buffered = plan.decision.buffered
        for tick, reason in skipped[plan.spec.id]:
            log.info(
                "schedule tick not fired",
                extra={"schedule_id": plan.spec.id, "tick": tick.isoformat(), "reason": reason},
            )
    return outcome


def target(spec: ScheduleSpec) -> tuple[str, dict[str, Any]]:
    """The workflow a tick runs and its input: the zart task itself, or the built-in one for a Celery task."""
    if spec.target_kind == "celery":
        return CELERY_TARGET_TASK, execution_input(spec.task, spec.args, spec.kwargs, spec.data)
    return spec.task, spec.data


def _progress(
    plan: Plan, last: Fired | None, skipped: dict[str, list[tuple[datetime, str]]], now: datetime
) -> dict[str, Any]:
    skip = skipped[plan.spec.id][-1] if skipped[plan.spec.id] else None
    return {
        "next_tick": plan.next_tick,
        "next_fire_at": None if plan.next_tick is None else fire_time(plan.spec, plan.next_tick),
        "buffered_tick": plan.decision.buffered,
        "last_tick": None if last is None else last.tick,
        "last_fired_at": None if last is None else now,
        "last_execution_id": None if last is None else last.execution_id,
        "last_lag": None if last is None else max(0.0, (now - last.fire_at).total_seconds()),
        "last_skip": None if skip is None else {"tick": skip[0].isoformat(), "reason": skip[1], "at": now.isoformat()},
    }


def finish(database_url: str, outcome: Outcome, publish: PublishMany) -> None:
    """After commit: cancel the cancelled runs' children, then ring the doorbells (a lost one is re-published by
    the sweeper)."""
    woken = [parent for execution_id in outcome.cancelled for parent in cancel_descendants(database_url, execution_id)]
    ready = woken + [fired.execution_id for fired in outcome.fired]
    if ready:
        publish(ready)
