"""Queries on step checkpoints and their attempts. Every write is fenced on the caller's lease."""

from __future__ import annotations

from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import Connection, text

from zart.store import remote
from zart.store.pause import RULES_VERSION
from zart.store.sql import hot_one, hot_statement, one, rows, to_json


class Checkpoint(NamedTuple):
    fenced: bool
    written: bool
    pausing: str | None  # the active pause rules' version (None: no active rule)


# Earlier attempts still marked running were cut short (their worker died): say so once a later one ends.
_INTERRUPTED_CTE = """
    interrupted AS (
        UPDATE step_attempts SET outcome = 'interrupted', ended_at = :started_at
        WHERE execution_id = :id AND run_index = :run AND step_name = :name AND outcome = 'running'
          AND attempt < :attempt AND :attempt > 1 AND EXISTS (SELECT 1 FROM fence)
    )
"""

# The fence: an update of non-indexed columns only (a HOT update) that also extends the lease; a checkpoint
# is progress, so the run's count of recoveries from dead workers starts again.
_FENCE_CTE = """
    fence AS (
        UPDATE executions SET lease_expires_at = now() + make_interval(secs => :lease), current_step = NULL,
               recoveries = 0
        WHERE id = :id AND lease_token = :token AND status = 'running'
        RETURNING id
    )
"""

_COMPLETE = hot_statement(
    "checkpoint",
    f"""
    WITH {_FENCE_CTE}, {_INTERRUPTED_CTE},
    step AS (
        INSERT INTO steps (execution_id, run_index, name, position, kind, status, output, attempts, failures,
                           exec_attempt, started_at, completed_at, updated_at)
        SELECT id, :run, :name, :position, :kind, 'completed', CAST(:output AS jsonb), :attempt, :failures,
               :exec_attempt, :started_at, now(), now() FROM fence
        ON CONFLICT (execution_id, run_index, name) DO UPDATE
            SET status = 'completed', output = EXCLUDED.output, error = NULL, attempts = EXCLUDED.attempts,
                completed_at = now(), updated_at = now(), wake_at = NULL
            WHERE steps.status <> 'completed'
        RETURNING 1
    ), attempt AS (
        INSERT INTO step_attempts (execution_id, run_index, step_name, attempt, started_at, ended_at, outcome)
        SELECT :id, :run, :name, :attempt, :started_at, now(), 'completed' FROM step
        WHERE :record_attempt
        ON CONFLICT (execution_id, run_index, step_name, attempt) DO UPDATE
            SET ended_at = now(), outcome = 'completed', error = NULL
    )
    SELECT (SELECT count(*) FROM fence) AS fenced, (SELECT count(*) FROM step) AS written, {RULES_VERSION} AS pausing
    """
)


def checkpoint_completed(
    conn: Connection,
    *,
    execution_id: str,
    token: str,
    lease: float,
    run_index: int,
    name: str,
    position: int,
    kind: str,
    output: Any,
    attempt: int,
    failures: int,
    exec_attempt: int,
    started_at: datetime,
    record_attempt: bool,
    prepared: bool = True,
) -> Checkpoint:
    """Write a step's result once, and say whether any pause rule is active (so the run re-checks them).

    `prepared` sends it as a psycopg prepared statement (the per-step path); an application's connection,
    whose driver may be another, takes the ordinary path."""
    row = (hot_one if prepared else one)(
        conn,
        _COMPLETE,
        id=execution_id,
        token=token,
        lease=lease,
        run=run_index,
        name=name,
        position=position,
        kind=kind,
        output=to_json(output),
        attempt=attempt,
        failures=failures,
        exec_attempt=exec_attempt,
        started_at=started_at,
        record_attempt=record_attempt,
    )
    assert row is not None
    return Checkpoint(bool(row["fenced"]), bool(row["written"]), row["pausing"])


