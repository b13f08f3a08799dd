"""Marshmallow schemas: what the API accepts and returns, and so what /openapi.json documents.

Responses are shaped by `zart.views` (shared with `zart --json`); these schemas describe and dump them.
Timestamps arrive as ISO 8601 UTC strings with a `Z`.
"""

from __future__ import annotations

import re

import marshmallow as ma
from marshmallow import fields, validate

from zart.limits import NAME_MAX, NAME_PATTERN
from zart.paging import MAX_CURSOR_LENGTH
from zart.service import ID_PATTERN
from zart.store.tables import EXECUTION_STATUSES


class WholeMatch(validate.Regexp):
    """A pattern the whole value must match: marshmallow's Regexp uses `re.match`, whose `$` lets a trailing
    newline through. apispec documents the validator's `regex.pattern`, so the document states the very rule
    that is checked."""

    def __call__(self, value: str) -> str:
        if not isinstance(value, str) or self.regex.fullmatch(value) is None:
            raise ma.ValidationError(self._format_error(value))
        return value


class WholeNumber(fields.Integer):
    """An integer in a JSON body: a number without a fraction (`4`, or `4.0`). marshmallow's Integer casts what
    it is given with `int()`, so `2.5` became 2 and `"3"` became 3: a value the client never sent was acted on."""

    def _validated(self, value: object) -> int:
        if not isinstance(value, int | float) or (isinstance(value, float) and not value.is_integer()):
            raise self.make_error("invalid", input=value)
        return super()._validated(value)


# the service's rules, stated in the document so clients (and generated tests) know them
PRINTABLE = NAME_PATTERN.pattern
printable = WholeMatch(NAME_PATTERN, error="must not contain control characters")
NAME = [validate.Length(min=1, max=NAME_MAX), printable]
EXECUTION_ID = WholeMatch(re.compile(f"^{ID_PATTERN.pattern}$"), error="not a well-formed execution id")
MAX_LIST_LIMIT = 500
MAX_WAIT_SECONDS = 3600
POSTGRES_BIGINT_MAX = 2**63 - 1


def timestamp(description: str) -> fields.String:
    return fields.String(
        allow_none=True,
        metadata={"format": "date-time", "description": description, "example": "2026-04-04T10:23:11Z"},
    )


def status_field() -> fields.String:
    return fields.String(required=True, validate=validate.OneOf(EXECUTION_STATUSES), metadata={"example": "running"})


def path_parameter(name: str, pattern: str, description: str, max_length: int = NAME_MAX) -> dict[str, object]:
    schema = {"type": "string", "minLength": 1, "maxLength": max_length, "pattern": pattern}
    return {"in": "path", "name": name, "required": True, "description": description, "schema": schema}


EXECUTION_ID_PARAMETER = path_parameter(
    "execution_id", EXECUTION_ID.regex.pattern, "Letters, digits and `._:~@-` (not first)."
)
EVENT_NAME_PARAMETER = path_parameter("event_name", PRINTABLE, "The name passed to `ctx.wait_for_event`.")


def execution_id_field() -> fields.String:
    return fields.String(required=True, metadata={"example": "exec-7f3a9b2c"})


def any_json(description: str) -> fields.Raw:
    return fields.Raw(allow_none=True, metadata={"description": description})


# ------------------------------------------------------------------ requests


class ScheduleRequest(ma.Schema):
    class Meta:
        unknown = ma.RAISE

    task = fields.String(required=True, validate=NAME, metadata={"description": "A registered task name."})
    data = fields.Dict(
        required=True,
        error_messages={"invalid": "Must be a JSON object."},
        metadata={"description": "The input; must match the schema the task declares, if any."},
    )
    idempotency_key = fields.String(
        load_default=None,
        allow_none=True,
        validate=NAME,
        metadata={"description": "Repeating a request with the same key returns the same execution."},
    )
    priority = WholeNumber(
        load_default=None,
        allow_none=True,
        validate=validate.Range(-1_000_000, 1_000_000),
        metadata={"description": "Higher starts first while its queue's limits hold a backlog (default: the task's)."},
    )
    dedup_key = fields.String(
        load_default=None,
        allow_none=True,
        validate=NAME,
        metadata={"description": "While an execution with this key is active, it is returned instead (200)."},
    )
    debounce = fields.Float(
        load_default=None,
        allow_none=True,
        validate=validate.Range(0, 86_400, min_inclusive=False),
        metadata={
            "description": "Seconds to delay the start; a schedule with the same `dedup_key` before then "
            "replaces the input (needs `dedup_key`)."
        },
    )


