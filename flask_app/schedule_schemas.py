"""Marshmallow schemas of /schedules: what the API accepts and returns (shaped by `zart.views.schedule_view`)."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import fields, validate

from flask_app.schemas import NAME, WholeMatch, path_parameter, timestamp
from zart.schedules.spec import CATCH_UP_POLICIES, MAX_JITTER, OVERLAP_POLICIES, SCHEDULE_ID_MAX, SCHEDULE_ID_PATTERN

SCHEDULE_ID_PARAMETER = path_parameter(
    "schedule_id", SCHEDULE_ID_PATTERN.pattern, "Letters, digits and `._:~-` (not first).", SCHEDULE_ID_MAX
)
MAX_LIST_LIMIT = 500


class Strict(ma.Schema):
    class Meta:
        unknown = ma.RAISE


def _definition(required: bool) -> dict[str, fields.Field]:
    """The fields that define a schedule; on create the task is required, on update nothing is. An update
    leaves a field out unless the body names it, so an explicit `null` clears an optional one (an end, a
    start, a description) instead of being taken for "not given"."""
    return {
        "task": fields.String(
            required=required, validate=NAME, metadata={"description": "The zart task each tick runs."}
        ),
        "cron": fields.String(
            allow_none=True,
            validate=validate.Length(max=200),
            metadata={"description": "5 fields, or 6 with seconds first.", "example": "*/5 * * * *"},
        ),
        "every": fields.Float(
            allow_none=True,
            metadata={"description": "Interval in whole seconds (≥ 1), instead of cron.", "example": 300},
        ),
        "timezone": fields.String(
            validate=validate.Length(min=1, max=64),
            metadata={"description": "IANA timezone the cron expression is read in.", "example": "Europe/Berlin"},
            **({"load_default": "UTC"} if required else {}),
        ),
        "data": fields.Dict(
            error_messages={"invalid": "Must be a JSON object."},
            metadata={"description": "Input of each execution."},
            **({"load_default": dict} if required else {}),
        ),
        "start_at": fields.AwareDateTime(format="iso", allow_none=True),
        "end_at": fields.AwareDateTime(format="iso", allow_none=True),
        "overlap": fields.String(
            validate=validate.OneOf(OVERLAP_POLICIES),
            metadata={"description": "What a tick does while a run of the schedule is still active."},
            **({"load_default": "skip"} if required else {}),
        ),
        "catch_up": fields.String(
            validate=validate.OneOf(CATCH_UP_POLICIES),
            metadata={"description": "What happens to ticks missed while no worker swept."},
            **({"load_default": "latest"} if required else {}),
        ),
        "catch_up_window": fields.Float(
            validate=validate.Range(min=0, min_inclusive=False),
            metadata={"description": "Seconds back that `all` catches up."},
            **({"load_default": 86_400.0} if required else {}),
        ),
        "jitter": fields.Float(
            validate=validate.Range(0, MAX_JITTER),
            metadata={"description": "Each tick fires up to this many seconds late (derived, not random per run)."},
            **({"load_default": 0.0} if required else {}),
        ),
        "description": fields.String(allow_none=True, validate=validate.Length(max=2000)),
    }


ScheduleCreate = Strict.from_dict(
    {
        "schedule_id": fields.String(
            required=True, validate=WholeMatch(SCHEDULE_ID_PATTERN), metadata={"example": "nightly-report"}
        ),
        **_definition(required=True),
        "paused": fields.Boolean(load_default=False),
        "target_kind": fields.String(
            load_default="zart",
            validate=validate.OneOf(("zart", "celery")),
            metadata={"description": "`celery`: `task` names a task of your Celery fleet, sent as a remote step."},
        ),
        "args": fields.List(fields.Raw(), load_default=list, metadata={"description": "A Celery task's args."}),
        "kwargs": fields.Dict(load_default=dict, metadata={"description": "A Celery task's kwargs."}),
        "queue": fields.String(
            load_default=None,
            allow_none=True,
            validate=validate.Length(max=200),
            metadata={"description": "The queue a Celery task is sent to (default: the zart workers' queue)."},
        ),
    },
    name="ScheduleCreate",
)
ScheduleUpdate = Strict.from_dict(_definition(required=False), name="ScheduleUpdate")


class ScheduleListQuery(Strict):
    task = fields.String(validate=NAME, metadata={"description": "Only schedules of this task."})
    all = fields.Boolean(load_default=False, metadata={"description": "Include disabled schedules."})
    limit = fields.Integer(load_default=50, validate=validate.Range(1, MAX_LIST_LIMIT))
    offset = fields.Integer(load_default=0, validate=validate.Range(0, 2**63 - 1))


class BackfillRequest(Strict):
    start = fields.AwareDateTime(format="iso", required=True, data_key="from")
    end = fields.AwareDateTime(format="iso", required=True, data_key="to")
    overlap = fields.String(
        load_default=None,
        allow_none=True,
        validate=validate.OneOf(OVERLAP_POLICIES),
        metadata={"description": "Policy for this backfill (default: the schedule's)."},
    )


class LastSkip(ma.Schema):
    tick = timestamp("The tick that did not fire.")
    reason = fields.String(required=True, metadata={"example": "overlap"})


class Schedule(ma.Schema):
    schedule_id = fields.String(required=True)
    task = fields.String(required=True)
    target_kind = fields.String(required=True, metadata={"example": "zart"})
    cron = fields.String(allow_none=True)
    every = fields.Integer(allow_none=True)
    timezone = fields.String(required=True)
    data = fields.Dict(required=True)
    args = fields.List(fields.Raw(), required=True)
    kwargs = fields.Dict(required=True)
    start_at = timestamp("No tick before this.")
    end_at = timestamp("No tick after this.")
    overlap = fields.String(required=True)
    catch_up = fields.String(required=True)
    catch_up_window = fields.Float(required=True)
    jitter = fields.Float(required=True)
    description = fields.String(allow_none=True)
    paused = fields.Boolean(required=True)
    enabled = fields.Boolean(required=True, metadata={"description": "False once removed from the code."})
    source = fields.String(required=True, metadata={"example": "api"})
    next_tick = timestamp("The next tick.")
    next_fire_at = timestamp("When the next tick fires (jitter included).")
    buffered_tick = timestamp("A tick waiting for the active run to end (`buffer_one`).")
    last_tick = timestamp("The last tick fired.")
    last_fired_at = timestamp("When it fired.")
    last_execution_id = fields.String(allow_none=True)
    last_status = fields.String(allow_none=True, metadata={"description": "Status of the last fired execution."})
    last_lag_seconds = fields.Float(allow_none=True, metadata={"description": "How late the last tick fired."})
    last_skip = fields.Nested(LastSkip, allow_none=True)
    created_at = timestamp("When the schedule was created.")
    updated_at = timestamp("When it last changed.")
    upcoming = fields.List(fields.String(), metadata={"description": "The next fire times."})


class SchedulePage(ma.Schema):
    schedules = fields.List(fields.Nested(Schedule), required=True)
    total = fields.Integer(required=True)
    limit = fields.Integer(required=True)
    offset = fields.Integer(required=True)


class FiredExecution(ma.Schema):
    execution_id = fields.String(required=True)
    scheduled_for = timestamp("The tick it was fired for.")


class SkippedTick(ma.Schema):
    tick = timestamp("The tick.")
    reason = fields.String(required=True, metadata={"example": "overlap"})


class Firing(ma.Schema):
    schedule_id = fields.String(required=True)
    fired = fields.List(fields.Nested(FiredExecution), required=True)
    already_fired = fields.List(fields.String(), required=True)
    skipped = fields.List(fields.Nested(SkippedTick), required=True)
    buffered = timestamp("A tick left waiting for the active run to end.")
    cancelled = fields.List(fields.String(), required=True)


class ScheduleDeleted(ma.Schema):
    schedule_id = fields.String(required=True)
    deleted = fields.Boolean(required=True)
