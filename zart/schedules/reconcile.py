"""Bringing the schedules declared in code into the store when a worker starts.

A new declaration is inserted; a changed one updates its row (its next tick is computed afresh only when its
timing changed, so a restart never skips or repeats a tick); a code-declared schedule whose module this worker
imports but which is no longer declared there is disabled (kept, with its history, until declared again). A
row of the same id created at runtime (CLI, API, beat import) is left alone, with a warning. Workers that
start together reconcile one after another.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from zart.schedules.plan import fire_time
from zart.schedules.spec import ScheduleSpec
from zart.schedules.ticks import next_tick
from zart.store import db, sweeps
from zart.store import schedules as store

log = logging.getLogger(__name__)


@dataclass
class Reconciled:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    disabled: list[str] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)


def declared(tasks: Iterable[Any]) -> list[tuple[ScheduleSpec, str]]:
    """Each schedule of the registered tasks with the module that declares it."""
    return [(spec, task.handler.__module__) for task in tasks for spec in task.schedules]


def reconcile(database_url: str, declarations: list[tuple[ScheduleSpec, str]], modules: Iterable[str]) -> Reconciled:
    result = Reconciled()
    with db.transaction(database_url) as conn:
        store.serialise_reconciliation(conn)
        now = sweeps.database_now(conn)
        for spec, module in declarations:
            _reconcile_one(conn, spec, module, now, result)
        names = {spec.id for spec, _ in declarations}
        scope = sorted(set(modules) | {module for _, module in declarations})
        stale = [
            row["id"] for row in store.declared_in_modules(conn, scope) if row["id"] not in names and row["enabled"]
        ]
        if stale:
            store.disable(conn, stale)
            result.disabled = stale
    if result.created or result.updated or result.disabled:
        log.info(
            "schedules reconciled",
            extra={
                "schedules_created": result.created,
                "schedules_updated": result.updated,
                "schedules_disabled": result.disabled,
            },
        )
    return result


def first_tick(spec: ScheduleSpec, now: datetime) -> tuple[datetime | None, datetime | None]:
    """A new (or re-timed, or resumed) schedule's first tick after now, and when it fires."""
    tick = next_tick(spec, now)
    return tick, None if tick is None else fire_time(spec, tick)


def _reconcile_one(conn: Connection, spec: ScheduleSpec, module: str, now: datetime, result: Reconciled) -> None:
    existing = store.lock(conn, spec.id)
    if existing is None:
        tick, fire_at = first_tick(spec, now)
        store.insert(
            conn,
            spec.id,
            spec.as_row(),
            source="code",
            declared_in=module,
            paused=False,
            next_tick=tick,
            next_fire_at=fire_at,
        )
        result.created.append(spec.id)
        return
    if existing["source"] != "code":
        log.warning(
            "a schedule declared in code has the id of one created at runtime; the runtime one is kept",
            extra={"schedule_id": spec.id, "source": existing["source"]},
        )
        result.conflicts.append(spec.id)
        return
    stored = ScheduleSpec.from_row(existing)
    if stored == spec and existing["enabled"] and existing["declared_in"] == module:
        result.unchanged.append(spec.id)
        return
    if stored.timing() != spec.timing() or not existing["enabled"]:
        tick, fire_at = first_tick(spec, now)
    else:
        tick = existing["next_tick"]
        fire_at = None if tick is None else fire_time(spec, tick)
    store.redefine(conn, spec.id, spec.as_row(), next_tick=tick, next_fire_at=fire_at, declared_in=module)
    result.updated.append(spec.id)
