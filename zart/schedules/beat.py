"""Reading a Celery app's `beat_schedule`, so a team can stop running `celery beat`.

Each entry becomes a schedule definition or a refusal with its reason: `crontab` becomes a 5-field cron in the
app's timezone, `timedelta`, a number of seconds and `schedule(run_every=...)` become whole-second intervals;
`solar`, sub-second or fractional intervals and custom schedule classes have no equivalent and are refused.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from zart.errors import InvalidData
from zart.schedules.spec import SCHEDULE_ID_MAX, ScheduleSpec, validate


@dataclass(frozen=True)
class BeatEntry:
    """One `beat_schedule` entry: what it becomes, or why it cannot."""

    name: str
    schedule_id: str
    task: str
    spec: ScheduleSpec | None
    refused: str | None = None
    # the entry's `options` (sorted): a Celery target honours only `queue`; a zart target none of them
    options: tuple[str, ...] = ()

    def dropped_options(self, target_kind: str) -> list[str]:
        """The entry's send options a schedule of `target_kind` cannot carry (expires, priority, exchange,
        routing_key, headers, ...): a Celery target is sent to its queue with nothing more, a zart task goes
        where its own routing sends it. Named to the user rather than lost silently."""
        honoured = ("queue",) if target_kind == "celery" else ()
        return [name for name in self.options if name not in honoured]

    @property
    def timing(self) -> str:
        return "-" if self.spec is None else timing_of(self.spec)


def timing_of(spec: ScheduleSpec) -> str:
    return f"cron {spec.cron} ({spec.timezone})" if spec.cron else f"every {spec.every}s"


def load_app(app_path: str) -> Any:
    """The Celery app named as `-A` names it to `celery` (`proj`, `proj.celery`, `proj.celery:app`)."""
    from celery.app.utils import find_app

    try:
        return find_app(app_path)
    except Exception as exc:  # any import failure: one line the user can act on
        raise InvalidData(f"cannot load the Celery app {app_path!r}: {type(exc).__name__}: {exc}") from exc


def schedule_id_for(name: str, prefix: str = "") -> str:
    """A schedule id from an entry's name: characters ids cannot hold become `-`."""
    cleaned = re.sub(r"[^A-Za-z0-9._:~-]+", "-", f"{prefix}{name}").strip("-._:~") or "beat-entry"
    return cleaned[:SCHEDULE_ID_MAX]


def read_entries(app: Any, prefix: str = "") -> list[BeatEntry]:
    beat_schedule = app.conf.beat_schedule or {}
    if not isinstance(beat_schedule, Mapping):
        raise InvalidData("the app's beat_schedule is not a mapping of entry names to entries")
    # with enable_utc off and no timezone, Celery reads crontabs in the beat host's local time: unknown here
    timezone = str(app.conf.timezone) if app.conf.timezone else "UTC" if app.conf.enable_utc else None
    entries: list[BeatEntry] = []
    named: dict[str, str] = {}  # schedule id -> the entry that took it
    for name, entry in beat_schedule.items():
        read = _entry(app, str(name), entry, timezone, prefix)
        taken_by = named.setdefault(read.schedule_id, read.name)
        if taken_by != read.name:  # two names that differ only in characters an id cannot hold, or past its length
            clash = f"entry {taken_by!r} becomes the same schedule id; rename one of them"
            read = BeatEntry(read.name, read.schedule_id, read.task, None, clash)
        entries.append(read)
    return entries


