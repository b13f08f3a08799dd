"""What a schedule is: its target, its timing (a cron expression or a fixed interval, in a timezone, between
optional bounds) and its policies, with the validation every front end shares.

Pure and light: no database, and the cron library is imported only when an expression is checked.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from zart.errors import InvalidData
from zart.limits import (
    MAX_ID_LENGTH,
    MOMENT_RULE,
    NAME_RULE,
    QUEUE_RULE,
    in_moment_range,
    is_name,
    is_queue,
    is_reserved_task,
)

OVERLAP_POLICIES = ("skip", "buffer_one", "allow_all", "cancel_previous")
CATCH_UP_POLICIES = ("latest", "all", "none")
TARGET_KINDS = ("zart", "celery")
SOURCES = ("code", "api", "cli", "beat")
CELERY_SEND_OPTIONS = ("queue",)  # a Celery target's `data`: the options it is sent with
DEFAULT_OVERLAP = "skip"
DEFAULT_CATCH_UP = "latest"
DEFAULT_CATCH_UP_WINDOW = 86_400.0  # "all" fires missed ticks of the last day unless told otherwise
MAX_JITTER = 86_400.0
MAX_SECONDS = 10 * 366 * 86_400  # intervals and catch-up windows: ten years is plenty, and keeps the arithmetic finite
# a fired execution's id is `<schedule id>@<tick>`: the schedule id leaves room for the tick (17 characters)
SCHEDULE_ID_MAX = MAX_ID_LENGTH - 40
SCHEDULE_ID_PATTERN = re.compile(rf"^[A-Za-z0-9][A-Za-z0-9._:~-]{{0,{SCHEDULE_ID_MAX - 1}}}$")


@dataclass(frozen=True)
class ScheduleSpec:
    """A schedule as declared (in code, by the CLI, the API or an imported beat entry)."""

    id: str
    task: str
    cron: str | None = None
    every: int | None = None  # whole seconds
    timezone: str = "UTC"
    data: dict[str, Any] = field(default_factory=dict)
    args: list[Any] = field(default_factory=list)  # Celery targets
    kwargs: dict[str, Any] = field(default_factory=dict)
    target_kind: str = "zart"
    start_at: datetime | None = None
    end_at: datetime | None = None
    overlap: str = DEFAULT_OVERLAP
    catch_up: str = DEFAULT_CATCH_UP
    catch_up_window: float = DEFAULT_CATCH_UP_WINDOW
    jitter: float = 0.0
    description: str | None = None

    def __post_init__(self) -> None:
        """Bounds are kept in UTC: Python never finds a local time inside a DST fold or gap equal to the same
        instant in another zone, so a declared start of 02:30 on a change day would never equal its stored
        copy, and every worker start would take the schedule's timing for changed."""
        for name in ("start_at", "end_at"):
            value = getattr(self, name)
            if isinstance(value, datetime) and value.tzinfo is not None and in_moment_range(value):
                object.__setattr__(self, name, value.astimezone(UTC))

    def timing(self) -> tuple[Any, ...]:
        """What decides the ticks: when it changes, the next tick is computed afresh."""
        return (self.cron, self.every, self.timezone, self.start_at, self.end_at)

    def as_row(self) -> dict[str, Any]:
        """Column values for the store."""
        return {
            "id": self.id,
            "task": self.task,
            "target_kind": self.target_kind,
            "data": self.data,
            "args": self.args,
            "kwargs": self.kwargs,
            "cron": self.cron,
            "interval_seconds": self.every,
            "timezone": self.timezone,
            "start_at": self.start_at,
            "end_at": self.end_at,
            "overlap": self.overlap,
            "catch_up": self.catch_up,
            "catch_up_window": self.catch_up_window,
            "jitter": self.jitter,
            "description": self.description,
        }

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> ScheduleSpec:
        return cls(
            id=row["id"],
            task=row["task"],
            cron=row["cron"],
            every=row["interval_seconds"],
            timezone=row["timezone"],
            data=row["data"] or {},
            args=row["args"] or [],
            kwargs=row["kwargs"] or {},
            target_kind=row["target_kind"],
            start_at=row["start_at"],
            end_at=row["end_at"],
            overlap=row["overlap"],
            catch_up=row["catch_up"],
            catch_up_window=row["catch_up_window"],
            jitter=row["jitter"],
            description=row["description"],
        )

    def with_changes(self, **changes: Any) -> ScheduleSpec:
        return replace(self, **changes)


def zone(name: str) -> Any:
    """The tzinfo for an IANA name (UTC as the fixed zone, which needs no DST handling)."""
    if name == "UTC":
        return UTC
    return ZoneInfo(name)


def check_schedule_id(schedule_id: Any) -> None:
    if not isinstance(schedule_id, str) or SCHEDULE_ID_PATTERN.fullmatch(schedule_id) is None:
        raise InvalidData(
            f"a schedule id must be 1 to {SCHEDULE_ID_MAX} characters: letters, digits and . _ : ~ - (not first)"
        )


def check_cron(expression: Any) -> None:
    from cronsim import CronSim, CronSimError

    if not isinstance(expression, str) or len(expression.split()) not in (5, 6):
        raise InvalidData("cron must have 5 fields (minute hour day month weekday), or 6 with seconds first")
    try:
        next(CronSim(expression, datetime(2000, 1, 1, tzinfo=UTC)))
    except CronSimError as exc:
        raise InvalidData(f"invalid cron expression {expression!r}: {exc}") from exc
    except StopIteration as exc:
        raise InvalidData(f"cron expression {expression!r} never matches") from exc


