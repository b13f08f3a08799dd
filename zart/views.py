"""The public JSON shape of executions, shared by the HTTP API and `zart --json`.

Service rows carry internal columns (run index, lease, input); these pure functions pick the contract's
field names and turn timestamps into ISO 8601 UTC with a `Z`, so both front ends say the same thing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

TIMEOUT_MESSAGE = "Timeout reached. Execution is still running."


def iso(moment: datetime | None) -> str | None:
    """`2026-04-04T10:23:11Z`; a naive datetime is taken as UTC (the store writes UTC only)."""
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).replace(microsecond=0, tzinfo=None).isoformat() + "Z"  # four-digit years


SCHEDULED_FIELDS = ("execution_id", "task", "status", "created_at")
STATUS_FIELDS = (
    "execution_id",
    "task",
    "status",
    "steps_completed",
    "current_step",
    "waiting_for_event",
    "started_at",
    "completed_at",
    "output",
    "error",
)
SUMMARY_FIELDS = ("execution_id", "task", "status", "created_at", "started_at", "completed_at")
FINISHED_FIELDS = ("execution_id", "status", "output", "error", "completed_at")
ATTEMPT_FIELDS = ("attempt", "started_at", "ended_at", "outcome", "error")
STEP_FIELDS = (
    "name",
    "position",
    "kind",
    "status",
    "attempts",
    "started_at",
    "completed_at",
    "wake_at",
    "output",
    "error",
)
# a step run by a team's own Celery worker: which task, where, and how it stands
REMOTE_FIELDS = (
    "task_name",
    "queue",
    "task_id",
    "worker",
    "state",
    "attempt",
    "dispatched_at",
    "started_at",
    "heartbeat_at",
    "finished_at",
)
STRANDED_FIELDS = (
    "execution_id",
    "task",
    "status",
    "cause",
    "waiting_for",
    "waiting_for_event",
    "wake_at",
    "lease_expires_at",
    "parent_id",
    "updated_at",
)
TASK_FIELDS = ("name", "schema", "timeout_seconds", "queue", "registered_by", "first_seen_at", "last_seen_at")


def pick(row: Mapping[str, Any], fields: Sequence[str]) -> dict[str, Any]:
    """The named fields of a row in that order; timestamps (`*_at`) become ISO 8601 strings."""
    return {name: iso(row.get(name)) if name.endswith("_at") else row.get(name) for name in fields}


def scheduled_view(execution: Mapping[str, Any]) -> dict[str, Any]:
    """The body of a successful schedule (201, or the existing execution for a repeated id)."""
    return pick(execution, SCHEDULED_FIELDS)


def status_view(execution: Mapping[str, Any]) -> dict[str, Any]:
    """An execution as `GET /executions/<id>` returns it (a row from `ZartService.status`)."""
    return pick(execution, STATUS_FIELDS)


def summary_view(execution: Mapping[str, Any]) -> dict[str, Any]:
    return pick(execution, SUMMARY_FIELDS)


def list_view(
    executions: Iterable[Mapping[str, Any]], total: int, limit: int, offset: int, next_cursor: str | None = None
) -> dict[str, Any]:
    """A page of executions (from `ZartService.list_page`) with the paging it was asked for; `next_cursor`
    (null on the last page) fetches the page after it."""
    return {
        "executions": [summary_view(execution) for execution in executions],
        "total": total,
        "limit": limit,
        "offset": offset,
        "next_cursor": next_cursor,
    }


def finished_view(execution: Mapping[str, Any]) -> dict[str, Any]:
    """The result of a wait that saw the execution finish (completed, failed or cancelled)."""
    return pick(execution, FINISHED_FIELDS)


def still_running_view(execution: Mapping[str, Any]) -> dict[str, Any]:
    """The result of a wait whose timeout came first (the API's 202 body)."""
    return {"execution_id": execution["execution_id"], "status": execution["status"], "message": TIMEOUT_MESSAGE}


def delivered_view(execution_id: str, event_name: str) -> dict[str, Any]:
    return {"status": "delivered", "execution_id": execution_id, "event_name": event_name}


def cancelled_view(execution_id: str) -> dict[str, Any]:
    return {"execution_id": execution_id, "status": "cancelled"}


def step_view(step: Mapping[str, Any]) -> dict[str, Any]:
    """A step of the current run with its attempt history (a row from `ZartService.steps`)."""
    history = [pick(attempt, ATTEMPT_FIELDS) for attempt in step.get("attempts_detail", ())]
    view = {**pick(step, STEP_FIELDS), "attempt_history": history}
    if step.get("remote"):
        view["remote"] = pick(step["remote"], REMOTE_FIELDS)
    return view


def task_view(task: Mapping[str, Any]) -> dict[str, Any]:
    """An entry of the task catalog: a name some worker process registered, and its input schema."""
    return pick(task, TASK_FIELDS)


RUN_FIELDS = (
    "run_index",
    "trigger",
    "status",
    "triggered_by",
    "input",
    "output",
    "error",
    "created_at",
    "started_at",
    "completed_at",
)
ACTION_FIELDS = ("action", "triggered_by", "on_behalf_of", "details", "created_at")
PAUSE_FIELDS = (
    "rule_id",
    "execution_id",
    "task",
    "step_pattern",
    "all",
    "reason",
    "expires_at",
    "active",
    "created_at",
    "created_by",
    "resumed_at",
    "resumed_by",
)
HELD_BY_FIELDS = ("rule_id", "reason", "step_pattern")
EVENT_FIELDS = ("run_index", "event_name", "payload", "delivered_at")


def run_view(run: Mapping[str, Any]) -> dict[str, Any]:
    """One run of an execution: run 0, then one per restart or selective rerun."""
    return pick(run, RUN_FIELDS)


def admin_step_view(step: Mapping[str, Any]) -> dict[str, Any]:
    """A step as an operator sees it: the public step view plus whether retry-step may revive it."""
    return {**step_view(step), "retryable": bool(step.get("retryable")), "child_id": step.get("child_id")}


def action_view(action: Mapping[str, Any]) -> dict[str, Any]:
    """An audit-trail entry: who acted (a token's name), and on whose behalf when the caller said so."""
    details = action.get("details") or {}
    return pick({**action, "on_behalf_of": details.get("on_behalf_of")}, ACTION_FIELDS)


def stranded_view(rows: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    listed = [pick(row, STRANDED_FIELDS) for row in rows]
    return {"count": len(listed), "stranded": listed}


def pause_view(rule: Mapping[str, Any]) -> dict[str, Any]:
    return pick(rule, PAUSE_FIELDS)


def detail_view(detail: Mapping[str, Any]) -> dict[str, Any]:
    """Everything about an execution: status, runs, the chosen run's steps, the audit trail, what holds it."""
    held_by = detail.get("held_by")
    return {
        **status_view(detail["execution"]),
        "run_index": detail["run_index"],
        "current_run": detail["execution"]["run_index"],
        "input": detail["execution"].get("input"),
        "waiting_for": detail["execution"].get("waiting_for"),
        "held_by": None if held_by is None else pick(held_by, HELD_BY_FIELDS),
        "schedule_id": detail["execution"].get("schedule_id"),
        "scheduled_for": iso(detail["execution"].get("scheduled_for")),
        "runs": [run_view(run) for run in detail["runs"]],
        "steps": [admin_step_view(step) for step in detail["steps"]],
        "actions": [action_view(action) for action in detail["actions"]],
        "events": [pick(event, EVENT_FIELDS) for event in detail["events"]],
        "canvas": detail.get("canvas"),  # a Celery canvas's tasks as a tree with their states, else None
    }


SCHEDULE_FIELDS = (
    "task",
    "target_kind",
    "cron",
    "every",
    "timezone",
    "data",
    "args",
    "kwargs",
    "start_at",
    "end_at",
    "overlap",
    "catch_up",
    "catch_up_window",
    "jitter",
    "description",
    "paused",
    "enabled",
    "source",
    "next_fire_at",
    "last_fired_at",
    "last_execution_id",
    "last_status",
    "last_lag_seconds",
    "created_at",
    "updated_at",
)


def schedule_view(schedule: Mapping[str, Any]) -> dict[str, Any]:
    """A schedule: its definition, state, last outcome and (when read alone) its next fire times."""
    row = {**schedule, "every": schedule.get("interval_seconds")}
    skip = schedule.get("last_skip")
    view = {
        "schedule_id": schedule["id"],
        **pick(row, SCHEDULE_FIELDS),
        "next_tick": iso(schedule.get("next_tick")),
        "last_tick": iso(schedule.get("last_tick")),
        "buffered_tick": iso(schedule.get("buffered_tick")),
        "last_skip": None if skip is None else {"tick": iso(_parse(skip.get("tick"))), "reason": skip.get("reason")},
    }
    if "upcoming" in schedule:
        view["upcoming"] = [iso(moment) for moment in schedule["upcoming"]]
    return view


def schedule_page_view(schedules: Iterable[Mapping[str, Any]], total: int, limit: int, offset: int) -> dict[str, Any]:
    return {"schedules": [schedule_view(s) for s in schedules], "total": total, "limit": limit, "offset": offset}


def firing_view(schedule_id: str, outcome: Any) -> dict[str, Any]:
    """What a trigger or a backfill did: executions fired, ticks already fired, skipped, buffered, cancelled."""
    return {
        "schedule_id": schedule_id,
        "fired": [{"execution_id": f.execution_id, "scheduled_for": iso(f.tick)} for f in outcome.fired],
        "already_fired": list(outcome.already_fired),
        "skipped": [{"tick": iso(tick), "reason": reason} for tick, reason in outcome.skipped],
        "buffered": iso(outcome.buffered),
        "cancelled": list(outcome.cancelled),
    }


def _parse(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) else None
