"""What the CLI and the HTTP API call for schedules: create, read, list, update, pause, resume, trigger,
backfill and delete. Each operation validates everything before one short transaction; executions it fires
are published after commit (the sweeper re-publishes any the broker missed).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any

from zart.celery import target  # noqa: F401  (registers the workflow a Celery-target schedule fires)
from zart.errors import (
    InvalidData,
    ScheduleAlreadyExists,
    ScheduleDeclaredInCode,
    ScheduleNotFound,
    TaskNotRegistered,
    ZartError,
)
from zart.limits import MAX_LIST_LIMIT, MOMENT_RULE, SCHEDULES_ONLY_TASKS, in_moment_range
from zart.schedules import firing
from zart.schedules.plan import decide, fire_time
from zart.schedules.reconcile import first_tick
from zart.schedules.spec import SCHEDULE_ID_PATTERN, ScheduleSpec, validate
from zart.schedules.ticks import ONE_MICROSECOND, ticks
from zart.schema import validation_errors
from zart.service import ZartService, check_storable, shown_id
from zart.store import admin as audit
from zart.store import db, sweeps
from zart.store import schedules as store

UPCOMING = 5
MAX_BACKFILL_TICKS = 10_000
# what `update` may change: the definition, except what the schedule is (its id and kind of target)
UPDATABLE = tuple(sorted(set(ScheduleSpec.__dataclass_fields__) - {"id", "target_kind"}))


def check_lookup(schedule_id: Any) -> None:
    if not isinstance(schedule_id, str) or SCHEDULE_ID_PATTERN.fullmatch(schedule_id) is None:
        raise ScheduleNotFound(shown_id(schedule_id))


class ScheduleService:
    def __init__(self, service: ZartService) -> None:
        self.service = service
        self._url = service.settings.database_url

    # ------------------------------------------------------------ reading

    def get(self, schedule_id: str) -> dict[str, Any]:
        """The schedule with its last outcome and its next fire times."""
        check_lookup(schedule_id)
        with db.autocommit(self._url) as conn:
            row = store.get(conn, schedule_id)
        if row is None:
            raise ScheduleNotFound(schedule_id)
        return with_upcoming(row)

    def list(
        self, *, task: str | None = None, include_disabled: bool = False, limit: int = 50, offset: int = 0
    ) -> tuple[list[dict[str, Any]], int]:
        if not 1 <= limit <= MAX_LIST_LIMIT:
            raise InvalidData(f"limit must be between 1 and {MAX_LIST_LIMIT}")
        if offset < 0:
            raise InvalidData("offset must not be negative")
        with db.autocommit(self._url) as conn:
            return store.list_schedules(
                conn, task=task, source=None, include_disabled=include_disabled, limit=limit, offset=offset
            )

    def firing_figures(self) -> dict[str, float]:
        """For /metrics: how overdue the most overdue unfired tick is, and the largest recent firing lag."""
        with db.autocommit(self._url) as conn:
            return store.firing_figures(conn)

    # ------------------------------------------------------------ changing

    def create(
        self,
        spec: ScheduleSpec,
        *,
        paused: bool = False,
        source: str = "api",
        triggered_by: str | None = None,
        declared_in: str | None = None,
    ) -> dict[str, Any]:
        with db.transaction(self._url) as conn:
            self._check_new(conn, spec)
            now = sweeps.database_now(conn)
            tick, fire_at = first_tick(spec, now)
            row = store.insert(
                conn,
                spec.id,
                spec.as_row(),
                source=source,
                declared_in=declared_in,
                paused=paused,
                next_tick=tick,
                next_fire_at=fire_at,
            )
            if row is None:
                raise ScheduleAlreadyExists(f"a schedule with ID {spec.id} already exists")
            _audit(conn, "create", spec.id, triggered_by)
        return self.get(spec.id)

    def update(self, schedule_id: str, changes: dict[str, Any], triggered_by: str | None = None) -> dict[str, Any]:
        """Change some fields; a change of timing computes the next tick afresh."""
        unknown = sorted(set(changes) - set(UPDATABLE))
        if unknown:
            raise InvalidData(f"cannot update {', '.join(unknown)}")
        check_lookup(schedule_id)
        with db.transaction(self._url) as conn:
            row = self._locked(conn, schedule_id)
            self._refuse_code(row, "update")
            stored = ScheduleSpec.from_row(row)
            if "cron" in changes and changes["cron"] is not None:
                changes = {"every": None, **changes}
            if "every" in changes and changes["every"] is not None:
                changes = {"cron": None, **changes}
            spec = validate(replace(stored, **changes))
            check_storable("data", spec.data)
            self._check_target(conn, spec)
            if spec.timing() != stored.timing():
                tick, fire_at = first_tick(spec, sweeps.database_now(conn))
            else:
                tick = row["next_tick"]
                fire_at = None if tick is None else fire_time(spec, tick)
            store.redefine(conn, schedule_id, spec.as_row(), next_tick=tick, next_fire_at=fire_at)
            _audit(conn, "update", schedule_id, triggered_by, sorted(changes))
        return self.get(schedule_id)

    def pause(self, schedule_id: str, triggered_by: str | None = None) -> dict[str, Any]:
        """Stop firing (a buffered tick waits too); nothing fired before is touched."""
        return self._set_paused(schedule_id, True, triggered_by)

    def resume(self, schedule_id: str, triggered_by: str | None = None) -> dict[str, Any]:
        """Fire again from the next tick after now: ticks that fell in the pause are not caught up (backfill
        them if they are wanted)."""
        return self._set_paused(schedule_id, False, triggered_by)

    def _set_paused(self, schedule_id: str, paused: bool, triggered_by: str | None) -> dict[str, Any]:
        check_lookup(schedule_id)
        with db.transaction(self._url) as conn:
            row = self._locked(conn, schedule_id)
            tick, fire_at = row["next_tick"], row["next_fire_at"]
            if row["paused"] and not paused:
                tick, fire_at = first_tick(ScheduleSpec.from_row(row), sweeps.database_now(conn))
            store.set_paused(conn, schedule_id, paused, tick, fire_at)
            _audit(conn, "pause" if paused else "resume", schedule_id, triggered_by)
        return self.get(schedule_id)

    def delete(self, schedule_id: str, triggered_by: str | None = None) -> dict[str, Any]:
        """Remove a schedule; its executions stay (they keep their schedule id and tick)."""
        check_lookup(schedule_id)
        with db.transaction(self._url) as conn:
            row = self._locked(conn, schedule_id)
            if row["enabled"]:
                self._refuse_code(row, "delete")
            store.delete(conn, schedule_id)
            _audit(conn, "delete", schedule_id, triggered_by)
        return {"schedule_id": schedule_id, "deleted": True}

    # ------------------------------------------------------------ firing

    def trigger(self, schedule_id: str, triggered_by: str | None = None) -> firing.Outcome:
        """Fire once now, outside the timing, under the schedule's overlap policy (`buffer_one` and `skip` both
        decline while a run is active)."""
        check_lookup(schedule_id)
        with db.transaction(self._url) as conn:
            row = self._locked(conn, schedule_id)
            spec = ScheduleSpec.from_row(row)
            now = sweeps.database_now(conn)
            policy = "skip" if spec.overlap == "buffer_one" else spec.overlap
            decision = decide(policy, [now], bool(row["active"]), None)
            decision.buffered = row["buffered_tick"]  # a manual run leaves a buffered tick where it is
            plan = firing.Plan(spec, decision, row["next_tick"], ids=[firing.manual_execution_id(spec.id)])
            outcome = firing.apply(conn, [plan], now, firing.TaskLookup(conn))
            _audit(conn, "trigger", schedule_id, triggered_by)
        firing.finish(self._url, outcome, self._publish_all)
        return outcome

    def backfill(
        self,
        schedule_id: str,
        start: datetime,
        end: datetime,
        overlap: str | None = None,
        triggered_by: str | None = None,
    ) -> firing.Outcome:
        """Fire the ticks in [start, end] (at most 10,000, none in the future) under the overlap policy (the
        schedule's unless given); ticks that already fired are not fired again."""
        check_lookup(schedule_id)
        for name, value in (("from", start), ("to", end)):
            if value.tzinfo is None:
                raise InvalidData(f"--{name} must carry a timezone (e.g. 2026-04-04T10:00:00Z)")
            if not in_moment_range(value):
                raise InvalidData(f"--{name} must lie {MOMENT_RULE}")
        if end < start:
            raise InvalidData("the backfill window ends before it starts")
        just_before = start - ONE_MICROSECOND  # in range (checked above), so an instant earlier is too
        with db.transaction(self._url) as conn:
            row = self._locked(conn, schedule_id)
            spec = ScheduleSpec.from_row(row)
            now = sweeps.database_now(conn)
            if end > now:
                raise InvalidData("a backfill window must lie in the past")
            policy = overlap or spec.overlap
            if policy not in ("skip", "buffer_one", "allow_all", "cancel_previous"):
                raise InvalidData("overlap must be one of skip, buffer_one, allow_all, cancel_previous")
            window = list(ticks(spec, just_before, end, MAX_BACKFILL_TICKS + 1))
            if len(window) > MAX_BACKFILL_TICKS:
                raise InvalidData(f"the window holds more than {MAX_BACKFILL_TICKS:,} ticks; backfill it in parts")
            decision = decide(policy, window, bool(row["active"]), row["buffered_tick"])
            outcome = firing.apply(conn, [firing.Plan(spec, decision, row["next_tick"])], now, firing.TaskLookup(conn))
            _audit(conn, "backfill", schedule_id, triggered_by)
        firing.finish(self._url, outcome, self._publish_all)
        return outcome

    # ------------------------------------------------------------ replacing celery beat

    def import_beat(self, app_path: str, *, dry_run: bool = False, prefix: str = "") -> list[dict[str, Any]]:
        """Create a schedule per entry of a Celery app's beat_schedule (or, with `dry_run`, say what would be
        created). Entries zart cannot express are refused with the reason; importing again changes nothing.
        Each result names the entry's `dropped_options`: send options its schedule cannot carry.

        As beat itself does when an entry leaves its config, a schedule an earlier import of this app (named as
        here, with this prefix) created whose entry is gone is disabled, kept with its history (result
        `disabled`), and enabled again if the entry comes back. An app with no entries at all disables nothing:
        that is more likely a config beat loads elsewhere than a wish to stop everything."""
        from zart.schedules import beat

        results = []
        app = beat.load_app(app_path)
        entries = beat.read_entries(app, prefix)
        for entry in entries:
            result = {"name": entry.name, "schedule_id": entry.schedule_id, "task": entry.task, "timing": entry.timing}
            try:
                spec = self._beat_target(entry, app)
                result["result"] = self._import_one(spec, dry_run, app_path)
                result["dropped_options"] = entry.dropped_options(spec.target_kind)
            except ZartError as exc:
                result.update(result="refused", reason=exc.message, dropped_options=[])
            results.append(result)
        if entries:
            results += self._disable_removed(app_path, prefix, {entry.schedule_id for entry in entries}, dry_run)
        return results

    def _disable_removed(self, app_path: str, prefix: str, kept: set[str], dry_run: bool) -> list[dict[str, Any]]:
        """Disable the schedules imported from this app whose entries are gone; one result each."""
        from zart.schedules import beat

        with db.transaction(self._url) as conn:
            gone = [row for row in store.imported_from(conn, app_path, prefix) if row["id"] not in kept]
            if gone and not dry_run:
                store.disable(conn, [row["id"] for row in gone])
        return [
            {
                "name": None,
                "schedule_id": row["id"],
                "task": row["task"],
                "timing": beat.timing_of(ScheduleSpec.from_row(row)),
                "result": "would disable" if dry_run else "disabled",
                "reason": "its entry is no longer in the app's beat_schedule",
                "dropped_options": [],
            }
            for row in gone
        ]

    def _beat_target(self, entry: Any, app: Any) -> ScheduleSpec:
        """A zart task by that name becomes a zart target (kwargs as its data); a task of the Celery app stays a
        Celery target, sent to the queue Celery would route it to."""
        if entry.spec is None:
            raise InvalidData(entry.refused)
        spec: ScheduleSpec = entry.spec
        with db.autocommit(self._url) as conn:
            try:
                self.service._task_definition(conn, spec.task)
            except TaskNotRegistered:
                if spec.task not in app.tasks:
                    raise InvalidData(f"'{spec.task}' is neither a zart task nor a task of the Celery app") from None
                return spec
        if spec.args:
            raise InvalidData("a zart task takes one JSON object (the entry's kwargs), not positional args")
        return replace(spec, target_kind="zart", data=spec.kwargs, kwargs={})

    def _import_one(self, spec: ScheduleSpec, dry_run: bool, app_path: str) -> str:
        """`app_path` is kept with the schedule (as `declared_in`), so a later import of that app can tell which
        schedules it made."""
        with db.autocommit(self._url) as conn:
            existing = store.get(conn, spec.id)
        if existing is not None:
            ours = existing["source"] == "beat" and existing["declared_in"] in (None, app_path)
            if ours and not existing["enabled"]:  # disabled when its entry left, and back now
                return self._enable_again(spec, dry_run, app_path)
            if ScheduleSpec.from_row(existing) == spec:
                if ours and existing["declared_in"] is None and not dry_run:
                    with db.autocommit(self._url) as conn:
                        store.adopt_import(conn, spec.id, app_path)
                return "unchanged"
            raise ScheduleAlreadyExists(f"a different schedule already has the id {spec.id}")
        if dry_run:
            with db.autocommit(self._url) as conn:
                self._check_new(conn, spec)
            return "would create"
        self.create(spec, source="beat", declared_in=app_path)
        return "created"

    def _enable_again(self, spec: ScheduleSpec, dry_run: bool, app_path: str) -> str:
        """An imported schedule disabled when its entry left: the entry's definition, from the next tick."""
        with db.transaction(self._url) as conn:
            self._check_new(conn, spec)
            if dry_run:
                return "would enable"
            row = store.lock(conn, spec.id)
            if row is None or row["enabled"]:  # deleted or enabled meanwhile: the next import sees which
                raise ScheduleAlreadyExists(f"schedule {spec.id} changed while it was imported; import again")
            tick, fire_at = first_tick(spec, sweeps.database_now(conn))
            store.redefine(conn, spec.id, spec.as_row(), next_tick=tick, next_fire_at=fire_at, declared_in=app_path)
        return "enabled"

    # ------------------------------------------------------------ helpers

    def _publish_all(self, execution_ids: list[str]) -> None:
        for execution_id in execution_ids:
            self.service.publish(execution_id)

    @staticmethod
    def _locked(conn: Any, schedule_id: str) -> dict[str, Any]:
        row = store.lock(conn, schedule_id)
        if row is None:
            raise ScheduleNotFound(schedule_id)
        return row

    @staticmethod
    def _refuse_code(row: dict[str, Any], action: str) -> None:
        if row["source"] == "code":
            raise ScheduleDeclaredInCode(
                f"schedule {row['id']} is declared in code ({row['declared_in']}); {action} it there "
                "(workers rewrite it from the code when they start)"
            )

    def _check_new(self, conn: Any, spec: ScheduleSpec) -> None:
        """Every check a new schedule passes before it is written (and a dry-run import, which writes nothing)."""
        validate(spec)
        check_storable("data", spec.data)
        self._check_target(conn, spec)

    def _check_target(self, conn: Any, spec: ScheduleSpec) -> None:
        """A zart target must be a registered task and `data` must satisfy its schema. A Celery task's name cannot
        be checked here (zart does not load the fleet's app): one nobody runs fails its dispatch, visibly."""
        if spec.target_kind == "celery":
            check_storable("args and kwargs", [spec.args, spec.kwargs])
            return
        if spec.task in SCHEDULES_ONLY_TASKS:  # its data would name the Celery task, unchecked as one
            raise InvalidData(f"'{spec.task}' runs Celery targets: create the schedule with target_kind celery")
        schema, _ = self.service._task_definition(conn, spec.task)  # raises TaskNotRegistered
        problems = validation_errors(schema, spec.data)
        if problems:
            raise InvalidData("data: " + "; ".join(problems))


def _audit(conn: Any, action: str, schedule_id: str, triggered_by: str | None, fields: list[str] | None = None) -> None:
    """Who changed a schedule, in the audit trail: a front end that acts for a caller (the API: the bearer token's
    name) passes its name, in the transaction that makes the change."""
    if triggered_by is None:
        return
    details: dict[str, Any] = {"schedule_id": schedule_id, **({"fields": fields} if fields else {})}
    audit.record_action(conn, action=f"schedule-{action}", triggered_by=triggered_by, details=details)


def with_upcoming(row: dict[str, Any], count: int = UPCOMING) -> dict[str, Any]:
    """The row plus the fire times of its next ticks (none while paused or disabled)."""
    spec = ScheduleSpec.from_row(row)
    upcoming: list[datetime] = []
    tick = row["next_tick"]
    if row["enabled"] and not row["paused"] and tick is not None:
        upcoming.append(fire_time(spec, tick))
        upcoming += [fire_time(spec, t) for t in ticks(spec, tick, datetime.max.replace(tzinfo=tick.tzinfo), count - 1)]
    return {**row, "upcoming": upcoming}
