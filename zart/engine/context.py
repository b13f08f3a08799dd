"""The workflow context: what a handler calls to run steps, sleep, wait and fan out.

A handler is replayed from the top on every claimed run. Each durable call takes the next position, looks
its name up among the run's checkpoints and either returns the recorded result or does the work once and
checkpoints it. When the handler must wait, the context records why, parks the execution and raises
`Suspend`, which unwinds the handler without user code being able to catch it.
"""

from __future__ import annotations

import contextvars
import fnmatch
import functools
import hashlib
import logging
import re
import signal
import threading
import time
import uuid as uuid_module
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import Connection

from zart.celery.calls import RemoteHandle, is_celery_target
from zart.engine import guards, pausing, transactions, versioning
from zart.engine.clock import utcnow
from zart.engine.lease import LeaseKeeper, RunningAttempt
from zart.engine.remote import RemoteSteps
from zart.engine.storable import as_replayed, ensure_storable
from zart.errors import (
    ControlSignal,
    DuplicateStepName,
    EventTimeout,
    ExecutionTimeout,
    LeaseLost,
    MisplacedCall,
    NonDeterminismError,
    StepFailed,
    StepTimeout,
    StoreUnavailable,
    Suspend,
    WorkflowDefinitionError,
)
from zart.failures import error_json, error_message
from zart.limits import MAX_ID_LENGTH
from zart.observability import hooks
from zart.registry import Task, function_reference, seconds
from zart.retry import RetryPolicy
from zart.store import db, executions, flow, pause, steps
from zart.store import remote as remote_store

log = logging.getLogger(__name__)

CHILD_FUNCTION_TASK = "zart.child-function"
RECORDED_VALUE_KINDS = ("now", "uuid", versioning.PATCH_KIND)
FINAL_STEP = ("completed", "failed")

current_context: contextvars.ContextVar[Context | None] = contextvars.ContextVar("zart_context", default=None)

Publish = Callable[[str, float | None], object]
_Call = TypeVar("_Call", bound=Callable[..., Any])


def _durable(method: _Call) -> _Call:
    """A durable call: refused once the run was told to stop, and noting when it tells the run to stop.

    A control signal (suspend, lease lost, misplaced call) means the run must write and do nothing more. A
    handler that catches BaseException would otherwise go on after it: run step bodies while the execution
    waits, or belongs to another worker or was cancelled. Each later durable call raises the signal again."""

    @functools.wraps(method)
    def call(self: Context, *args: Any, **kwargs: Any) -> Any:
        self.raise_if_stopped()
        if not self._in_step and threading.get_ident() != self._thread:
            self._stopped = _other_thread(method.__name__)
            raise self._stopped
        try:
            return method(self, *args, **kwargs)
        except ControlSignal as signal:
            self._stopped = signal
            raise

    return call  # type: ignore[return-value]


def _other_thread(call: str) -> MisplacedCall:
    """Durable calls take the run's next position and share its connection: made from several threads at once
    they would be recorded in whatever order the threads ran (a replay then fails as non-deterministic) and a
    body in one thread would make another thread's step a plain, unrecorded call."""
    return MisplacedCall(
        f"ctx.{call} was called from a thread other than the handler's, or after its run ended; "
        "durable calls belong to the handler's own thread: run work in parallel with ctx.schedule and ctx.wait_all"
    )


@dataclass(frozen=True)
class ChildHandle:
    """A parallel child started by `ctx.schedule`; pass handles to `ctx.wait_all`."""

    name: str
    execution_id: str


@dataclass
class Suspension:
    """Why the handler stopped: read by the runner to send a wake-up hint."""

    wake_at: datetime | None


