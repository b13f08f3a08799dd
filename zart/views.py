"""The public JSON shape of executions, shared by the HTTP API and `zart --json`.

Service rows carry internal columns (run index, lease, input); these pure functions pick the contract's
field names and turn timestamps into ISO 8601 UTC with a `Z`, so both front ends say the same thing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

TIMEOUT_MESSAGE = "Timeout reached. Execution is still running."


def iso(moment: datetime | None) -> str | None:
    """`2026-04-04T10:23:11Z`; a naive datetime is taken as UTC (the store writes UTC only)."""
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def scheduled_view(execution: Mapping[str, Any]) -> dict[str, Any]:
    """The body of a successful schedule (201, or the existing execution for a repeated id)."""
    return {
        "execution_id": execution["execution_id"],
        "task": execution["task"],
        "status": execution["status"],
        "created_at": iso(execution.get("created_at")),
    }


def status_view(execution: Mapping[str, Any]) -> dict[str, Any]:
    """An execution as `GET /executions/<id>` returns it (a row from `ZartService.status`)."""
    return {
        "execution_id": execution["execution_id"],
        "task": execution["task"],
        "status": execution["status"],
        "steps_completed": execution.get("steps_completed", 0),
        "current_step": execution.get("current_step"),
        "waiting_for_event": execution.get("waiting_for_event"),
        "started_at": iso(execution.get("started_at")),
        "completed_at": iso(execution.get("completed_at")),
        "output": execution.get("output"),
        "error": execution.get("error"),
    }


def summary_view(execution: Mapping[str, Any]) -> dict[str, Any]:
    """One item of a list page."""
    return {
        "execution_id": execution["execution_id"],
        "task": execution["task"],
        "status": execution["status"],
        "created_at": iso(execution.get("created_at")),
        "started_at": iso(execution.get("started_at")),
        "completed_at": iso(execution.get("completed_at")),
    }


def list_view(executions: Iterable[Mapping[str, Any]], total: int, limit: int, offset: int) -> dict[str, Any]:
    """A page of executions with the paging it was asked for."""
    return {
        "executions": [summary_view(execution) for execution in executions],
        "total": total,
        "limit": limit,
        "offset": offset,
    }


def finished_view(execution: Mapping[str, Any]) -> dict[str, Any]:
    """The result of a wait that saw the execution finish (completed, failed or cancelled)."""
    return {
        "execution_id": execution["execution_id"],
        "status": execution["status"],
        "output": execution.get("output"),
        "error": execution.get("error"),
        "completed_at": iso(execution.get("completed_at")),
    }


def still_running_view(execution: Mapping[str, Any]) -> dict[str, Any]:
    """The result of a wait whose timeout came first (the API's 202 body)."""
    return {"execution_id": execution["execution_id"], "status": execution["status"], "message": TIMEOUT_MESSAGE}


def delivered_view(execution_id: str, event_name: str) -> dict[str, Any]:
    return {"status": "delivered", "execution_id": execution_id, "event_name": event_name}


def cancelled_view(execution_id: str) -> dict[str, Any]:
    return {"execution_id": execution_id, "status": "cancelled"}


def attempt_view(attempt: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "attempt": attempt["attempt"],
        "started_at": iso(attempt.get("started_at")),
        "ended_at": iso(attempt.get("ended_at")),
        "outcome": attempt.get("outcome"),
        "error": attempt.get("error"),
    }


def step_view(step: Mapping[str, Any]) -> dict[str, Any]:
    """A step of the current run with its attempt history (a row from `ZartService.steps`)."""
    return {
        "name": step["name"],
        "position": step["position"],
        "kind": step["kind"],
        "status": step["status"],
        "attempts": step.get("attempts", 0),
        "started_at": iso(step.get("started_at")),
        "completed_at": iso(step.get("completed_at")),
        "wake_at": iso(step.get("wake_at")),
        "output": step.get("output"),
        "error": step.get("error"),
        "attempt_history": [attempt_view(attempt) for attempt in step.get("attempts_detail", ())],
    }


def task_view(task: Mapping[str, Any]) -> dict[str, Any]:
    """An entry of the task catalog: a name some worker process registered, and its input schema."""
    return {
        "name": task["name"],
        "schema": task.get("schema"),
        "registered_by": task.get("registered_by"),
        "first_seen_at": iso(task.get("first_seen_at")),
        "last_seen_at": iso(task.get("last_seen_at")),
    }