def _entry(app: Any, name: str, entry: Any, timezone: str | None, prefix: str) -> BeatEntry:
    schedule_id = schedule_id_for(name, prefix)
    task = entry.get("task") if isinstance(entry, Mapping) else None
    if not isinstance(task, str) or not task:
        return BeatEntry(name, schedule_id, str(task), None, "the entry names no task")
    entry_options = entry.get("options") or {}
    try:
        if not isinstance(entry_options, Mapping):
            raise InvalidData("options must be a mapping")
        timing = _timing(entry.get("schedule"), timezone)
        args, kwargs = _arguments(entry)
        options = {"queue": _queue(app, task, args, kwargs, entry_options)}
        spec = validate(
            ScheduleSpec(
                id=schedule_id, task=task, target_kind="celery", args=args, kwargs=kwargs, data=options, **timing
            )
        )
    except InvalidData as exc:
        return BeatEntry(name, schedule_id, task, None, exc.message)
    return BeatEntry(name, schedule_id, task, spec, options=tuple(sorted(str(key) for key in entry_options)))


def _arguments(entry: Mapping[str, Any]) -> tuple[list[Any], dict[str, Any]]:
    """The entry's args and kwargs as they read back from JSON (a tuple becomes a list), so a later import
    compares like with like; refused when they are not JSON."""
    args, kwargs = entry.get("args") or (), entry.get("kwargs") or {}
    if not isinstance(args, list | tuple) or not isinstance(kwargs, Mapping):
        raise InvalidData("args must be a list or a tuple, and kwargs a mapping")
    try:
        return json.loads(json.dumps(list(args))), json.loads(json.dumps(dict(kwargs)))
    except (TypeError, ValueError) as exc:
        raise InvalidData(f"args and kwargs must be JSON: {exc}") from exc


def _queue(app: Any, task: str, args: list[Any], kwargs: dict[str, Any], options: Mapping[str, Any]) -> str:
    """The queue Celery itself would send the task to: the entry's options, the task's, the app's task_routes."""
    merged: dict[str, Any] = {}
    registered = app.tasks.get(task)
    if registered is not None:
        merged.update(registered._get_exec_options())
    merged.update(options)
    queue = app.amqp.router.route(merged, task, args, kwargs).get("queue")
    return str(getattr(queue, "name", queue) or app.conf.task_default_queue)


def _timing(schedule: Any, timezone: str | None) -> dict[str, Any]:
    """The schedule's cron (in `timezone`, None when the app's crontabs follow the beat host's local time) or
    interval."""
    from celery.schedules import crontab, solar
    from celery.schedules import schedule as interval

    if isinstance(schedule, solar):
        raise InvalidData(f"solar schedules ({schedule.event}) follow the sun; no cron or interval expresses them")
    if isinstance(schedule, crontab):
        if timezone is None:
            raise InvalidData(
                "the app has enable_utc off and no timezone, so Celery reads its crontabs in the local time of the "
                "host beat runs on, which zart cannot know: set the app's timezone (e.g. Europe/Berlin) and import "
                "again"
            )
        fields = ("_orig_minute", "_orig_hour", "_orig_day_of_month", "_orig_month_of_year", "_orig_day_of_week")
        cron = [_cron_field(getattr(schedule, f)) for f in fields]
        if cron[2] != "*" and cron[4] != "*":
            raise InvalidData(
                f"day_of_month={cron[2]!r} with day_of_week={cron[4]!r}: Celery fires when both match, a cron "
                "expression when either does, so none says the same (split it, or check the day in the workflow)"
            )
        return {"cron": " ".join(cron), "timezone": timezone}
    if isinstance(schedule, interval) and type(schedule) is interval:
        schedule = schedule.run_every
    if isinstance(schedule, timedelta):
        schedule = schedule.total_seconds()
    if isinstance(schedule, int | float) and not isinstance(schedule, bool):
        if schedule < 1 or float(schedule) != int(schedule):
            raise InvalidData(f"an interval of {schedule} s: zart intervals are whole seconds, at least 1")
        return {"every": int(schedule)}
    raise InvalidData(f"a {type(schedule).__name__} schedule has no cron or interval equivalent")


def _cron_field(value: Any) -> str:
    if isinstance(value, str | int):
        return str(value)
    if isinstance(value, Iterable):
        return ",".join(str(v) for v in sorted(value))
    raise InvalidData(f"a crontab field {value!r} cannot be written as cron")
