"""Queries on remote steps: steps run by a team's own Celery workers, each fenced on its dispatch token.

The engine's writes (dispatch, consuming a failure) are fenced on the execution's lease, like every step
write. The fleet's writes (started, heartbeat, retry, result) are fenced on the dispatch token instead: they
change a row only while that token is the step's current dispatch, the dispatch is still in flight, and the
run it belongs to is the execution's current, unfinished run.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, text

from zart.store import executions
from zart.store.sql import REMOTE_CHANNEL, hot_one, hot_statement, rows, to_json

IN_FLIGHT = ("sent", "started", "retry")
_IN_FLIGHT_SQL = "('sent', 'started', 'retry')"

_DISPATCH = hot_statement(
    "remote_dispatch",
    """
    WITH fence AS (
        UPDATE executions SET lease_expires_at = now() + make_interval(secs => :lease), current_step = NULL
        WHERE id = :id AND lease_token = :lease_token AND status = 'running'
          -- a dispatch lost in a crash is sent again (the body runs at least once); the result's own
          -- synchronous commit flushes it before anything depends on it
          AND set_config('synchronous_commit', 'off', true) = 'off'
        RETURNING id
    ), step AS (
        INSERT INTO steps (execution_id, run_index, name, position, kind, status, attempts, failures,
                           exec_attempt, started_at, updated_at)
        SELECT id, :run, :name, :position, 'remote', 'waiting', :attempt, :failures, :exec_attempt, now(), now()
        FROM fence
        ON CONFLICT (execution_id, run_index, name) DO UPDATE
            SET status = 'waiting', attempts = EXCLUDED.attempts, failures = EXCLUDED.failures,
                exec_attempt = EXCLUDED.exec_attempt, wake_at = NULL, completed_at = NULL, updated_at = now()
            WHERE steps.status <> 'completed'
        RETURNING 1
    ), remote AS (
        INSERT INTO remote_steps (execution_id, run_index, step_name, token, task_name, queue, attempt, sends,
                                  losses, state, dispatch_timeout, attempt_started_at, dispatched_at, alive_until)
        SELECT :id, :run, :name, :token, :task_name, :queue, :attempt, :sends, :losses, 'sent', :dispatch_timeout,
               now(), now(), now() + make_interval(secs => :alive_for)
        FROM step
        ON CONFLICT (execution_id, run_index, step_name) DO UPDATE
            SET token = EXCLUDED.token, task_name = EXCLUDED.task_name, queue = EXCLUDED.queue,
                attempt = EXCLUDED.attempt, sends = EXCLUDED.sends, losses = EXCLUDED.losses, state = 'sent',
                worker = NULL, error = NULL, dispatch_timeout = EXCLUDED.dispatch_timeout,
                attempt_started_at = CASE WHEN remote_steps.attempt = EXCLUDED.attempt
                                          THEN remote_steps.attempt_started_at ELSE now() END,
                dispatched_at = now(), started_at = NULL, heartbeat_at = NULL, finished_at = NULL,
                alive_until = EXCLUDED.alive_until
        RETURNING 1
    )
    SELECT (SELECT count(*) FROM fence) AS fenced, (SELECT count(*) FROM remote) AS written
    """
)


def record_dispatch(
    conn: Connection,
    *,
    execution_id: str,
    token: str,
    lease: float,
    run_index: int,
    name: str,
    position: int,
    exec_attempt: int,
    dispatch_token: str,
    task_name: str,
    queue: str,
    attempt: int,
    failures: int,
    sends: int,
    losses: int,
    dispatch_timeout: float,
    due_in: float = 0.0,
) -> tuple[bool, bool]:
    """Record, before the message is sent, that the step waits for the dispatch `dispatch_token`.

    A task sent with a countdown or eta (due `due_in` seconds from now) is held by a worker until then, which
    says nothing about it if it lacks the integration: its dispatch timeout counts from when it is due.
    Returns (fenced, written): written is False when the step had already completed."""
    row = hot_one(  # once per step: prepared, past SQLAlchemy's statement handling
        conn,
        _DISPATCH,
        id=execution_id,
        lease_token=token,
        lease=lease,
        run=run_index,
        name=name,
        position=position,
        exec_attempt=exec_attempt,
        token=dispatch_token,
        task_name=task_name,
        queue=queue,
        attempt=attempt,
        failures=failures,
        sends=sends,
        losses=losses,
        dispatch_timeout=dispatch_timeout,
        alive_for=max(0.0, due_in) + dispatch_timeout,
    )
    assert row is not None
    return bool(row["fenced"]), bool(row["written"])


_LOAD = text(
    """
    SELECT step_name, token, task_name, queue, attempt, sends, losses, state, worker, error, dispatch_timeout,
           attempt_started_at, dispatched_at, started_at, heartbeat_at, finished_at, alive_until,
           alive_until <= now() AS overdue
    FROM remote_steps WHERE execution_id = :id AND run_index = :run AND step_name = ANY(:names)
    """
)


def load(conn: Connection, execution_id: str, run_index: int, names: list[str]) -> dict[str, dict[str, Any]]:
    """The current dispatch of each named step of the run, by step name."""
    return {r["step_name"]: r for r in rows(conn, _LOAD, id=execution_id, run=run_index, names=names)}


_OF_RUN = text(
    """
    SELECT step_name, token AS task_id, task_name, queue, attempt, sends, losses, state, worker, error,
           dispatched_at, started_at, heartbeat_at, finished_at
    FROM remote_steps WHERE execution_id = :id AND run_index = :run
    """
)


def of_run(conn: Connection, execution_id: str, run_index: int) -> dict[str, dict[str, Any]]:
    """What operators see of each remote step of a run: task, queue, task id, worker, state."""
    return {r.pop("step_name"): r for r in rows(conn, _OF_RUN, id=execution_id, run=run_index)}


# A fleet's outcome report is one statement (one synchronous commit): it locks the execution row first (as a
# child reporting to its parent does), then records the outcome fenced on the dispatch token, and notifies a
# run holding its claim for it. The lock orders it with a park: a park committed before it is seen (the status
# comes back `waiting`, and the caller wakes the execution in a second statement, which sees both); a park
# after it sees the outcome in its own check. If the caller dies between the two, the liveness sweep finds a
# remote wait whose steps have all reported and wakes it.
_TARGET = f"""
    target AS (
        SELECT e.id, e.status FROM remote_steps r JOIN executions e ON e.id = r.execution_id
        WHERE r.token = :token AND e.run_index = r.run_index AND e.status IN ('pending', 'running', 'waiting')
        FOR UPDATE OF e
    ), dispatch AS (
        UPDATE remote_steps SET {{changes}}, finished_at = now(), worker = coalesce(:worker, worker)
        WHERE token = :token AND state IN {_IN_FLIGHT_SQL} AND EXISTS (SELECT 1 FROM target)
        RETURNING execution_id, run_index, step_name, attempt, attempt_started_at
    )"""
# Sent at commit to a run that holds its claim waiting for this outcome (see zart.engine.remote). It says what
# this statement wrote, so that run can go on without reading it back: the step, the dispatch, and for a
# checkpoint written here its output when that fits in a notification (else the run reads it).
OUTCOME_FITS = 7000  # bytes of output carried; a notification's payload must stay under 8000
_NOTIFY = """LATERAL (SELECT pg_notify('{channel}', (jsonb_build_object(
        'execution_id', d.execution_id, 'run', d.run_index, 'step', d.step_name, 'token', CAST(:token AS text),
        'status', {status}) || {output})::text) IS NULL AS notified) n"""
_RESULT = "d.execution_id, d.run_index, (SELECT status FROM target) AS status, n.notified"
_SUCCEEDED = "CASE WHEN EXISTS (SELECT 1 FROM step) THEN 'succeeded' ELSE 'unchanged' END"
_OUTPUT = f"""CASE WHEN octet_length(CAST(:output AS text)) < {OUTCOME_FITS}
        THEN jsonb_build_object('output', CAST(:output AS jsonb)) ELSE '{{}}'::jsonb END"""

_SUCCEED = hot_statement(
    "remote_succeed",
    f"""
    WITH {_TARGET.format(changes="state = 'succeeded'")}, step AS (
        UPDATE steps s SET status = 'completed', output = CAST(:output AS jsonb), error = NULL,
               completed_at = now(), updated_at = now(), wake_at = NULL
        FROM dispatch d
        WHERE s.execution_id = d.execution_id AND s.run_index = d.run_index AND s.name = d.step_name
          AND s.status = 'waiting'
        RETURNING s.execution_id
    ), attempt AS (
        INSERT INTO step_attempts (execution_id, run_index, step_name, attempt, started_at, ended_at, outcome)
        SELECT d.execution_id, d.run_index, d.step_name, d.attempt, d.attempt_started_at, now(), 'completed'
        FROM dispatch d WHERE d.attempt > 1 AND EXISTS (SELECT 1 FROM step)
        ON CONFLICT (execution_id, run_index, step_name, attempt) DO UPDATE
            SET ended_at = now(), outcome = 'completed', error = NULL
    )
    SELECT {_RESULT} FROM dispatch d, {_NOTIFY.format(channel=REMOTE_CHANNEL, status=_SUCCEEDED, output=_OUTPUT)}
    WHERE EXISTS (SELECT 1 FROM step)
    """
)

_FAIL = hot_statement(
    "remote_fail",
    f"""
    WITH {_TARGET.format(changes="state = 'failed', error = CAST(:error AS jsonb)")}
    SELECT {_RESULT} FROM dispatch d, {_NOTIFY.format(channel=REMOTE_CHANNEL, status="'failed'", output="'{}'::jsonb")}
    """
)


def record_success(conn: Connection, token: str, output: Any, worker: str | None) -> str | None:
    """Checkpoint the step's result, once, if `token` is its current dispatch. Returns the execution to wake.
    `conn` is in autocommit mode: the outcome commits before the wake is attempted."""
    return _record(conn, token, _SUCCEED, output=to_json(output), worker=worker)


def record_failure(conn: Connection, token: str, error: dict[str, Any], worker: str | None) -> str | None:
    """Note that dispatch `token` failed for good (the engine applies the step's retry policy on its next
    replay). Returns the execution to wake."""
    return _record(conn, token, _FAIL, error=to_json(error), worker=worker)


def _record(conn: Connection, token: str, statement: Any, **params: Any) -> str | None:
    done = hot_one(conn, statement, token=token, **params)  # once per task: prepared
    if done is None or done["status"] != "waiting":
        return None  # not ours, or the run is still going: it takes the outcome up itself (or its park does)
    woken = executions.wake_parent_if_children_done(conn, done["execution_id"], done["run_index"])
    return done["execution_id"] if woken else None


# What a fleet worker's main process reports, off the task's path, about the zart tasks it holds: received
# (prefetched, maybe waiting for a free pool process) or running. Either way the dispatch is alive for `silence`
# more seconds, so a worker killed with a task in hand is noticed within about a lease whether or not the task
# had started. A received task keeps the state `sent` (with its worker named). A retried task waiting for its
# countdown is held like any other (in the worker's memory: lost with it), so it is alive for `silence` from its
# worker's last report, not until its countdown ends (that later deadline, set by `mark_retrying`, is for a retry
# taken by a worker without the integration, which reports nothing). A liveness report only: a crash that loses
# it costs a re-dispatch, never a result.
_HELD = text(
    f"""
    WITH relaxed AS (SELECT set_config('synchronous_commit', 'off', true) AS value)
    UPDATE remote_steps SET
        state = CASE WHEN token = ANY(:running) THEN 'started' ELSE state END,
        started_at = CASE WHEN token = ANY(:running) THEN coalesce(started_at, now()) ELSE started_at END,
        worker = :worker, heartbeat_at = now(),
        alive_until = now() + make_interval(secs => :silence)
    FROM relaxed
    WHERE token = ANY(:tokens) AND state IN {_IN_FLIGHT_SQL} AND relaxed.value = 'off'
    RETURNING token
    """
)


def report_held(conn: Connection, tokens: list[str], running: list[str], worker: str, silence: float) -> set[str]:
    """A worker holds these dispatches (`running`: a pool process is running them); returns those still in
    flight (the others finished or were superseded: nothing to report on them any more)."""
    found = rows(conn, _HELD, tokens=tokens, running=running, worker=worker, silence=silence)
    return {r["token"] for r in found}


_RETRYING = text(
    f"""
    UPDATE remote_steps SET state = 'retry', heartbeat_at = now(),
           alive_until = greatest(now(), CAST(:eta AS timestamptz)) + make_interval(secs => dispatch_timeout)
    WHERE token = :token AND state IN {_IN_FLIGHT_SQL}
    """
)


def mark_retrying(conn: Connection, token: str, eta: datetime | None) -> None:
    """The task asked Celery to retry it: it is alive until its next run is due plus the dispatch timeout."""
    conn.execute(_RETRYING, {"token": token, "eta": eta})


_CLOSE = text(
    """
    UPDATE remote_steps SET state = 'closed', finished_at = coalesce(finished_at, now())
    WHERE execution_id = :id AND run_index = :run AND step_name = :name AND token = :token
    """
)


def close(conn: Connection, execution_id: str, run_index: int, name: str, token: str) -> None:
    """The engine has taken the dispatch's failure into account (in the same transaction as the step write)."""
    conn.execute(_CLOSE, {"id": execution_id, "run": run_index, "name": name, "token": token})


