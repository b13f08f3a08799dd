"""Schedules declared in code: `@zart.task(..., schedule=zart.cron(...))` or `schedule=zart.every(...)`.

A declaration names no task; the decorator binds it to the task it decorates. Workers reconcile the
declarations into the store when they start (see zart.schedules.reconcile).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from zart.errors import InvalidData
from zart.schedules.spec import (
    DEFAULT_CATCH_UP,
    DEFAULT_CATCH_UP_WINDOW,
    DEFAULT_OVERLAP,
    ScheduleSpec,
    seconds_of,
    validate,
)
from zart.schema import storage_problem, validation_errors


@dataclass(frozen=True)
class Declaration:
    """The timing and policies of a schedule, waiting for the task it will fire."""

    cron: str | None = None
    every: Any = None
    tz: str = "UTC"
    id: str | None = None
    data: dict[str, Any] = field(default_factory=dict)
    start: datetime | None = None
    end: datetime | None = None
    overlap: str = DEFAULT_OVERLAP
    catch_up: str = DEFAULT_CATCH_UP
    catch_up_window: float | timedelta = DEFAULT_CATCH_UP_WINDOW
    jitter: float | timedelta = 0.0
    description: str | None = None

    def bind(self, task_name: str) -> ScheduleSpec:
        """The schedule of `task_name`; its id defaults to the task's name."""
        return validate(
            ScheduleSpec(
                id=self.id or task_name,
                task=task_name,
                cron=self.cron,
                every=None if self.every is None else seconds_of(self.every),
                timezone=self.tz,
                data=dict(self.data),
                start_at=self.start,
                end_at=self.end,
                overlap=self.overlap,
                catch_up=self.catch_up,
                catch_up_window=float(seconds_of(self.catch_up_window)),
                jitter=float(seconds_of(self.jitter)),
                description=self.description,
            )
        )


def cron(expression: str, *, tz: str = "UTC", **options: Any) -> Declaration:
    """Fire on a cron expression (5 fields, or 6 with seconds first) evaluated in the IANA timezone `tz`.

    Options (all keywords): id, data, start, end, overlap, catch_up, catch_up_window, jitter, description.
    """
    return Declaration(cron=expression, tz=tz, **options)


def every(interval: float | timedelta, **options: Any) -> Declaration:
    """Fire every `interval` (whole seconds, or a timedelta), counted from `start` or else the Unix epoch.

    Options as for `cron`, except `tz` (an interval is elapsed time, whatever the zone).
    """
    return Declaration(every=interval, **options)


def bind_all(
    task_name: str,
    schedule: Declaration | list[Declaration] | tuple[Declaration, ...] | None,
    schema: dict[str, Any] | None = None,
) -> tuple[ScheduleSpec, ...]:
    """The task's schedules, validated; two with one id are refused (give each its own `id=`)."""
    if schedule is None:
        return ()
    declarations = list(schedule) if isinstance(schedule, list | tuple) else [schedule]
    specs = tuple(declaration.bind(task_name) for declaration in declarations)
    for spec in specs:
        check_data(spec, schema)
    ids = [spec.id for spec in specs]
    if len(set(ids)) != len(ids):
        raise ValueError(f"task '{task_name}' declares several schedules with one id; give each its own id=")
    return specs


def check_data(spec: ScheduleSpec, schema: dict[str, Any] | None) -> None:
    """A schedule's data is the input of each execution it fires: it must be storable and conform to the task's
    schema, as the API requires of a schedule it creates. Checked as the code is imported, so a bad declaration
    neither fires input the task refuses nor fails the reconciliation of the worker's other schedules."""
    problem = storage_problem(spec.data)
    if problem is not None:
        raise InvalidData(f"schedule {spec.id}: its data cannot be stored: {problem}")
    problems = validation_errors(schema, spec.data)
    if problems:
        raise InvalidData(f"schedule {spec.id}: " + "; ".join(problems))