class Context:
    """Handed to every handler as its first argument."""

    def __init__(
        self,
        *,
        database_url: str,
        conn: Connection,
        claimed: dict[str, Any],
        token: str,
        lease_seconds: float,
        keeper: LeaseKeeper,
        publish: Publish,
        workflow_modules: tuple[str, ...] = (),
    ) -> None:
        self.execution_id: str = claimed["id"]
        self.task_name: str = claimed["task"]
        self.run_index: int = claimed["run_index"]
        self.attempt: int = claimed["attempt"]
        self._url = database_url
        self._conn = conn
        self._token = token
        self._lease = lease_seconds
        self._keeper = keeper
        self._publish = publish
        self._workflow_modules = workflow_modules
        self._deadline = _monotonic_deadline(claimed.get("deadline_at"))
        self._checkpoints: dict[str, dict[str, Any]] = {s["name"]: s for s in claimed["steps"]}
        self._names_by_position = {s["position"]: s["name"] for s in claimed["steps"]}
        self._position = 0
        self._seen: set[str] = set()
        self._counters: dict[str, int] = {}
        self._in_step = False
        self._pause_version: str | None = claimed.get("pausing") or None
        self._pause_rules: list[dict[str, Any]] | None = None
        self._patches: dict[str, bool] = {}
        self.suspension: Suspension | None = None
        self.to_publish: list[str] = []
        self._remote_steps: RemoteSteps | None = None
        self._stopped: ControlSignal | None = None
        self._thread: int | None = threading.get_ident()  # the handler's: durable calls are made from it alone

    def end(self) -> None:
        """The run is over: a durable call on this context (kept by user code, say) is refused from now on,
        from any thread, instead of running a step for an execution that has moved on."""
        self._thread = None

    def raise_if_stopped(self) -> None:
        """Raise again the control signal a durable call raised, should user code have caught it."""
        if self._stopped is not None:
            raise self._stopped

    # ----------------------------------------------------------------- steps

    @_durable
    def step(
        self,
        name: str,
        fn: Callable[..., Any],
        *args: Any,
        retry: RetryPolicy | None = None,
        timeout: float | timedelta | None = None,
        rate_limit: str | None = None,
        inline: bool = False,
        dispatch_timeout: float | timedelta | None = None,
        **kwargs: Any,
    ) -> Any:
        """Run `fn(*args, **kwargs)` once and checkpoint its JSON result; on replay return the checkpoint.

        `rate_limit` names a token bucket (`zart.limit(name, rate=...)`) shared by every workflow: each attempt
        takes a token first, and waits durably (no worker slot held) until its token is due.

        A Celery task or signature is sent to its queue, to be run by the team's own workers, and the
        workflow parks until its result is recorded; `inline=True` runs its body here instead.
        """
        if self._in_step:
            return fn(*args, **kwargs)
        if not inline and is_celery_target(fn):
            handle = self._remote.start(name, fn, args, kwargs, retry, seconds(timeout), seconds(dispatch_timeout))
            return self._remote.collect([handle])[0]
        guards.require_plain_function(fn, f"step '{name}'")
        return self._step(name, "step", fn, args, kwargs, retry, timeout, rate_limit)

    @_durable
    def transaction(
        self, name: str, fn: Callable[..., Any], *args: Any, retry: RetryPolicy | None = None, **kwargs: Any
    ) -> Any:
        """Run `fn(conn, *args, **kwargs)` in one database transaction that also writes this step's checkpoint:
        its writes and the checkpoint commit together or not at all, so they are applied exactly once."""
        if self._in_step:
            raise WorkflowDefinitionError(f"ctx.transaction('{name}') cannot run inside another step")
        return self._step(name, "transaction", transactions.TransactionBody(self, fn), args, kwargs, retry, None)

    def _step(
        self,
        name: str,
        kind: str,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        retry: RetryPolicy | None,
        timeout: float | timedelta | None,
        rate_limit: str | None = None,
    ) -> Any:
        position, checkpoint = self._enter(name, kind)
        policy = retry or RetryPolicy.none()
        attempts = failures = 0
        bucket = RateBucket(rate_limit) if rate_limit is not None else None
        if checkpoint is not None:
            status = checkpoint["status"]
            if status == "completed":
                return checkpoint["output"]
            attempts = checkpoint["attempts"]
            current_attempt = checkpoint["exec_attempt"] == self.attempt
            failures = checkpoint["failures"] if current_attempt else 0
            if status == "failed" and current_attempt:
                error = checkpoint["error"] or {}
                raise StepFailed(name, str(error.get("type")), str(error.get("message")))
            reserved = status == "waiting" and current_attempt and holds_token(checkpoint)
            if status == "waiting" and current_attempt and not self._is_due(checkpoint):
                waiting_for = {"kind": "rate_limit", "limit": rate_limit} if reserved else {"kind": "retry"}
                self._park(checkpoint["wake_at"], {**waiting_for, "step": name})
            if bucket is not None and reserved:
                bucket.reserved = True
        # checked only when the body is to run: a step recorded before this check existed still replays
        limit = seconds(timeout)
        if limit is not None and not limit > 0:  # SIGALRM's timer reads 0 as "no timer" and refuses less
            raise ValueError(f"a step timeout must be positive, got {timeout!r}")
        return self._run_attempts(name, position, kind, fn, args, kwargs, policy, limit, attempts, failures, bucket)

    def _run_attempts(
        self,
        name: str,
        position: int,
        kind: str,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        policy: RetryPolicy,
        timeout: float | None,
        attempts: int,
        failures: int,
        bucket: RateBucket | None = None,
    ) -> Any:
        while True:
            if bucket is not None:
                self._take_token(bucket, name, position, attempts, failures)
            attempts += 1
            started_at = utcnow()
            running = RunningAttempt(name, position, kind, attempts, failures, started_at, time.monotonic())
            self._keeper.entering(running)
            try:
                with hooks.step_attempt(self.task_name, name, attempts):
                    result = self._call_step_body(fn, args, kwargs, timeout)
            except ControlSignal:
                self._keeper.leaving()
                raise
            except BaseException as exc:  # noqa: BLE001  any other escape from user code is this attempt's failure
                self._keeper.leaving()
                failures += 1
                retry_at = None
                if policy.allows_retry(failures):
                    retry_at = utcnow() + timedelta(seconds=policy.delay_before_retry(failures))
                self._write(
                    steps.record_failure,
                    run_index=self.run_index,
                    name=name,
                    position=position,
                    kind=kind,
                    error=error_json(exc),
                    attempt=attempts,
                    failures=failures,
                    exec_attempt=self.attempt,
                    started_at=started_at,
                    retry_at=retry_at,
                )
                if retry_at is None:
                    raise StepFailed(name, type(exc).__name__, error_message(exc)) from exc
                if retry_at > utcnow():
                    self._park(retry_at, {"kind": "retry", "step": name})
                continue
            self._keeper.leaving()
            if isinstance(result, transactions.Committed):
                return result.output  # checkpointed in the body's own transaction
            # a first attempt that succeeded quietly needs no attempt row: the checkpoint itself says it all
            history = attempts > 1 or failures > 0 or running.marked
            return self._checkpoint(name, position, kind, result, attempts, failures, started_at, history)

    def _take_token(self, bucket: RateBucket, name: str, position: int, attempts: int, failures: int) -> None:
        """Each attempt of a rate-limited step spends one token; a token not due yet is waited for durably."""
        if bucket.reserved:  # taken before the wait that just ended
            bucket.reserved = False
            return
        _, limited, due = self._write(
            flow.reserve_step_token,
            run_index=self.run_index,
            name=name,
            position=position,
            attempts=attempts,
            failures=failures,
            exec_attempt=self.attempt,
            limit_name=bucket.name,
        )
        if not limited:
            log.warning("step %r names rate limit %r, which has no rate; it runs unlimited", name, bucket.name)
        if due is not None:
            self._park(due, {"kind": "rate_limit", "limit": bucket.name, "step": name})

    def _call_step_body(
        self, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any], timeout: float | None
    ) -> Any:
        self._in_step = True
        try:
            with _time_limit(timeout):
                result = fn(*args, **kwargs)
            if not isinstance(result, transactions.Committed):
                ensure_storable(result, "a step result")
            return result
        finally:
            self._in_step = False

    def _checkpoint(
        self,
        name: str,
        position: int,
        kind: str,
        output: Any,
        attempts: int,
        failures: int,
        started_at: datetime,
        record_attempt: bool = False,
    ) -> Any:
        written = self._write(
            steps.checkpoint_completed,
            run_index=self.run_index,
            name=name,
            position=position,
            kind=kind,
            output=output,
            attempt=attempts,
            failures=failures,
            exec_attempt=self.attempt,
            started_at=started_at,
            record_attempt=record_attempt,
        )
        self._note_pausing(written.pausing)
        if not written.written:
            # Someone completed this step first (a takeover race): their checkpoint is the truth.
            return self._reload(name)["output"]
        return as_replayed(output)

    def recorded_position(self, name: str) -> int | None:
        """Where this run recorded step `name`, or None if it has not: lets a handler re-enter, in their
        recorded order, steps an earlier path took (error callbacks before an operator's retry)."""
        checkpoint = self._checkpoints.get(name)
        return None if checkpoint is None else int(checkpoint["position"])

    # ----------------------------------------------------------------- time

    @_durable
    def sleep(self, name: str, duration: float | timedelta) -> None:
        """Wait durably; the worker slot is released while the timer runs."""
        delay = seconds(duration) or 0.0
        self._sleep(name, lambda: utcnow() + timedelta(seconds=delay))

    @_durable
    def sleep_until(self, name: str, when: datetime) -> None:
        if when.tzinfo is None:
            raise ValueError("sleep_until needs a timezone-aware datetime")
        self._sleep(name, lambda: when)

    def _sleep(self, name: str, wake_at: Callable[[], datetime]) -> None:
        position, checkpoint = self._enter(name, "sleep")
        if checkpoint is None:
            checkpoint = self._record_wait(name, position, "sleep", wake_at())
        if checkpoint["status"] == "completed":
            return
        if not self._is_due(checkpoint):
            self._park(checkpoint["wake_at"], {"kind": "sleep", "step": name})
        self._write(steps.resolve_wait_step, run_index=self.run_index, name=name, status="completed")

    def _record_wait(self, name: str, position: int, kind: str, due: datetime | None) -> dict[str, Any]:
        """The first time a sleep or event wait is reached: record it (and when it is due) as waiting."""
        self._write(
            steps.record_wait_step,
            run_index=self.run_index,
            name=name,
            position=position,
            kind=kind,
            wake_at=due,
            exec_attempt=self.attempt,
        )
        return {"status": "waiting", "wake_at": due, "due": False}

    @_durable
    def now(self) -> datetime:
        """The current time, recorded on first use and replayed after."""
        return datetime.fromisoformat(self._recorded("now", lambda: utcnow().isoformat()))

    @_durable
    def uuid(self) -> str:
        """A random UUID, recorded on first use and replayed after."""
        return str(self._recorded("uuid", lambda: str(uuid_module.uuid4())))

    def idempotency_key(self, suffix: str) -> str:
        """A stable key for an external call: the same on every replay of this execution's run."""
        return f"{self.execution_id}:{self.run_index}:{suffix}"

    def _recorded(self, kind: str, make: Callable[[], Any]) -> Any:
        if self._in_step:  # the step's own checkpoint records what the body returns
            return make()
        index = self._counters.get(kind, 0) + 1
        self._counters[kind] = index
        name = f"__{kind}_{index}"
        position, checkpoint = self._enter(name, kind)
        if checkpoint is not None and checkpoint["status"] == "completed":
            return checkpoint["output"]
        return self._checkpoint(name, position, kind, make(), 1, 0, utcnow())

    # ----------------------------------------------------------------- versions

    @_durable
    def patched(self, patch_id: str) -> bool:
        """True where this execution runs the code added with patch `patch_id`; False in executions whose
        recorded run had already passed this point without it. Inside a step body, True without a marker: the
        body runs on the code deployed now, and a marker there would take a position its replays never reach."""
        if self._in_step:
            versioning.marker_name(patch_id)
            return True
        return versioning.patched(self, patch_id)

    @_durable
    def deprecate_patch(self, patch_id: str) -> None:
        """The patch's old path is gone: tolerate the marker older runs recorded here (none inside a body)."""
        if self._in_step:
            versioning.marker_name(patch_id)
            return
        versioning.deprecate_patch(self, patch_id)

    # ----------------------------------------------------------------- events

    @_durable
    def wait_for_event(self, name: str, timeout: float | timedelta | None = None) -> Any:
        """Wait durably for the event `name`; returns its payload, or raises EventTimeout."""
        position, checkpoint = self._enter(name, "event")
        if checkpoint is None:
            limit = seconds(timeout)
            due = None if limit is None else utcnow() + timedelta(seconds=limit)
            checkpoint = self._record_wait(name, position, "event", due)
        if checkpoint["status"] == "completed":
            return checkpoint["output"]
        if checkpoint["status"] == "failed":
            raise EventTimeout(name)
        if checkpoint["wake_at"] is not None and self._is_due(checkpoint):
            _, timed_out = self._write(
                steps.resolve_wait_step,
                run_index=self.run_index,
                name=name,
                status="failed",
                error=error_json(EventTimeout(name)),
            )
            if not timed_out and (delivered := self._reload(name))["status"] == "completed":
                return delivered["output"]  # the event arrived as the timeout fell due: it wins
            raise EventTimeout(name)
        self._park(checkpoint["wake_at"], {"kind": "event", "event": name, "step": name}, event=name)

    # ----------------------------------------------------------------- children

    @_durable
    def schedule(
        self,
        name: str,
        fn: Callable[..., Any] | Task,
        *args: Any,
        retry: RetryPolicy | None = None,
        timeout: float | timedelta | None = None,
        dispatch_timeout: float | timedelta | None = None,
        **kwargs: Any,
    ) -> ChildHandle | RemoteHandle:
        """Start `fn` in parallel and return a handle for wait_all: a Celery task is dispatched to its queue as a
        remote step; a workflow or a function becomes a child execution."""
        guards.refuse_inside_step(self._in_step, "ctx.schedule")  # a remote step too: it would take a position
        if is_celery_target(fn):
            return self._remote.start(name, fn, args, kwargs, retry, seconds(timeout), seconds(dispatch_timeout))
        position, checkpoint = self._enter(name, "child")
        if checkpoint is not None:
            return ChildHandle(name, checkpoint["child_id"])
        child_id = _child_id(self.execution_id, self.run_index, name)
        function_ref = None
        limit_name, priority = None, 0
        if isinstance(fn, Task):  # admitted under its task's limit, as when the service schedules it
            task_name, data, timeout = fn.name, (args[0] if args else kwargs.get("data", {})), fn.timeout
            limit_name, priority = fn.flow_limit, fn.priority
        else:
            task_name, timeout = CHILD_FUNCTION_TASK, None
            function_ref = function_reference(fn, self._workflow_modules)
            data = {
                "step": name,
                "args": list(args),
                "kwargs": kwargs,
                "retry": (retry or RetryPolicy.none()).to_json(),
            }
        ensure_storable(data, "a child's input")
        with self._store_errors(), db.transaction(self._url) as conn:
            created = executions.insert_execution(
                conn,
                execution_id=child_id,
                task=task_name,
                data=data,
                timeout=timeout,
                parent_id=self.execution_id,
                parent_run=self.run_index,
                parent_step=name,
                function_ref=function_ref,
                trace_context=hooks.child_trace_context(),
                limit_name=limit_name,
                priority=priority,
            )
            if created is None:
                guards.refuse_taken_child_id(executions.get_execution(conn, child_id), self.execution_id)
            if created is not None:
                guards.require_concurrency_key(created)
            if not steps.record_wait_step(
                conn,
                execution_id=self.execution_id,
                token=self._token,
                lease=self._lease,
                run_index=self.run_index,
                name=name,
                position=position,
                kind="child",
                wake_at=None,
                exec_attempt=self.attempt,
                child_id=child_id,
            ):
                raise LeaseLost()
        self._publish(child_id, None)
        self._checkpoints[name] = {
            "name": name,
            "kind": "child",
            "status": "waiting",
            "child_id": child_id,
            "position": position,
        }
        return ChildHandle(name, child_id)

    @_durable
    def wait_all(self, handles: Sequence[ChildHandle | RemoteHandle]) -> list[Any]:
        """Results in handle order; suspends until every one has finished."""
        guards.refuse_inside_step(self._in_step, "ctx.wait_all")
        if any(isinstance(handle, RemoteHandle) for handle in handles):
            return self._remote.collect(handles)
        names = [handle.name for handle in handles]
        unknown = [n for n in names if self._checkpoints.get(n, {}).get("kind", "missing") != "child"]
        if unknown:
            raise ValueError(f"wait_all got handles this run did not schedule: {unknown}")
        if any(self._checkpoints[n]["status"] not in ("completed", "failed") for n in names):
            with self._store_errors():
                for row in steps.load_steps(self._conn, self.execution_id, self.run_index, names):
                    self._checkpoints[row["name"]] = row
        pending = [n for n in names if self._checkpoints[n]["status"] not in ("completed", "failed")]
        if pending:
            self._park_for_children(names)
        for name in names:
            checkpoint = self._checkpoints[name]
            if checkpoint["status"] == "failed":
                error = checkpoint["error"] or {}
                raise StepFailed(name, str(error.get("type")), str(error.get("message")))
        return [self._checkpoints[name]["output"] for name in names]

    def _park_for_children(self, names: list[str]) -> None:
        self._park_on_steps("children", names, None)
        hooks.waiting({"kind": "children", "step": ",".join(names)}, None)
        self.suspension = Suspension(wake_at=None)
        raise Suspend()

    def _park_on_steps(self, kind: str, names: list[str], wake_at: datetime | None, *, relaxed: bool = False) -> None:
        """Park until the steps `names` (children or remote tasks) are done, or until `wake_at`.

        `relaxed` lets the park commit without waiting for its flush (see `remote.relax_commit`)."""
        with self._store_errors(), db.transaction(self._url) as conn:
            if relaxed:
                remote_store.relax_commit(conn)
            parked = executions.park(
                conn,
                self.execution_id,
                self._token,
                wake_at=wake_at,
                waiting_for={"kind": kind, "steps": names},
                attempt=self.attempt,
            )
            if not parked:
                raise LeaseLost()
            # One may have finished between our read and the park: then nobody else will wake us.
            if executions.wake_parent_if_children_done(conn, self.execution_id, self.run_index):
                self.to_publish.append(self.execution_id)

    # ----------------------------------------------------------------- machinery

    @property
    def _remote(self) -> RemoteSteps:
        if self._remote_steps is None:
            self._remote_steps = RemoteSteps(self)
        return self._remote_steps

    def _suspend(self, wake_at: datetime | None) -> None:
        self.suspension = Suspension(wake_at=wake_at)
        raise Suspend()

    def _enter(self, name: str, kind: str) -> tuple[int, dict[str, Any] | None]:
        """Claim the next position for `name`, checking uniqueness and agreement with the recorded run."""
        if not isinstance(name, str) or not name or len(name) > 200 or not _storable_text(name):
            raise ValueError(
                "a step name must be a string of 1 to 200 characters, without U+0000 or unpaired surrogates "
                "(PostgreSQL cannot store those)"
            )
        if kind in guards.POSITIONED_WAITS:
            guards.refuse_inside_step(self._in_step, guards.POSITIONED_WAITS[kind])
        self._check_boundary()
        if name in self._seen:
            raise DuplicateStepName(
                f"step name '{name}' is used twice in one run; give each step a unique name (e.g. f'charge-{{i}}')"
            )
        self._seen.add(name)
        position = self._position
        self._position += 1
        checkpoint = self._checkpoints.get(name)
        recorded = self._names_by_position.get(position)
        if (checkpoint is not None and checkpoint["position"] != position) or (
            recorded is not None and recorded != name
        ):
            recorded_here = recorded or f"nothing ('{name}' is recorded at position {checkpoint['position']})"
            raise NonDeterminismError(
                f"replay reached '{name}' ({kind}) at position {position}, but the recorded run has "
                f"'{recorded_here}' there; workflow code outside steps must be deterministic",
                position=position,
                recorded=recorded_here,
                reached=name,
            )
        if checkpoint is not None and checkpoint.get("kind", kind) != kind:
            raise NonDeterminismError(
                f"'{name}' was recorded as a {checkpoint['kind']} but is now used as a {kind}",
                position=position,
                recorded=f"{name} ({checkpoint['kind']})",
                reached=f"{name} ({kind})",
            )
        if kind not in RECORDED_VALUE_KINDS and (checkpoint is None or checkpoint["status"] not in FINAL_STEP):
            self._hold_if_paused(name)  # only what would start (or is still under way) is held; replays pass
        return position, checkpoint

    def _note_pausing(self, version: str | None) -> None:
        """A checkpoint reported the active rules' version; re-read this execution's rules only if it moved."""
        if version != self._pause_version:
            self._pause_rules = None
        self._pause_version = version

    def _hold_if_paused(self, name: str) -> None:
        """No matching step starts while an active rule holds it: park on the rule instead."""
        if self._pause_version is None:
            return
        if self._pause_rules is None:
            with self._store_errors():
                self._pause_rules = pause.active_rules_for(self._conn, self.execution_id)
        for rule in list(self._pause_rules):
            pattern = rule["step_pattern"]
            if pattern is None or fnmatch.fnmatchcase(name, pattern):
                pausing.hold_on_rule(self, rule, name)

    def _check_boundary(self) -> None:
        if self._keeper.lost.is_set():
            raise LeaseLost()
        if self._deadline is not None and time.monotonic() >= self._deadline:
            raise ExecutionTimeout(f"execution {self.execution_id} exceeded its timeout")

    def _is_due(self, checkpoint: dict[str, Any]) -> bool:
        wake_at = checkpoint.get("wake_at")
        if wake_at is None:
            return False
        if isinstance(wake_at, str):
            wake_at = datetime.fromisoformat(wake_at)
        return bool(checkpoint.get("due")) or wake_at <= utcnow()

    def _park(self, wake_at: Any, waiting_for: dict[str, Any], event: str | None = None) -> None:
        if isinstance(wake_at, str):
            wake_at = datetime.fromisoformat(wake_at)
        with self._store_errors():
            parked = executions.park(
                self._conn,
                self.execution_id,
                self._token,
                wake_at=wake_at,
                waiting_for=waiting_for,
                event=event,
                attempt=self.attempt,
            )
        if not parked:
            raise LeaseLost()
        hooks.waiting(waiting_for, wake_at)
        self.suspension = Suspension(wake_at=wake_at)
        raise Suspend()

    def _write(self, write: Callable[..., Any], **params: Any) -> Any:
        """Run a fenced store write; a lost fence means another owner (or a cancel) took over."""
        with self._store_errors():
            result = write(self._conn, execution_id=self.execution_id, token=self._token, lease=self._lease, **params)
        fenced = result[0] if isinstance(result, tuple) else result
        if not fenced:
            raise LeaseLost()
        return result

    def _reload(self, name: str) -> dict[str, Any]:
        with self._store_errors():
            (row,) = steps.load_steps(self._conn, self.execution_id, self.run_index, [name])
        return row

    @contextmanager
    def _store_errors(self) -> Iterator[None]:
        """A lost database interrupts the run (the sweeper recovers it); user code must not catch that."""
        try:
            with db.translated_errors():
                yield
        except StoreUnavailable as exc:
            raise LeaseLost(str(exc)) from exc