_FAIL = text(
    f"""
    WITH {_FENCE_CTE}, {_INTERRUPTED_CTE},
    step AS (
        INSERT INTO steps (execution_id, run_index, name, position, kind, status, error, attempts, failures,
                           exec_attempt, wake_at, started_at, completed_at, updated_at)
        SELECT id, :run, :name, :position, :kind, :status, CAST(:error AS jsonb), :attempt, :failures,
               :exec_attempt, :wake_at, :started_at, CASE WHEN :status = 'failed' THEN now() END, now()
        FROM fence
        ON CONFLICT (execution_id, run_index, name) DO UPDATE
            SET status = EXCLUDED.status, error = EXCLUDED.error, attempts = EXCLUDED.attempts,
                failures = EXCLUDED.failures, exec_attempt = EXCLUDED.exec_attempt, wake_at = EXCLUDED.wake_at,
                completed_at = EXCLUDED.completed_at, updated_at = now()
            WHERE steps.status <> 'completed'
        RETURNING 1
    ), attempt AS (
        INSERT INTO step_attempts (execution_id, run_index, step_name, attempt, started_at, ended_at, outcome,
                                   error)
        SELECT :id, :run, :name, :attempt, :started_at, now(), 'failed', CAST(:error AS jsonb) FROM step
        ON CONFLICT (execution_id, run_index, step_name, attempt) DO UPDATE
            SET ended_at = now(), outcome = 'failed', error = EXCLUDED.error
    )
    SELECT (SELECT count(*) FROM fence) AS fenced, (SELECT count(*) FROM step) AS written
    """
)


def record_failure(
    conn: Connection,
    *,
    execution_id: str,
    token: str,
    lease: float,
    run_index: int,
    name: str,
    position: int,
    kind: str,
    error: dict[str, Any],
    attempt: int,
    failures: int,
    exec_attempt: int,
    started_at: datetime,
    retry_at: datetime | None,
) -> tuple[bool, bool]:
    """Record a failed attempt: the step waits for `retry_at`, or is failed for good when it is None. Returns
    (fenced, written): not written when the step was completed meanwhile (a remote step's result, recorded by
    the fleet without the lease, can land as its timeout is judged)."""
    row = one(
        conn,
        _FAIL,
        id=execution_id,
        token=token,
        lease=lease,
        run=run_index,
        name=name,
        position=position,
        kind=kind,
        status="waiting" if retry_at is not None else "failed",
        error=to_json(error),
        attempt=attempt,
        failures=failures,
        exec_attempt=exec_attempt,
        wake_at=retry_at,
        started_at=started_at,
    )
    return bool(row and row["fenced"]), bool(row and row["written"])


_MARK_RUNNING = text(
    f"""
    WITH fence AS (
        UPDATE executions SET current_step = :name
        WHERE id = :id AND lease_token = :token AND status = 'running'
        RETURNING id
    ), step AS (
        INSERT INTO steps (execution_id, run_index, name, position, kind, status, attempts, failures,
                           exec_attempt, started_at, updated_at)
        SELECT id, :run, :name, :position, :kind, 'running', :attempt, :failures, :exec_attempt, :started_at, now()
        FROM fence
        ON CONFLICT (execution_id, run_index, name) DO UPDATE
            SET status = 'running', attempts = EXCLUDED.attempts, started_at = EXCLUDED.started_at,
                updated_at = now()
            WHERE steps.status IN ('waiting', 'running', 'failed')
        RETURNING 1
    ), {_INTERRUPTED_CTE}
    INSERT INTO step_attempts (execution_id, run_index, step_name, attempt, started_at, outcome)
    SELECT :id, :run, :name, :attempt, :started_at, 'running' FROM step
    ON CONFLICT (execution_id, run_index, step_name, attempt) DO NOTHING
    """
)


def mark_running(
    conn: Connection,
    *,
    execution_id: str,
    token: str,
    run_index: int,
    name: str,
    position: int,
    kind: str,
    attempt: int,
    failures: int,
    exec_attempt: int,
    started_at: datetime,
) -> None:
    """Make a long-running attempt visible (status, current step, attempt start) while it runs."""
    conn.execute(
        _MARK_RUNNING,
        {
            "id": execution_id,
            "token": token,
            "run": run_index,
            "name": name,
            "position": position,
            "kind": kind,
            "attempt": attempt,
            "failures": failures,
            "exec_attempt": exec_attempt,
            "started_at": started_at,
        },
    )


_RECORD_WAIT = text(
    f"""
    WITH {_FENCE_CTE}
    INSERT INTO steps (execution_id, run_index, name, position, kind, status, wake_at, child_id,
                       exec_attempt, started_at, updated_at)
    SELECT id, :run, :name, :position, :kind, 'waiting', :wake_at, :child_id, :exec_attempt, now(), now()
    FROM fence
    ON CONFLICT (execution_id, run_index, name) DO NOTHING
    RETURNING 1
    """
)