_WAKE_SILENT = text(
    f"""
    UPDATE executions SET status = 'pending', waiting_for = NULL, wake_at = NULL, dispatched_at = now(),
           updated_at = now()
    WHERE id IN (
        SELECT e.id FROM remote_steps r JOIN executions e ON e.id = r.execution_id AND e.run_index = r.run_index
        WHERE r.state IN {_IN_FLIGHT_SQL} AND r.alive_until <= now()
          AND e.status = 'waiting' AND e.waiting_for ->> 'kind' = 'remote'
          AND r.step_name IN (SELECT jsonb_array_elements_text(e.waiting_for -> 'steps'))
        LIMIT :limit FOR UPDATE OF e SKIP LOCKED)
    RETURNING id
    """
)

# A dispatch still in flight for a run that finished or was replaced will never be looked at again.
_ABANDON = text(
    f"""
    UPDATE remote_steps r SET state = 'abandoned', finished_at = now()
    WHERE r.state IN {_IN_FLIGHT_SQL} AND r.alive_until <= now()
      AND NOT EXISTS (SELECT 1 FROM executions e WHERE e.id = r.execution_id AND e.run_index = r.run_index
                      AND e.status IN ('pending', 'running', 'waiting'))
    """
)


def wake_silent(conn: Connection, limit: int) -> list[str]:
    """Executions waiting on a dispatch nobody has reported on in time: their replay re-dispatches or fails it.
    Only a dispatch the run awaits wakes it: one it scheduled and awaits later is sent again when it does."""
    conn.execute(_ABANDON)
    return [r["id"] for r in rows(conn, _WAKE_SILENT, limit=limit)]