class ListQuery(ma.Schema):
    class Meta:
        unknown = ma.RAISE  # a misspelt filter is an error, not a silently unfiltered list

    status = fields.String(validate=validate.OneOf(EXECUTION_STATUSES), metadata={"description": "Only this status."})
    task = fields.String(validate=NAME, metadata={"description": "Only this task."})
    limit = fields.Integer(load_default=50, validate=validate.Range(1, MAX_LIST_LIMIT))
    offset = fields.Integer(load_default=0, validate=validate.Range(0, POSTGRES_BIGINT_MAX))
    order = fields.String(
        load_default="desc",
        validate=validate.OneOf(("asc", "desc")),
        metadata={"description": "By creation time."},
    )
    cursor = fields.String(
        load_default=None,
        validate=[validate.Length(min=1, max=MAX_CURSOR_LENGTH), validate.Regexp(r"^[A-Za-z0-9_-]+$")],
        metadata={
            "description": "The `next_cursor` of the previous page (same filters and order; no offset): pages "
            "after it as fast as the first, however deep."
        },
    )


class WaitQuery(ma.Schema):
    class Meta:
        unknown = ma.RAISE

    timeout = fields.Integer(
        load_default=30,
        validate=validate.Range(0, MAX_WAIT_SECONDS),
        metadata={"description": "Seconds to wait for the execution to finish."},
    )


# ------------------------------------------------------------------ responses


class Scheduled(ma.Schema):
    execution_id = execution_id_field()
    task = fields.String(required=True)
    status = status_field()
    created_at = timestamp("When the execution was created.")


class ExecutionStatus(ma.Schema):
    execution_id = execution_id_field()
    task = fields.String(required=True)
    status = status_field()
    steps_completed = fields.Integer(required=True)
    current_step = fields.String(allow_none=True)
    waiting_for_event = fields.String(allow_none=True)
    started_at = timestamp("When a worker first claimed it.")
    completed_at = timestamp("When it reached a final status.")
    output = any_json("The handler's return value, once completed.")
    error = fields.Dict(allow_none=True, metadata={"description": "`{type, message}` once failed."})


class ExecutionSummary(ma.Schema):
    execution_id = execution_id_field()
    task = fields.String(required=True)
    status = status_field()
    created_at = timestamp("When the execution was created.")
    started_at = timestamp("When a worker first claimed it.")
    completed_at = timestamp("When it reached a final status.")


class ExecutionPage(ma.Schema):
    executions = fields.List(fields.Nested(ExecutionSummary), required=True)
    total = fields.Integer(required=True, metadata={"description": "Executions matching the filters."})
    limit = fields.Integer(required=True)
    offset = fields.Integer(required=True)
    next_cursor = fields.String(
        required=True,
        allow_none=True,
        metadata={"description": "Pass as `cursor` for the next page; null on the last page."},
    )


class Finished(ma.Schema):
    execution_id = execution_id_field()
    status = status_field()
    output = any_json("The handler's return value, once completed.")
    error = fields.Dict(allow_none=True)
    completed_at = timestamp("When it reached a final status.")


class StillRunning(ma.Schema):
    execution_id = execution_id_field()
    status = status_field()
    message = fields.String(required=True, metadata={"example": "Timeout reached. Execution is still running."})


class Cancelled(ma.Schema):
    execution_id = execution_id_field()
    status = fields.String(required=True, validate=validate.Equal("cancelled"))


class Delivered(ma.Schema):
    status = fields.String(required=True, validate=validate.Equal("delivered"))
    execution_id = execution_id_field()
    event_name = fields.String(required=True)


Stats = ma.Schema.from_dict({status: fields.Integer(required=True) for status in EXECUTION_STATUSES}, name="Stats")


class TaskEntry(ma.Schema):
    name = fields.String(required=True)
    schema = fields.Dict(allow_none=True, metadata={"description": "The input schema the task declares."})
    timeout_seconds = fields.Float(allow_none=True, metadata={"description": "The execution timeout it declares."})
    queue = fields.String(
        allow_none=True, metadata={"description": "The Celery queue its executions go to (null: the default queue)."}
    )
    registered_by = fields.String(allow_none=True, metadata={"description": "host:pid of the last registrant."})
    first_seen_at = timestamp("When a worker first registered the name.")
    last_seen_at = timestamp("When a worker last registered the name.")


class TaskCatalog(ma.Schema):
    tasks = fields.List(fields.Nested(TaskEntry), required=True)


class Health(ma.Schema):
    status = fields.String(required=True, metadata={"example": "ok"})


class Readiness(ma.Schema):
    status = fields.String(required=True, validate=validate.OneOf(("ready",)))
    checks = fields.Dict(keys=fields.String(), values=fields.String(), required=True)


class ErrorBody(ma.Schema):
    code = fields.String(required=True, metadata={"example": "execution_not_found"})
    message = fields.String(required=True, metadata={"example": "No execution found with ID exec-7f3a9b2c"})


class Error(ma.Schema):
    error = fields.Nested(ErrorBody, required=True)
