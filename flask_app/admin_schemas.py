"""Marshmallow schemas of the admin API: operator requests and what they return."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import fields, validate

from flask_app.schemas import (
    EXECUTION_ID,
    NAME,
    PRINTABLE,
    ExecutionStatus,
    WholeNumber,
    any_json,
    path_parameter,
    status_field,
    timestamp,
)
from zart.limits import DEFAULT_PAUSE_PAGE, MAX_LIST_LIMIT, TERMINAL_STATUSES

RULE_ID_PARAMETER = path_parameter("rule_id", PRINTABLE, "A pause rule's ID, as returned when it was created.")

TRIGGERED_BY = fields.String(
    load_default=None,
    allow_none=True,
    validate=NAME,
    metadata={
        "description": "On whose behalf the caller acts, kept in the audit trail as `on_behalf_of` beside "
        "`triggered_by`, which is always the authenticated token's name (`api` without tokens)."
    },
)
EXPECTED_RUN = WholeNumber(
    load_default=None,
    allow_none=True,
    validate=validate.Range(0, 2**31 - 1),
    metadata={
        "description": "The run this request means to replace (`run_index` of the detail); when the execution "
        "has moved on, the request is refused with `run_changed`, so a retried request starts nothing twice."
    },
)


class Strict(ma.Schema):
    class Meta:
        unknown = ma.RAISE


class DetailQuery(Strict):
    run = fields.Integer(
        validate=validate.Range(0, 2**31 - 1), metadata={"description": "Run to show (default: current)."}
    )


class RetryStepRequest(Strict):
    step_name = fields.String(required=True, validate=NAME)
    triggered_by = TRIGGERED_BY


class RestartRequest(Strict):
    data = fields.Dict(
        load_default=None,
        allow_none=True,
        metadata={"description": "New input (default: the same). Strings may not contain U+0000."},
    )
    force = fields.Boolean(load_default=False, metadata={"description": "Stop an active execution first."})
    expected_run_index = EXPECTED_RUN
    triggered_by = TRIGGERED_BY


class RerunRequest(Strict):
    steps = fields.List(fields.String(validate=NAME), required=True, validate=validate.Length(min=1, max=1000))
    preserve = fields.List(fields.String(validate=NAME), load_default=list, validate=validate.Length(max=1000))
    force = fields.Boolean(load_default=False, metadata={"description": "Stop an active execution first."})
    expected_run_index = EXPECTED_RUN
    triggered_by = TRIGGERED_BY


class RerunPreviewRequest(Strict):
    steps = fields.List(fields.String(validate=NAME), required=True, validate=validate.Length(min=1, max=1000))
    preserve = fields.List(fields.String(validate=NAME), load_default=list, validate=validate.Length(max=1000))


class PauseRequest(Strict):
    execution_id = fields.String(load_default=None, allow_none=True, validate=EXECUTION_ID)
    task = fields.String(load_default=None, allow_none=True, validate=NAME)
    step_pattern = fields.String(
        load_default=None, allow_none=True, validate=NAME, metadata={"description": "A glob over step names."}
    )
    reason = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=2000))
    expires_at = fields.AwareDateTime(load_default=None, allow_none=True, format="iso")
    all = fields.Boolean(load_default=False, metadata={"description": "Required for a rule that pauses everything."})
    triggered_by = TRIGGERED_BY


class PauseListQuery(Strict):
    all = fields.Boolean(load_default=False, metadata={"description": "Include resumed and expired rules."})
    limit = fields.Integer(load_default=DEFAULT_PAUSE_PAGE, validate=validate.Range(1, MAX_LIST_LIMIT))
    offset = fields.Integer(load_default=0, validate=validate.Range(0, 2**31 - 1))


class ResumeRequest(Strict):
    triggered_by = TRIGGERED_BY


class StrandedQuery(Strict):
    limit = fields.Integer(
        load_default=100, validate=validate.Range(1, MAX_LIST_LIMIT), metadata={"description": "At most this many."}
    )


# ------------------------------------------------------------------ responses


class Attempt(ma.Schema):
    attempt = fields.Integer(required=True)
    started_at = timestamp("When the attempt started.")
    ended_at = timestamp("When it ended.")
    outcome = fields.String(required=True, metadata={"example": "failed"})
    error = fields.Dict(allow_none=True)


class RemoteDispatch(ma.Schema):
    task_name = fields.String(required=True, metadata={"example": "payments.charge_card"})
    queue = fields.String(required=True, metadata={"example": "payments"})
    task_id = fields.String(required=True, metadata={"description": "The Celery task id of the current dispatch."})
    worker = fields.String(allow_none=True, metadata={"description": "The Celery worker that reported on it."})
    state = fields.String(
        required=True,
        metadata={"description": "sent, started, retry, succeeded, failed, closed (failure taken into account)"},
    )
    attempt = fields.Integer(required=True)
    dispatched_at = timestamp("When the current dispatch was sent.")
    started_at = timestamp("When a worker reported the task started.")
    heartbeat_at = timestamp("When the worker last reported it alive.")
    finished_at = timestamp("When its outcome was recorded.")


class AdminStep(ma.Schema):
    name = fields.String(required=True)
    position = fields.Integer(required=True)
    kind = fields.String(required=True)
    status = fields.String(required=True)
    attempts = fields.Integer(required=True)
    started_at = timestamp("When the last attempt started.")
    completed_at = timestamp("When it completed or failed for good.")
    wake_at = timestamp("When a sleep, retry back-off or event timeout is due.")
    output = any_json("The checkpointed result.")
    error = fields.Dict(allow_none=True)
    attempt_history = fields.List(fields.Nested(Attempt), required=True)
    retryable = fields.Boolean(required=True, metadata={"description": "A dead step: retry-step can revive it."})
    child_id = fields.String(allow_none=True, metadata={"description": "The child execution a fan-out step started."})
    remote = fields.Nested(
        RemoteDispatch, metadata={"description": "For a step run by a Celery worker of the team's own fleet."}
    )


class Run(ma.Schema):
    run_index = fields.Integer(required=True)
    trigger = fields.String(required=True, metadata={"example": "restart"})
    status = status_field()
    triggered_by = fields.String(allow_none=True)
    input = any_json("The run's input.")
    output = any_json("The run's output.")
    error = fields.Dict(allow_none=True)
    created_at = timestamp("When the run was opened.")
    started_at = timestamp("When a worker first claimed it.")
    completed_at = timestamp("When it finished (or was superseded).")


class Runs(ma.Schema):
    execution_id = fields.String(required=True)
    runs = fields.List(fields.Nested(Run), required=True)


class Action(ma.Schema):
    action = fields.String(required=True)
    triggered_by = fields.String(required=True, metadata={"description": "The token (or CLI user) that acted."})
    on_behalf_of = fields.String(allow_none=True, metadata={"description": "Whom the caller said it acted for."})
    details = fields.Dict(allow_none=True)
    created_at = timestamp("When it was done.")


class DeliveredEvent(ma.Schema):
    run_index = fields.Integer(required=True)
    event_name = fields.String(required=True)
    payload = any_json("The event's payload.")
    delivered_at = timestamp("When it was delivered.")


class HeldBy(ma.Schema):
    rule_id = fields.String(required=True)
    reason = fields.String(allow_none=True)
    step_pattern = fields.String(allow_none=True)


class CanvasNode(ma.Schema):
    kind = fields.String(required=True, metadata={"description": "task, chain, group or chord."})
    path = fields.String(required=True, metadata={"description": "The node's position in the canvas (`0.1`)."})
    task = fields.String(allow_none=True, metadata={"description": "A task node's Celery task name."})
    step = fields.String(allow_none=True, metadata={"description": "The step a task node runs as."})
    immutable = fields.Boolean(required=True, metadata={"description": "An `.si()` task ignores the result."})
    status = fields.String(
        allow_none=True, metadata={"description": "A task's step status, or `not started`.", "example": "completed"}
    )
    members = fields.List(fields.Nested(lambda: CanvasNode()), metadata={"description": "A chain's, group's "
                          "or chord header's members, in order."})
    body = fields.Nested(lambda: CanvasNode(), allow_none=True, metadata={"description": "A chord's body."})
    link = fields.List(fields.Nested(lambda: CanvasNode()), metadata={"description": "Callbacks on success."})
    link_error = fields.List(fields.Nested(lambda: CanvasNode()), metadata={"description": "Error callbacks."})


class CanvasTree(ma.Schema):
    start_at = fields.String(allow_none=True, metadata={"description": "A countdown's or ETA's start time."})
    countdown = fields.String(allow_none=True, metadata={"description": "The countdown's status, if any."})
    root = fields.Nested(CanvasNode, required=True)


class Detail(ExecutionStatus):
    run_index = fields.Integer(required=True, metadata={"description": "The run shown."})
    current_run = fields.Integer(required=True)
    input = any_json("The current run's input.")
    waiting_for = fields.Dict(allow_none=True)
    held_by = fields.Nested(HeldBy, allow_none=True)
    schedule_id = fields.String(allow_none=True, metadata={"description": "The schedule that fired it, if any."})
    scheduled_for = timestamp("The schedule's tick it was fired for.")
    runs = fields.List(fields.Nested(Run), required=True)
    steps = fields.List(fields.Nested(AdminStep), required=True)
    actions = fields.List(fields.Nested(Action), required=True)
    events = fields.List(fields.Nested(DeliveredEvent), required=True)
    canvas = fields.Nested(
        CanvasTree,
        allow_none=True,
        metadata={"description": "For a Celery canvas (`zart.canvas`): its tasks as a tree with their states."},
    )


class Accepted(ma.Schema):
    execution_id = fields.String(required=True)
    status = status_field()
    run_index = fields.Integer(required=True)


class RetryStepResult(Accepted):
    step_name = fields.String(required=True)


class NewRun(Accepted):
    trigger = fields.String(required=True)


class RerunResult(NewRun):
    steps_to_run = fields.List(fields.String(), required=True)
    steps_preserved = fields.List(fields.String(), required=True)


class RerunPlan(Accepted):
    steps_to_run = fields.List(
        fields.String(), required=True, metadata={"description": "Steps that would run again, in order."}
    )
    steps_preserved = fields.List(
        fields.String(), required=True, metadata={"description": "Completed steps whose checkpoints would be kept."}
    )


class PauseRule(ma.Schema):
    rule_id = fields.String(required=True)
    execution_id = fields.String(allow_none=True)
    task = fields.String(allow_none=True)
    step_pattern = fields.String(allow_none=True)
    all = fields.Boolean(required=True)
    reason = fields.String(allow_none=True)
    expires_at = timestamp("When it stops holding by itself.")
    active = fields.Boolean(required=True)
    created_at = timestamp("When it was created.")
    created_by = fields.String(allow_none=True)
    resumed_at = timestamp("When it was resumed.")
    resumed_by = fields.String(allow_none=True)


class PauseRules(ma.Schema):
    rules = fields.List(fields.Nested(PauseRule), required=True)
    total = fields.Integer(required=True, metadata={"description": "Rules matching, on every page."})
    limit = fields.Integer(required=True)
    offset = fields.Integer(required=True)


class Deleted(ma.Schema):
    rule_id = fields.String(required=True)
    deleted = fields.Boolean(required=True)


DURATION_PATTERN = r"^\d+(\.\d+)?[smhdw]$"


def _duration(value: str) -> bool:
    from zart.errors import InvalidData
    from zart.retention.policy import parse_duration

    try:
        parse_duration(value)
    except InvalidData as exc:
        raise ma.ValidationError(exc.message) from None
    return True


class PruneRequest(Strict):
    older_than = fields.String(
        required=True,
        validate=[validate.Length(max=32), validate.Regexp(DURATION_PATTERN), _duration],
        metadata={"description": "Finished longer ago than this: `90s`, `15m`, `12h`, `30d`, `2w`.", "example": "30d"},
    )
    statuses = fields.List(
        fields.String(validate=validate.OneOf(TERMINAL_STATUSES)),
        load_default=None,
        validate=validate.Length(min=1, max=3),
        metadata={"description": "Only these final statuses (default: all three)."},
    )
    dry_run = fields.Boolean(
        load_default=False, metadata={"description": "Count what would be deleted; delete nothing."}
    )
    triggered_by = TRIGGERED_BY


class PruneResult(ma.Schema):
    dry_run = fields.Boolean(required=True)
    older_than_seconds = fields.Float(required=True)
    pruned = fields.Dict(
        keys=fields.String(),
        values=fields.Integer(),
        required=True,
        metadata={"description": "Executions deleted (or, dry, that would be) per final status, children included."},
    )
    total = fields.Integer(required=True)


class StrandedExecution(ma.Schema):
    execution_id = fields.String(required=True)
    task = fields.String(required=True)
    status = status_field()
    cause = fields.String(
        required=True,
        metadata={
            "description": "Why nothing will move it: `lease_expired` (running, its worker gone; the sweeper "
            "recovers it), `children_finished` (parked on children that all ended without reporting), "
            "`pause_rule_inactive` (parked on a rule that no longer holds), `no_wake_up` (nothing recorded).",
            "example": "children_finished",
        },
    )
    waiting_for = fields.Dict(allow_none=True, metadata={"description": "What it is parked on, as recorded."})
    waiting_for_event = fields.String(allow_none=True)
    wake_at = timestamp("Its recorded wake-up time, if any.")
    lease_expires_at = timestamp("When its worker's lease ran out, if running.")
    parent_id = fields.String(allow_none=True)
    updated_at = timestamp("When its row last changed.")


class StrandedList(ma.Schema):
    count = fields.Integer(required=True, metadata={"description": "How many are listed (at most `limit`)."})
    stranded = fields.List(fields.Nested(StrandedExecution), required=True)