@dataclass
class RateBucket:
    """The token bucket a step draws on, and whether its next attempt already holds a token."""

    name: str
    reserved: bool = False


def holds_token(checkpoint: dict[str, Any]) -> bool:
    """A step row waiting for its reserved token (rather than for a retry)."""
    return (checkpoint.get("error") or {}).get("type") == flow.RATE_LIMITED


def _storable_text(text: str) -> bool:
    """Whether PostgreSQL can store `text`: no U+0000, and nothing UTF-8 cannot encode (a lone surrogate)."""
    if "\x00" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _child_id(parent_id: str, run_index: int, name: str) -> str:
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", name)[:80]
    if safe != name:
        safe += "-" + hashlib.sha1(name.encode()).hexdigest()[:8]
    run = "" if run_index == 0 else f"~r{run_index}"
    child_id = f"{parent_id}{run}~{safe}"
    if len(child_id) <= MAX_ID_LENGTH:
        return child_id
    # too long to be looked up (deep nesting, long parent ids): keep a readable prefix, made unique by a digest
    digest = hashlib.sha1(child_id.encode()).hexdigest()[:16]
    return f"{child_id[: MAX_ID_LENGTH - len(digest) - 1]}~{digest}"


def _monotonic_deadline(deadline_at: datetime | None) -> float | None:
    if deadline_at is None:
        return None
    return time.monotonic() + (deadline_at - utcnow()).total_seconds()


@contextmanager
def _time_limit(timeout: float | None) -> Iterator[None]:
    """Interrupt a step body after `timeout` seconds (SIGALRM in the main thread, else checked after)."""
    if timeout is None:
        yield
        return
    if threading.current_thread() is not threading.main_thread():
        started = time.monotonic()
        yield
        if time.monotonic() - started > timeout:
            raise StepTimeout(f"step took longer than {timeout}s")
        return

    def expire(signum: int, frame: Any) -> None:
        raise StepTimeout(f"step took longer than {timeout}s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, timeout)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