def record_wait_step(
    conn: Connection,
    *,
    execution_id: str,
    token: str,
    lease: float,
    run_index: int,
    name: str,
    position: int,
    kind: str,
    wake_at: datetime | None,
    exec_attempt: int,
    child_id: str | None = None,
) -> bool:
    """Record a sleep, event wait or child step the first time the handler reaches it."""
    row = one(
        conn,
        _RECORD_WAIT,
        id=execution_id,
        token=token,
        lease=lease,
        run=run_index,
        name=name,
        position=position,
        kind=kind,
        wake_at=wake_at,
        child_id=child_id,
        exec_attempt=exec_attempt,
    )
    return row is not None


_RESOLVE_WAIT = text(
    f"""
    WITH {_FENCE_CTE}, resolved AS (
        UPDATE steps SET status = :status, output = CAST(:output AS jsonb), error = CAST(:error AS jsonb),
               completed_at = now(), updated_at = now()
        FROM fence
        WHERE steps.execution_id = fence.id AND steps.run_index = :run AND steps.name = :name
          AND steps.status = 'waiting'
        RETURNING 1
    )
    SELECT (SELECT count(*) FROM fence) AS fenced, (SELECT count(*) FROM resolved) AS written
    """
)


def resolve_wait_step(
    conn: Connection,
    *,
    execution_id: str,
    token: str,
    lease: float,
    run_index: int,
    name: str,
    status: str,
    output: Any = None,
    error: dict[str, Any] | None = None,
) -> tuple[bool, bool]:
    """A due sleep completes, or an event wait times out, as the handler replays past it. Returns (fenced,
    written): a held lease with nothing written means the step was resolved first (an event delivered)."""
    row = one(
        conn,
        _RESOLVE_WAIT,
        id=execution_id,
        token=token,
        lease=lease,
        run=run_index,
        name=name,
        status=status,
        output=to_json(output),
        error=to_json(error),
    )
    assert row is not None
    return bool(row["fenced"]), bool(row["written"])


_CHILD_RESULT = text(
    """
    UPDATE steps SET status = :status, output = CAST(:output AS jsonb), error = CAST(:error AS jsonb),
           completed_at = now(), updated_at = now()
    WHERE execution_id = :parent AND run_index = :run AND name = :name AND status = 'waiting'
    """
)


def record_child_result(
    conn: Connection, *, parent_id: str, run_index: int, name: str, status: str, output: Any, error: Any
) -> None:
    conn.execute(
        _CHILD_RESULT,
        {
            "parent": parent_id,
            "run": run_index,
            "name": name,
            "status": status,
            "output": to_json(output),
            "error": to_json(error),
        },
    )


_LOAD = text(
    """
    SELECT name, position, kind, status, output, error, attempts, failures, exec_attempt, wake_at,
           wake_at <= now() AS due, child_id
    FROM steps WHERE execution_id = :id AND run_index = :run AND name = ANY(:names)
    """
)


def load_steps(conn: Connection, execution_id: str, run_index: int, names: list[str]) -> list[dict[str, Any]]:
    return rows(conn, _LOAD, id=execution_id, run=run_index, names=names)


_LIST_FOR_RUN = text(
    """
    SELECT name, position, kind, status, output, error, attempts, failures, wake_at, child_id,
           started_at, completed_at
    FROM steps WHERE execution_id = :id AND run_index = :run ORDER BY position
    """
)

_ATTEMPTS_FOR_RUN = text(
    """
    SELECT step_name, attempt, started_at, ended_at, outcome, error
    FROM step_attempts WHERE execution_id = :id AND run_index = :run ORDER BY step_name, attempt
    """
)


def steps_of_run(conn: Connection, execution_id: str, run_index: int) -> list[dict[str, Any]]:
    """Every step of a run in order, each with its attempts."""
    steps = rows(conn, _LIST_FOR_RUN, id=execution_id, run=run_index)
    attempts: dict[str, list[dict[str, Any]]] = {}
    for attempt in rows(conn, _ATTEMPTS_FOR_RUN, id=execution_id, run=run_index):
        attempts.setdefault(attempt.pop("step_name"), []).append(attempt)
    for step in steps:
        history = attempts.get(step["name"], [])
        if (
            step["status"] == "completed"
            and step["kind"] == "step"
            and not any(a["outcome"] == "completed" for a in history)
        ):
            # a first-try success keeps no attempt row: its checkpoint carries the same facts
            history.append(
                {
                    "attempt": step["attempts"],
                    "started_at": step["started_at"],
                    "ended_at": step["completed_at"],
                    "outcome": "completed",
                    "error": None,
                }
            )
        step["attempts_detail"] = history
    if any(step["kind"] == "remote" for step in steps):
        dispatches = remote.of_run(conn, execution_id, run_index)
        for step in steps:
            step["remote"] = dispatches.get(step["name"])
    return steps
