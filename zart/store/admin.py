"""Queries behind the operator controls: dead-step retry, restart, selective rerun, runs and the audit trail."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, text
from sqlalchemy.exc import IntegrityError

from zart.errors import ExecutionAlreadyExists
from zart.store.sql import one, rows, to_json

DEDUP_KEY_INDEX = "executions_dedup_key_idx"


@contextmanager
def _reviving(execution_id: str) -> Iterator[None]:
    """Making a finished execution active again: its dedup key may be held by a newer active execution, and the
    unique index refuses a second one. Say so as a conflict (the transaction is spoilt: the caller ends it)."""
    try:
        yield
    except IntegrityError as exc:
        if getattr(getattr(exc.orig, "diag", None), "constraint_name", None) != DEDUP_KEY_INDEX:
            raise
        raise ExecutionAlreadyExists(
            f"execution {execution_id}'s dedup key is held by another active execution: reviving this one would "
            "make two; wait for that one to finish (or cancel it) first"
        ) from None


_LOCK = text(
    """
    SELECT id AS execution_id, task, status, run_index, attempt, input, error, parent_id
    FROM executions WHERE id = :id FOR UPDATE
    """
)


def lock_execution(conn: Connection, execution_id: str) -> dict[str, Any] | None:
    return one(conn, _LOCK, id=execution_id)


_STEP = text(
    """
    SELECT name, position, kind, status, error, attempts, failures
    FROM steps WHERE execution_id = :id AND run_index = :run AND name = :name
    """
)


def get_step(conn: Connection, execution_id: str, run_index: int, name: str) -> dict[str, Any] | None:
    return one(conn, _STEP, id=execution_id, run=run_index, name=name)


_RESET_STEP = text(
    """
    UPDATE steps SET status = 'waiting', wake_at = now(), failures = 0, exec_attempt = :attempt,
           completed_at = NULL, updated_at = now()
    WHERE execution_id = :id AND run_index = :run AND name = :name AND status = 'failed'
    """
)

_REOPEN = text(
    """
    WITH reopened AS (
        UPDATE executions SET status = 'pending', output = NULL, error = NULL, completed_at = NULL,
               waiting_for = NULL, waiting_for_event = NULL, wake_at = NULL, recoveries = 0, dispatched_at = now(),
               updated_at = now(), deadline_at = now() + make_interval(secs => CAST(:timeout AS double precision))
        WHERE id = :id
        RETURNING id, run_index
    )
    UPDATE runs SET status = 'pending', output = NULL, error = NULL, completed_at = NULL
    FROM reopened WHERE runs.execution_id = reopened.id AND runs.run_index = reopened.run_index
    """
)


def reset_dead_step(
    conn: Connection, execution_id: str, run_index: int, name: str, attempt: int, timeout: float | None
) -> None:
    """The step gets a fresh retry budget (its attempts stay in history) and the execution is ready again,
    with a fresh deadline `timeout` seconds away (none when None)."""
    conn.execute(_RESET_STEP, {"id": execution_id, "run": run_index, "name": name, "attempt": attempt})
    with _reviving(execution_id):
        conn.execute(_REOPEN, {"id": execution_id, "timeout": timeout})


_NEW_RUN = text(
    """
    WITH old AS (
        SELECT id, status, run_index, started_at, input FROM executions WHERE id = :id FOR UPDATE
    ), closed AS (
        UPDATE runs SET status = CASE WHEN old.status IN ('pending', 'running', 'waiting') THEN 'cancelled'
                                      ELSE old.status END,
               started_at = coalesce(runs.started_at, old.started_at),
               completed_at = coalesce(runs.completed_at, now())
        FROM old WHERE runs.execution_id = old.id AND runs.run_index = old.run_index
    ), fresh AS (
        UPDATE executions e SET run_index = old.run_index + 1, status = 'pending',
               input = coalesce(CAST(:input AS jsonb), old.input), output = NULL, error = NULL, attempt = 1,
               started_at = NULL, completed_at = NULL, current_step = NULL, lease_token = NULL, recoveries = 0,
               lease_expires_at = NULL, leased_by = NULL, wake_at = NULL, waiting_for = NULL,
               waiting_for_event = NULL, dispatched_at = now(), updated_at = now(),
               deadline_at = now() + make_interval(secs => CAST(:timeout AS double precision))
        FROM old WHERE e.id = old.id
        RETURNING e.id, e.run_index, e.input
    )
    INSERT INTO runs (execution_id, run_index, trigger, status, input, triggered_by, created_at)
    SELECT id, run_index, :trigger, 'pending', input, :by, now() FROM fresh
    RETURNING run_index
    """
)


def start_new_run(
    conn: Connection, execution_id: str, trigger: str, data: Any, triggered_by: str, timeout: float | None
) -> int:
    """Close the current run (cancelled if it was still active) and open the next one, pending, with a fresh
    deadline `timeout` seconds away (none when None)."""
    with _reviving(execution_id):
        row = one(
            conn, _NEW_RUN, id=execution_id, input=to_json(data), trigger=trigger, by=triggered_by, timeout=timeout
        )
    assert row is not None
    return int(row["run_index"])


_COPY = text(
    """
    INSERT INTO steps (execution_id, run_index, name, position, kind, status, output, error, attempts, failures,
                       exec_attempt, wake_at, child_id, started_at, completed_at, updated_at)
    SELECT execution_id, :to_run, name, position, kind, status, output, error, attempts, failures,
           1, wake_at, child_id, started_at, completed_at, now()
    FROM steps WHERE execution_id = :id AND run_index = :from_run AND name = ANY(:names)
    """
)


def copy_checkpoints(conn: Connection, execution_id: str, from_run: int, to_run: int, names: list[str]) -> None:
    conn.execute(_COPY, {"id": execution_id, "from_run": from_run, "to_run": to_run, "names": names})


_RUNS = text(
    """
    SELECT r.run_index, r.trigger, r.triggered_by,
           CASE WHEN r.run_index = e.run_index THEN e.status ELSE r.status END AS status,
           r.input, CASE WHEN r.run_index = e.run_index THEN e.output ELSE r.output END AS output,
           CASE WHEN r.run_index = e.run_index THEN e.error ELSE r.error END AS error,
           r.created_at, CASE WHEN r.run_index = e.run_index THEN e.started_at ELSE r.started_at END AS started_at,
           CASE WHEN r.run_index = e.run_index THEN e.completed_at ELSE r.completed_at END AS completed_at
    FROM runs r JOIN executions e ON e.id = r.execution_id
    WHERE r.execution_id = :id ORDER BY r.run_index
    """
)


def list_runs(conn: Connection, execution_id: str) -> list[dict[str, Any]]:
    return rows(conn, _RUNS, id=execution_id)


_RECORD = text(
    """
    INSERT INTO admin_actions (execution_id, rule_id, action, triggered_by, details, created_at)
    VALUES (:execution_id, :rule_id, :action, :by, CAST(:details AS jsonb), now())
    """
)


def record_action(
    conn: Connection,
    *,
    action: str,
    triggered_by: str,
    execution_id: str | None = None,
    rule_id: str | None = None,
    details: dict[str, Any] | None = None,
) -> None:
    conn.execute(
        _RECORD,
        {
            "execution_id": execution_id,
            "rule_id": rule_id,
            "action": action,
            "by": triggered_by,
            "details": to_json(details),
        },
    )


_ACTIONS = text(
    """
    SELECT action, triggered_by, details, created_at FROM admin_actions
    WHERE execution_id = :id ORDER BY created_at, id
    """
)


def actions_for(conn: Connection, execution_id: str) -> list[dict[str, Any]]:
    return rows(conn, _ACTIONS, id=execution_id)