_RELAX = text("SELECT set_config('synchronous_commit', 'off', true)")


def relax_commit(conn: Connection) -> None:
    """Let this transaction commit without waiting for its flush: for a park on remote steps, which a crash
    may undo (the run is then recovered and replayed), and which the result's synchronous commit flushes."""
    conn.execute(_RELAX)


# The dispatches still in flight of runs that were cancelled (by a cancel, or by a forced restart) or failed (by
# the execution's own timeout, or with scheduled steps never awaited): the fleet has yet to be told not to start
# them. Read through the in-flight index; such a run's rows leave it once revoked. A failed run an operator
# revives finds its step abandoned and sends it again.
_OF_CANCELLED_RUNS = text(
    f"""
    SELECT r.token FROM remote_steps r
    JOIN runs u ON u.execution_id = r.execution_id AND u.run_index = r.run_index
    WHERE r.state IN {_IN_FLIGHT_SQL} AND u.status IN ('cancelled', 'failed')
    ORDER BY r.alive_until LIMIT :limit
    """
)


def in_flight_of_cancelled_runs(conn: Connection, limit: int) -> list[str]:
    """The dispatch tokens (Celery task ids) still in flight for runs that were cancelled or failed."""
    return [r["token"] for r in rows(conn, _OF_CANCELLED_RUNS, limit=limit)]


_REVOKED = text(
    f"""
    UPDATE remote_steps r SET state = 'abandoned', finished_at = now()
    FROM runs u
    WHERE r.token = ANY(:tokens) AND r.state IN {_IN_FLIGHT_SQL}
      AND u.execution_id = r.execution_id AND u.run_index = r.run_index AND u.status IN ('cancelled', 'failed')
    """
)


def mark_revoked(conn: Connection, tokens: list[str]) -> None:
    """The fleet was told not to start these dispatches: nothing will look at them again. A failed run an operator
    revived meanwhile keeps its dispatch in flight (its replay waits on it; the dispatch timeout sends it again)."""
    conn.execute(_REVOKED, {"tokens": tokens})