def check_timezone(name: Any) -> None:
    if not isinstance(name, str) or not name or len(name) > 64:
        raise InvalidData("timezone must be an IANA name such as Europe/Berlin")
    try:
        zone(name)
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:
        raise InvalidData(f"unknown timezone {name!r}: use an IANA name such as Europe/Berlin") from exc


def _aware(name: str, value: Any) -> None:
    if value is not None and (not isinstance(value, datetime) or value.tzinfo is None):
        raise InvalidData(f"{name} must be a date-time with a timezone (e.g. 2026-04-04T10:00:00Z)")
    if value is not None and not in_moment_range(value):
        raise InvalidData(f"{name} must lie {MOMENT_RULE}")


def validate(spec: ScheduleSpec) -> ScheduleSpec:
    """Every rule a schedule must keep, checked before anything is written; returns the spec for chaining."""
    check_schedule_id(spec.id)
    if not is_name(spec.task):
        raise InvalidData(f"a target task name must be {NAME_RULE}")
    if spec.target_kind not in TARGET_KINDS:
        raise InvalidData(f"target kind must be one of {', '.join(TARGET_KINDS)}")
    if (spec.cron is None) == (spec.every is None):
        raise InvalidData("give exactly one of cron and every (an interval in seconds)")
    if spec.cron is not None:
        check_cron(spec.cron)
    if spec.every is not None and (
        isinstance(spec.every, bool) or not isinstance(spec.every, int) or not 1 <= spec.every <= MAX_SECONDS
    ):
        raise InvalidData(f"every must be a whole number of seconds, from 1 to {MAX_SECONDS:,}")
    check_timezone(spec.timezone)
    _aware("start_at", spec.start_at)
    _aware("end_at", spec.end_at)
    if spec.start_at is not None and spec.end_at is not None and spec.end_at <= spec.start_at:
        raise InvalidData("end_at must be after start_at")
    if spec.overlap not in OVERLAP_POLICIES:
        raise InvalidData(f"overlap must be one of {', '.join(OVERLAP_POLICIES)}")
    if spec.catch_up not in CATCH_UP_POLICIES:
        raise InvalidData(f"catch_up must be one of {', '.join(CATCH_UP_POLICIES)}")
    if not _number(spec.catch_up_window) or not 0 < spec.catch_up_window <= MAX_SECONDS:
        raise InvalidData(f"catch_up_window must be a positive number of seconds, at most {MAX_SECONDS:,}")
    if not _number(spec.jitter) or not 0 <= spec.jitter <= MAX_JITTER:
        raise InvalidData(f"jitter must be between 0 and {MAX_JITTER:.0f} seconds")
    if spec.jitter:
        _check_jitter_within_gap(spec)
    if not isinstance(spec.data, dict):
        raise InvalidData("data must be a JSON object")
    if not isinstance(spec.args, list) or not isinstance(spec.kwargs, dict):
        raise InvalidData("args must be a JSON array and kwargs a JSON object")
    if spec.target_kind == "zart" and (spec.args or spec.kwargs):
        raise InvalidData("args and kwargs are for Celery targets; a zart task takes data")
    if spec.target_kind == "celery":
        unknown = sorted(set(spec.data) - set(CELERY_SEND_OPTIONS))
        queue = spec.data.get("queue")
        if unknown or (queue is not None and not is_queue(queue)):
            raise InvalidData(f"a Celery target's only option is its queue, a name of {QUEUE_RULE}")
        if is_reserved_task(spec.task):
            raise InvalidData(f"a Celery target may not be one of zart's or Celery's own tasks ({spec.task!r})")
    return spec


GAP_SAMPLE = 64  # a cron expression's coming ticks looked at for its shortest gap (two months of a daily one)


def shortest_gap(spec: ScheduleSpec) -> float | None:
    """Seconds between the two closest of the schedule's ticks (an interval's own length; for a cron expression,
    over its next GAP_SAMPLE instants); None when it has fewer than two."""
    if spec.every:
        return float(spec.every)
    from cronsim import CronSim

    assert spec.cron is not None
    start = max(datetime.now(UTC), spec.start_at or datetime.now(UTC)).astimezone(zone(spec.timezone))
    instants = [t.astimezone(UTC) for t in itertools.islice(CronSim(spec.cron, start), GAP_SAMPLE)]
    gaps = [(later - earlier).total_seconds() for earlier, later in itertools.pairwise(instants) if later > earlier]
    return min(gaps) if gaps else None


def _check_jitter_within_gap(spec: ScheduleSpec) -> None:
    """A tick's jitter must end before the next tick: ticks then fire in their order, and catch-up can tell a
    missed tick from an on-time one."""
    gap = shortest_gap(spec)
    if gap is not None and spec.jitter >= gap:
        raise InvalidData(f"jitter must be shorter than the time between two ticks ({gap:g} seconds here)")


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value == value


def target_options(fields: dict[str, Any]) -> dict[str, Any]:
    """A front end's `queue` folded into a Celery target's data (where the queue is kept); refused for zart."""
    fields = dict(fields)
    queue = fields.pop("queue", None)
    if queue is not None:
        if fields.get("target_kind", "zart") != "celery":
            raise InvalidData("queue is for Celery targets (target_kind celery)")
        fields["data"] = {**(fields.get("data") or {}), "queue": queue}
    return fields


def seconds_of(value: float | int | timedelta) -> Any:
    """An interval given as seconds or a timedelta, as whole seconds when it is one (else as given, to be refused)."""
    if isinstance(value, timedelta):
        value = value.total_seconds()
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value
