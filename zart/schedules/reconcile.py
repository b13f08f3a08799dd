"""Bringing the schedules declared in code into the store when a worker starts.

A new declaration is inserted; a changed one updates its row (its next tick is computed afresh only when its
timing changed, so a restart never skips or repeats a tick); a code-declared schedule whose module this worker
imports but which is no longer declared there is disabled (kept, with its history, until declared again). A
row of the same id created at runtime (CLI, API, beat import) is left alone, with a warning. Workers that
start together reconcile one after another.

Older code never undoes newer code. Each module's declaration set is recorded with a fingerprint (the code's
version, ZART_CODE_VERSION, the module's source and its declarations) and a generation from one counter: a
worker applies a module's declarations only when its set is new or is the latest one recorded. In a rolling
deploy an old worker that restarts after a new one presents a set seen before and superseded, so it leaves the
module's schedules as the newer code declared them. A rollback that means to re-apply an older set gives the
code a ZART_CODE_VERSION not used before.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from zart.declarations import fingerprint as fingerprint_of
from zart.declarations import latest_sets, module_source, warn_superseded
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
    superseded: list[str] = field(default_factory=list)  # modules whose declarations newer code replaced


def declared(tasks: Iterable[Any]) -> list[tuple[ScheduleSpec, str]]:
    """Each schedule of the registered tasks with the module that declares it."""
    return [(spec, task.handler.__module__) for task in tasks for spec in task.schedules]


def fingerprint(specs: Sequence[ScheduleSpec], source: bytes, code_version: str | None) -> str:
    """What identifies one release's declarations in a module."""
    rows = sorted((spec.as_row() for spec in specs), key=lambda row: row["id"])
    return fingerprint_of(rows, source, code_version)


def reconcile(
    database_url: str,
    declarations: list[tuple[ScheduleSpec, str]],
    modules: Iterable[str],
    code_version: str | None = None,
) -> Reconciled:
    result = Reconciled()
    by_module: dict[str, list[ScheduleSpec]] = {module: [] for module in modules}
    for spec, module in declarations:
        by_module.setdefault(module, []).append(spec)
    with db.transaction(database_url) as conn:
        store.serialise_reconciliation(conn)
        now = sweeps.database_now(conn)
        found = {module: fingerprint(specs, module_source(module), code_version) for module, specs in by_module.items()}
        # module → the generation of its latest set, which is this worker's
        current, superseded = latest_sets(conn, found, code_version)
        for module, latest in superseded.items():
            warn_superseded("schedules", module, code_version, latest)
            result.superseded.append(module)
        for spec, module in declarations:
            if module in current:
                _reconcile_one(conn, spec, module, current[module], now, result)
        names = {spec.id for spec, _ in declarations}
        stale = [
            row["id"]
            for row in store.declared_in_modules(conn, sorted(current))
            if row["id"] not in names and row["enabled"]
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


def _newer(conn: Connection, module: str, generation: int) -> bool:
    """Whether `module`'s latest declaration set is newer than a set of that generation."""
    latest = store.latest_declarations(conn, module)
    return latest is not None and latest["generation"] > generation


def first_tick(spec: ScheduleSpec, now: datetime) -> tuple[datetime | None, datetime | None]:
    """A new (or re-timed, or resumed) schedule's first tick after now, and when it fires."""
    tick = next_tick(spec, now)
    return tick, None if tick is None else fire_time(spec, tick)


def _reconcile_one(
    conn: Connection, spec: ScheduleSpec, module: str, generation: int, now: datetime, result: Reconciled
) -> None:
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
    owner = existing["declared_in"]
    if owner not in (None, module) and _newer(conn, owner, generation):
        # newer code declares it in another module (it moved, and this worker's module is gone from newer code)
        log.warning(
            "a schedule declared in code was moved by newer code to another module; it is left as declared there",
            extra={"schedule_id": spec.id, "declaring_module": module, "declared_in": owner},
        )
        result.superseded.append(module)
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
