"""Remote steps, as the workflow sees them: dispatch a Celery task as a step, park, and take up its outcome.

Each replay walks the step's record: a completed checkpoint is returned; a dispatch still in flight parks
the workflow (no worker slot is held); a dispatch nobody reported on in time is sent again or ends as a
failed attempt; a failed attempt goes through the step's retry policy, which re-dispatches or fails the step.
The result itself is written by whoever reports it (see `zart.celery.results`), fenced on the dispatch token.

Before parking, a run may keep its claim for a short while (`ZART_REMOTE_HOLD`), listening for the outcome
(the result's transaction notifies at commit): a quick task's result is then taken up in the same run, with
no doorbell, claim or replay in between. The lease keeps being extended meanwhile; when the hold ends without
an outcome, or the listener is not available, the run parks as above.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from zart.celery.calls import RemoteHandle, build_call, due_in, home, new_token, revoke, send
from zart.errors import DispatchTimeout, LeaseLost, StepFailed, StepTimeout, WorkerLost
from zart.retry import RetryPolicy
from zart.store import db, notifications, steps
from zart.store import remote as remote_store

if TYPE_CHECKING:
    from zart.engine.run import ClaimedRun

log = logging.getLogger(__name__)

# A dispatch nobody reported on is sent once more (the message may have been lost) before it counts as failed.
MAX_SENDS = 2
# A worker that went silent mid-task (killed, lost) is replaced this many times before the attempt fails.
MAX_LOSSES = 3
# How long a hold waits for its listener to come up (the first hold in a process connects and probes it).
HOLD_LISTEN_READY = 1.0


@dataclass(frozen=True)
class _Outcome:
    state: str  # "done", "failed", "waiting"
    output: Any = None
    error: dict[str, Any] | None = None
    wake_at: datetime | None = None


class RemoteSteps:
    """The remote steps of one claimed run."""

    def __init__(self, ctx: ClaimedRun) -> None:
        self._ctx = ctx
        self._rows: dict[str, dict[str, Any]] = {}
        self._dispatched: set[str] = set()  # dispatched by this run: what we hold of them is current
        self._waiter: notifications.Waiter | None = None
        self._listener: notifications.FinishedNotifications | None = None
        self._heard_all = False  # the listener has been up since before every dispatch it waits for

    def start(
        self,
        name: str,
        target: Any,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        retry: RetryPolicy | None,
        timeout: float | None,
        dispatch_timeout: float | None,
    ) -> RemoteHandle:
        """Enter the step and make sure it has been dispatched; never waits."""
        position, checkpoint = self._ctx._enter(name, "remote")
        done = checkpoint is not None and checkpoint["status"] == "completed"
        handle = RemoteHandle(
            name=name,
            position=position,
            call=None if done else build_call(target, args, kwargs),
            policy=retry or RetryPolicy.none(),
            timeout=timeout,
            dispatch_timeout=dispatch_timeout if dispatch_timeout is not None else home().dispatch_timeout,
        )
        if handle.dispatch_timeout <= 0:
            raise ValueError("a dispatch timeout must be positive")
        if checkpoint is None:
            self._dispatch(handle, attempt=1, failures=0)
        return handle

    def collect(self, handles: Sequence[Any]) -> list[Any]:
        """The results in handle order; parks until all are in, raises StepFailed on a step that failed."""
        names = [handle.name for handle in handles]
        self._refresh(names)
        deadline = time.monotonic() + home().hold_seconds
        while True:
            outcomes = [self._advance(h) if isinstance(h, RemoteHandle) else self._child(h.name) for h in handles]
            for handle, outcome in zip(handles, outcomes, strict=True):
                if outcome.state == "failed":
                    error = outcome.error or {}
                    raise StepFailed(handle.name, str(error.get("type")), str(error.get("message")))
            waiting = [o for o in outcomes if o.state == "waiting"]
            if not waiting:
                return [o.output for o in outcomes]
            if not self._only_remote_in_flight(handles, outcomes) or not self._wait_for_outcome(deadline):
                timers = [o.wake_at for o in waiting if o.wake_at is not None]
                self._park(names, min(timers) if timers else None)
            self._take_up(names)

    # ------------------------------------------------------------- holding the claim

    def _watch(self) -> None:
        """Listen for this run's remote outcomes from its first dispatch (registered before the message is
        sent, so no outcome can be missed) until the run ends."""
        config = home()
        if self._waiter is not None or config.hold_seconds <= 0 or not config.listen_url:
            return
        listener = notifications.remote_outcomes(config.listen_url)
        execution_id = self._ctx.execution_id
        waiter = listener.watch(execution_id, ready_timeout=min(config.hold_seconds, HOLD_LISTEN_READY))
        self._waiter, self._listener = waiter, listener
        self._heard_all = listener.listening  # else an outcome may come before the LISTEN does: read once more
        self._ctx._keeper.when_stopped(lambda: listener.unwatch(execution_id, waiter))

    def _wait_for_outcome(self, deadline: float) -> bool:
        """Wait (until `deadline`) for an outcome of this run's remote steps to be recorded; False when the
        hold is spent or nobody listens (the caller parks)."""
        if self._waiter is None:  # the steps were dispatched by an earlier run: listen now, then read again
            self._watch()
            self._heard_all = False
        waiter, listener = self._waiter, self._listener
        if waiter is None or listener is None or not listener.listening:
            return False
        if not self._heard_all:
            self._heard_all = True
            return True
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        heard = waiter.event.wait(remaining)
        waiter.event.clear()
        return heard and listener.listening

    def _take_up(self, names: list[str]) -> None:
        """Apply what the notifications said was written; read back what they did not say (a failure, a large
        output, a wake without a notification, as after the listener reconnected)."""
        waiter = self._waiter
        bodies = []
        while waiter is not None and waiter.bodies:
            bodies.append(waiter.bodies.pop(0))
        unread = set(names) if not bodies else set()
        for body in bodies:
            name = body.get("step")
            if name not in names:  # a step scheduled but not awaited here: read it when it is
                self._dispatched.discard(name)
                continue
            row = self._rows.get(name)
            current = body.get("run") == self._ctx.run_index and row is not None and body.get("token") == row["token"]
            if current and body.get("status") == "succeeded" and "output" in body and name in self._dispatched:
                self._ctx._checkpoints[name] = {
                    **self._ctx._checkpoints[name], "status": "completed", "output": body["output"], "error": None,
                    "wake_at": None,
                }
                row["state"] = "succeeded"
            else:
                unread.add(name)
        if unread:
            self._reload(sorted(unread))

    def _only_remote_in_flight(self, handles: Sequence[Any], outcomes: list[_Outcome]) -> bool:
        """Holding is worth it only for dispatches in flight: a child execution or a retry back-off is not
        announced on the channel, so the run parks for those as before."""
        for handle, outcome in zip(handles, outcomes, strict=True):
            if outcome.state != "waiting":
                continue
            row = self._rows.get(handle.name)
            if not isinstance(handle, RemoteHandle) or row is None or row["state"] not in remote_store.IN_FLIGHT:
                return False
        return True

    def _reload(self, names: list[str]) -> None:
        """Read the steps again, including those this run dispatched (a report may have changed them)."""
        self._dispatched.difference_update(names)
        self._refresh(names)

    # ------------------------------------------------------------- one step

    def _refresh(self, names: list[str]) -> None:
        checkpoints = self._ctx._checkpoints
        stale = [
            n for n in names if checkpoints.get(n, {}).get("status") != "completed" and n not in self._dispatched
        ]
        if not stale:
            return
        with self._ctx._store_errors():
            for row in steps.load_steps(self._ctx._conn, self._ctx.execution_id, self._ctx.run_index, stale):
                checkpoints[row["name"]] = row
            self._rows.update(remote_store.load(self._ctx._conn, self._ctx.execution_id, self._ctx.run_index, stale))

    def _child(self, name: str) -> _Outcome:
        checkpoint = self._ctx._checkpoints[name]
        if checkpoint["status"] == "completed":
            return _Outcome("done", output=checkpoint["output"])
        if checkpoint["status"] == "failed":
            return _Outcome("failed", error=checkpoint["error"])
        return _Outcome("waiting")

    def _advance(self, handle: RemoteHandle) -> _Outcome:
        checkpoint = self._ctx._checkpoints[handle.name]
        status = checkpoint["status"]
        if status == "completed":
            return _Outcome("done", output=checkpoint["output"])
        current = checkpoint["exec_attempt"] == self._ctx.attempt
        failures = checkpoint["failures"] if current else 0
        if status == "failed":
            if current:
                return _Outcome("failed", error=checkpoint["error"])
            return self._dispatch(handle, attempt=checkpoint["attempts"] + 1, failures=0)
        row = self._rows.get(handle.name)
        if row is None or row["state"] == "abandoned":
            return self._dispatch(handle, attempt=checkpoint["attempts"] or 1, failures=failures)
        state = row["state"]
        if state == "failed":
            return self._fail(handle, row, row["error"] or {"type": "TaskFailed", "message": ""}, failures)
        if state == "closed":
            if _due(checkpoint.get("wake_at")):
                return self._dispatch(handle, attempt=row["attempt"] + 1, failures=failures)
            return _Outcome("waiting", wake_at=_as_datetime(checkpoint.get("wake_at")))
        if state == "succeeded":  # recorded after our read of the checkpoint
            self._dispatched.discard(handle.name)
            self._refresh([handle.name])
            checkpoint = self._ctx._checkpoints[handle.name]
            if checkpoint["status"] == "completed":
                return _Outcome("done", output=checkpoint["output"])
            return self._dispatch(handle, attempt=row["attempt"], failures=failures)
        return self._in_flight(handle, row, failures)

    def _in_flight(self, handle: RemoteHandle, row: dict[str, Any], failures: int) -> _Outcome:
        deadline = None
        if handle.timeout is not None:
            deadline = row["attempt_started_at"] + timedelta(seconds=handle.timeout)
            if deadline <= _now():
                timed_out = StepTimeout(f"celery task {row['task_name']!r} took longer than {handle.timeout}s")
                return self._fail(handle, row, _error(timed_out), failures)
        if not row["overdue"]:
            return _Outcome("waiting", wake_at=deadline)
        if row["state"] == "sent" and not row.get("worker"):  # no worker ever said it holds the task
            if row["sends"] < MAX_SENDS:
                log.info("no worker reported on %s (%s); sending it again", row["token"], row["task_name"])
                return self._dispatch(
                    handle, row["attempt"], failures, sends=row["sends"] + 1, losses=row["losses"],
                    supersedes=row["token"],
                )
            silent = DispatchTimeout(
                f"celery task {row['task_name']!r} was sent to queue {row['queue']!r} {row['sends']} times and no "
                f"worker started it within {row['dispatch_timeout']:g}s: is a worker serving that queue, with the "
                "task registered? (a worker without zart.celery.integrate(app) reports only its result)"
            )
            return self._fail(handle, row, _error(silent), failures)
        if row["losses"] < MAX_LOSSES:
            log.info("worker %s went silent running %s; sending it again", row["worker"], row["token"])
            return self._dispatch(
                handle, row["attempt"], failures, sends=1, losses=row["losses"] + 1, supersedes=row["token"]
            )
        lost = WorkerLost(f"the workers running celery task {row['task_name']!r} went silent {row['losses'] + 1} times")
        return self._fail(handle, row, _error(lost), failures)

    # ------------------------------------------------------------- writes

    def _dispatch(
        self,
        handle: RemoteHandle,
        attempt: int,
        failures: int,
        sends: int = 1,
        losses: int = 0,
        supersedes: str | None = None,
    ) -> _Outcome:
        """Record a new dispatch (a new token) and then send the task; the step waits for its result.

        `supersedes` is the dispatch this one replaces (nobody reported on it in time): it is revoked, or its
        message, still queued behind a backlog, would run the task body a second time for nothing."""
        assert handle.call is not None
        ctx = self._ctx
        token = new_token()
        _, written = ctx._write(
            remote_store.record_dispatch,
            run_index=ctx.run_index,
            name=handle.name,
            position=handle.position,
            exec_attempt=ctx.attempt,
            dispatch_token=token,
            task_name=handle.call.task_name,
            queue=handle.call.queue,
            attempt=attempt,
            failures=failures,
            sends=sends,
            losses=losses,
            dispatch_timeout=handle.dispatch_timeout,
            due_in=due_in(handle.call),
        )
        if not written:  # completed by a report that came in meanwhile
            return self._recorded_meanwhile(handle)
        now = _now()
        ctx._checkpoints[handle.name] = {
            **ctx._checkpoints.get(handle.name, {}),
            "name": handle.name,
            "kind": "remote",
            "position": handle.position,
            "status": "waiting",
            "attempts": attempt,
            "failures": failures,
            "exec_attempt": ctx.attempt,
            "wake_at": None,
        }
        self._rows[handle.name] = {
            "token": token,
            "task_name": handle.call.task_name,
            "queue": handle.call.queue,
            "attempt": attempt,
            "sends": sends,
            "losses": losses,
            "state": "sent",
            "attempt_started_at": now,
            "overdue": False,
        }
        self._dispatched.add(handle.name)
        self._watch()
        try:
            send(handle.call, token)
        except Exception as exc:  # the broker is unreachable: the dispatch timeout sends it again
            log.warning("could not send %s (%s): %s", token, handle.call.task_name, exc)
        if supersedes is not None:
            self._revoke(handle, supersedes)
        deadline = None if handle.timeout is None else now + timedelta(seconds=handle.timeout)
        return _Outcome("waiting", wake_at=deadline)

    def _fail(self, handle: RemoteHandle, row: dict[str, Any], error: dict[str, Any], failures: int) -> _Outcome:
        """A failed attempt: the retry policy re-dispatches (now or after its delay) or fails the step."""
        ctx = self._ctx
        failures += 1
        retry_at = None
        if handle.policy.allows_retry(failures):
            retry_at = _now() + timedelta(seconds=handle.policy.delay_before_retry(failures))
        with ctx._store_errors(), db.transaction(ctx._url) as conn:
            fenced, written = steps.record_failure(
                conn,
                execution_id=ctx.execution_id,
                token=ctx._token,
                lease=ctx._lease,
                run_index=ctx.run_index,
                name=handle.name,
                position=handle.position,
                kind="remote",
                error=error,
                attempt=row["attempt"],
                failures=failures,
                exec_attempt=ctx.attempt,
                started_at=row["attempt_started_at"],
                retry_at=retry_at,
            )
            if not fenced:
                raise LeaseLost()
            if written:
                remote_store.close(conn, ctx.execution_id, ctx.run_index, handle.name, row["token"])
        if not written:  # the task's result was recorded as this failure was judged: it is the step's outcome
            return self._recorded_meanwhile(handle)
        if row["state"] in remote_store.IN_FLIGHT:  # given up on (a timeout): a message still queued must not run
            self._revoke(handle, row["token"])
        checkpoint = ctx._checkpoints[handle.name]
        checkpoint.update(
            status="failed" if retry_at is None else "waiting",
            error=error,
            failures=failures,
            exec_attempt=ctx.attempt,
            wake_at=retry_at,
        )
        row["state"] = "closed"
        if retry_at is None:
            return _Outcome("failed", error=error)
        if retry_at <= _now():
            return self._dispatch(handle, attempt=row["attempt"] + 1, failures=failures)
        return _Outcome("waiting", wake_at=retry_at)

    def _revoke(self, handle: RemoteHandle, token: str) -> None:
        """Tell the workers not to start a dispatch the step no longer waits for, through the app it was sent
        with. Best effort: a worker that never hears of it runs the task, and its report is fenced out."""
        app = handle.call.signature._app if handle.call is not None else home().app
        if app is not None:
            revoke(app, [token])

    def _recorded_meanwhile(self, handle: RemoteHandle) -> _Outcome:
        """A write found the step completed by a report that came in meanwhile: its checkpoint is the truth."""
        self._dispatched.discard(handle.name)
        self._refresh([handle.name])
        return _Outcome("done", output=self._ctx._checkpoints[handle.name]["output"])

    def _park(self, names: list[str], wake_at: datetime | None) -> None:
        """Release the worker slot until a result is recorded, a timer is due, or a dispatch goes silent."""
        self._ctx._park_on_steps("remote", names, wake_at, relaxed=True)
        self._ctx._suspend(wake_at)


def _error(exc: BaseException) -> dict[str, Any]:
    return {"type": type(exc).__name__, "message": str(exc)}


def _now() -> datetime:
    return datetime.now(UTC)


def _as_datetime(value: Any) -> datetime | None:
    if isinstance(value, str):
        return datetime.fromisoformat(value)
    return value  # type: ignore[no-any-return]


def _due(value: Any) -> bool:
    wake_at = _as_datetime(value)
    return wake_at is not None and wake_at <= _now()
