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
TASK_FIELDS = ("name", "schema", "timeout_seconds", "registered_by", "first_seen_at", "last_seen_at")


def pick(row: Mapping[str, Any], fields: Sequence[str]) -> dict[str, Any]:
    """The named fields of a row in that order; timestamps (`*_at`) become ISO 8601 strings."""
    return {name: iso(row.get(name)) if name.endswith("_at") else row.get(name) for name in fields}


def scheduled_view(execution: Mapping[str, Any]) -> dict[str, Any]:
    """The body of a successful schedule (201, or the existing execution for a repeated id)."""
    return pick(execution, SCHEDULED_FIELDS)


def status_view(execution: Mapping[str, Any]) -> dict[str, Any]:
    """An execution as `GET /executions/<id>` returns it (a row from `ZartService.status`)."""
    return pick(execution, STATUS_FIELDS)


def list_view(executions: Iterable[Mapping[str, Any]], total: int, limit: int, offset: int) -> dict[str, Any]:
    """A page of executions (from `ZartService.list`) with the paging it was asked for."""
    return {
        "executions": [pick(execution, SUMMARY_FIELDS) for execution in executions],
        "total": total,
        "limit": limit,
        "offset": offset,
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
ACTION_FIELDS = ("action", "triggered_by", "details", "created_at")
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


def run_view(run: Mapping[str, Any]) -> dict[str, Any]:
    """One run of an execution: run 0, then one per restart or selective rerun."""
    return pick(run, RUN_FIELDS)


def admin_step_view(step: Mapping[str, Any]) -> dict[str, Any]:
    """A step as an operator sees it: the public step view plus whether retry-step may revive it."""
    return {**step_view(step), "retryable": bool(step.get("retryable"))}


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
        "runs": [run_view(run) for run in detail["runs"]],
        "steps": [admin_step_view(step) for step in detail["steps"]],
        "actions": [pick(action, ACTION_FIELDS) for action in detail["actions"]],
    }
