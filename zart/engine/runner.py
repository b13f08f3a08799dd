"""One claimed run of an execution: claim, replay the handler in-process, then finish, park or retry.

The run holds one autocommit connection from claim to finish, so each step costs one statement (one commit)
and no pool checkout; multi-statement work (children reporting to a parent) takes a short transaction.
"""

from __future__ import annotations

import functools
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import Connection

from zart.engine import clock
from zart.engine.context import CHILD_FUNCTION_TASK, Context, Publish, current_context, ensure_storable, utcnow
from zart.engine.lease import LeaseKeeper
from zart.errors import (
    ExecutionTimeout,
    LeaseLost,
    MisplacedCall,
    RecoveriesExhausted,
    StoreUnavailable,
    Suspend,
    UndecodableExecution,
    UnstorableValue,
    WorkflowDefinitionError,
)
from zart.failures import error_json
from zart.flow.handoff import dispatch_held
from zart.observability import hooks
from zart.registry import Registry, Task, default_registry, resolve_function
from zart.retry import RetryPolicy
from zart.store import completion, db, executions, flow, sweeps, unregistered
from zart.store.sql import Undecodable

log = logging.getLogger(__name__)

# An execution of a task this worker does not register waits for a worker that does: a tenth of its age, within
# these bounds, so a new task's first executions during a rolling deploy come back within seconds while one no
# worker has been able to run for ten minutes is looked at once a minute, not every few seconds forever. The cap
# stays short because age is only a proxy: an old execution (a long sleep) whose doorbell reached a worker left out
# of a deploy may have a worker with its task running already.
UNKNOWN_TASK_BACKOFF = 5.0
UNKNOWN_TASK_BACKOFF_CAP = 60.0


def unregistered_task_delay(age_seconds: float) -> float:
    """Seconds before an execution whose task this worker lacks is offered again."""
    return min(UNKNOWN_TASK_BACKOFF_CAP, max(UNKNOWN_TASK_BACKOFF, age_seconds / 10))


@dataclass(frozen=True)
class RunnerConfig:
    database_url: str
    lease_seconds: float
    short_wait_hint: float
    worker_name: str
    max_recoveries: int = 5
    # modules a function child may name (ZART_IMPORTS); nothing else is ever resolved or imported
    workflow_modules: tuple[str, ...] = ()
    # (queue or None for the default one, task, execution id) -> whether a worker lacking the task should hand the
    # execution back as ready and ring it again, rather than leave it waiting for a worker with the task: one
    # with it is running (see zart.celery.standby.pass_on)
    pass_on: Callable[[str | None, str, str], bool] | None = None


class Standby(Protocol):
    """A worker task's promise to look for ready executions again, which a new execution may take instead of
    ringing a doorbell (see zart.celery.standby)."""

    def offer(self) -> None: ...

    def withdraw(self) -> bool:
        """False when the standby was taken: the worker must look once more before it leaves."""
        ...

    def claimed(self, execution_id: str) -> None:
        """The worker claimed this execution itself: should it have taken the standby, it needs no doorbell."""
        ...

    def leave(self) -> None:
        """Withdraw without looking again (a doorbell goes to each execution that took it and was not claimed)."""
        ...


@dataclass(frozen=True)
class ReadySelection:
    """What a worker may take straight from Postgres after a run: ready executions of these tasks, routed to
    these queues (`default_queue`: also those routed to the default queue, stored as no queue); `stand_by`
    makes a worker task's standby on those queues."""

    tasks: tuple[str, ...]
    queues: tuple[str, ...]
    default_queue: bool
    stand_by: Callable[[], Standby] | None = None


# How long one worker task keeps taking ready executions before it goes back to its doorbells (so a worker
# asked to stop is never kept busy for long, and the broker's order still gets its turn).
SELF_CLAIM_SECONDS = 5.0


def run_execution(
    execution_id: str,
    config: RunnerConfig,
    publish: Publish,
    registry: Registry = default_registry,
    make_context: Callable[..., Context] = Context,
    then_ready: ReadySelection | None = None,
) -> str:
    """Run one execution as far as it can go. Returns what happened (for logs and tests).

    With `then_ready`, the worker then claims and runs the next ready executions of its queues itself until
    none is left (or SELF_CLAIM_SECONDS have passed): a busy worker needs no broker round trip per execution,
    while an idle one is still woken by its doorbell. The doorbells of executions taken this way still
    arrive; each then costs one statement, its claim, which also makes the look for ready ones its taker owes.

    While it runs and looks, the worker stands by on its queues (`then_ready.stand_by`): a new execution that
    takes the standby rings no doorbell, and a worker whose standby was taken looks again before it leaves.

    `make_context` builds the handler's context (zart.testing hands in one that stubs steps by name)."""
    standby = then_ready.stand_by() if then_ready is not None and then_ready.stand_by is not None else None
    if standby is not None:
        standby.offer()
    try:
        return _run_then_ready(execution_id, config, publish, registry, make_context, then_ready, standby)
    finally:
        if standby is not None:
            standby.leave()  # after a last look that found nothing this withdraws nothing


def _run_then_ready(
    execution_id: str,
    config: RunnerConfig,
    publish: Publish,
    registry: Registry,
    make_context: Callable[..., Context],
    then_ready: ReadySelection | None,
    standby: Standby | None,
) -> str:
    token = uuid.uuid4().hex
    looked = False  # the doorbell's claim already looked for a ready execution and found none
    try:
        with db.autocommit(config.database_url) as conn:
            if then_ready is None:
                claimed, limited = executions.claim_or_route(
                    conn, execution_id, token, config.worker_name, config.lease_seconds
                )
            else:
                claimed, limited = executions.claim_or_next(
                    conn, execution_id, token, config.worker_name, config.lease_seconds, **_where(then_ready)
                )
            if claimed is not None and claimed["id"] == execution_id:
                outcome = _run_claimed(conn, claimed, token, config, publish, registry, make_context)
            elif limited:
                admitted = flow.claim(conn, execution_id, token, config.worker_name, config.lease_seconds)
                outcome = _run_limited(conn, admitted, token, config, publish, registry, make_context)
            else:
                outcome = "skipped"
                if claimed is None:
                    looked = then_ready is not None
                else:  # taken by the look in the doorbell's claim: its failure is not the doorbell's
                    try:
                        _run_taken(conn, claimed, token, config, publish, registry, make_context, standby)
                    except StoreUnavailable:
                        log.warning(_READY_UNAVAILABLE, exc_info=True)
                        return outcome
    except StoreUnavailable:
        log.warning("database unavailable while running %s; it will be recovered", execution_id, exc_info=True)
        return "store-unavailable"
    if then_ready is not None and not (looked and standby is None):  # else nothing is left to look for
        try:
            with db.autocommit(config.database_url) as conn:
                run_ready(conn, then_ready, config, publish, registry, make_context, standby, looked=looked)
        except StoreUnavailable:
            log.warning(_READY_UNAVAILABLE, exc_info=True)
    return outcome


_READY_UNAVAILABLE = "database unavailable while taking ready executions; they will be dispatched"


def _where(selection: ReadySelection) -> dict[str, Any]:
    """The look's parameters for a worker's selection."""
    return {"tasks": list(selection.tasks), "queues": list(selection.queues), "default_queue": selection.default_queue}


def _run_taken(
    conn: Connection,
    claimed: dict[str, Any],
    token: str,
    config: RunnerConfig,
    publish: Publish,
    registry: Registry,
    make_context: Callable[..., Context],
    standby: Standby | None,
) -> str:
    """Run an execution a look took (not its doorbell), as its doorbell's claim would have."""
    execution_id = claimed["id"]
    if standby is not None:
        standby.claimed(execution_id)
    if claimed["verdict"] is None:
        outcome = _run_claimed(conn, claimed, token, config, publish, registry, make_context)
    else:
        outcome = _run_limited(conn, claimed, token, config, publish, registry, make_context)
    # Celery logs only the doorbell's own outcome: these runs say theirs the same way
    log.info("execution %s (taken without its doorbell) ended: %r", execution_id, outcome)
    return outcome


def run_ready(
    conn: Connection,
    selection: ReadySelection,
    config: RunnerConfig,
    publish: Publish,
    registry: Registry = default_registry,
    make_context: Callable[..., Context] = Context,
    standby: Standby | None = None,
    looked: bool = False,
) -> int:
    """Claim and run ready executions of `selection` one after another (FOR UPDATE SKIP LOCKED: workers doing
    the same never wait for each other); returns how many were taken. Each is claimed exactly as a doorbell's
    would be (same conditions, pause rules, lease), oldest first. When no unlimited one is ready, the oldest
    limited one not yet held goes through flow control in the same statement, as its doorbell would (admitted
    and run, held, or cancelled), so a held one is never taken twice and held ones still start in their limit's
    order, by the hand-on. `looked`: the caller's own look just found nothing (the first is then not repeated)."""
    deadline = time.monotonic() + SELF_CLAIM_SECONDS
    ran = 0
    last = ""
    where = _where(selection)
    while time.monotonic() < deadline:
        token = uuid.uuid4().hex
        claimed = None
        if not looked:
            claimed = executions.claim_next(conn, token, config.worker_name, config.lease_seconds, **where)
        looked = False
        if claimed is None:
            if standby is None or standby.withdraw():
                return ran
            standby.offer()  # it was taken, maybe after this look began: look again, standing by anew
            continue
        _run_taken(conn, claimed, token, config, publish, registry, make_context, standby)
        ran += 1
        last = claimed["id"]
    # out of time with ready executions perhaps left: a doorbell (a no-op claim, then a new drain) hands them on
    publish(last, None)
    return ran


def _run_claimed(
    conn: Connection,
    claimed: dict[str, Any],
    token: str,
    config: RunnerConfig,
    publish: Publish,
    registry: Registry,
    make_context: Callable[..., Context],
) -> str:
    clock.keep_in_step(lambda: sweeps.database_now(conn))  # deadlines are the database's times
    return _run_hooked(_ClaimedRun(config, conn, claimed, token, publish, make_context), registry)


def _run_hooked(claimed_run: _ClaimedRun, registry: Registry) -> str:
    adopt = functools.partial(executions.adopt_trace_context, claimed_run.conn, claimed_run.execution_id)
    return hooks.run(claimed_run.claimed, functools.partial(claimed_run.run, registry), adopt)


@dataclass(frozen=True)
class _HandOn:
    """A limit whose capacity should go to its held executions now; `after_refusal`: the admission that counted
    its holders was refused, so the look must wait for holders giving their slots back at this moment."""

    limit: str
    after_refusal: bool = False


def _run_limited(
    conn: Connection,
    admitted: dict[str, Any] | None,
    token: str,
    config: RunnerConfig,
    publish: Publish,
    registry: Registry,
    make_context: Callable[..., Context],
) -> str:
    """An execution under a limit, as its admission (flow.claim) decided. Whoever ends a run while its limit
    holds executions back, or is refused, hands capacity on after its commit (a refusal may have counted a holder
    whose finish was committing): it runs the best held execution itself (no broker round trip) and rings the
    doorbells of any others that may start too."""
    outcome, hand_on = _run_admitted(conn, admitted, token, config, publish, registry, make_context)
    deadline = time.monotonic() + HAND_ON_SECONDS
    while hand_on is not None:
        next_id = _hand_on(conn, config, hand_on, publish, run_one=time.monotonic() < deadline)
        if next_id is None:
            break
        token = uuid.uuid4().hex
        admitted = flow.claim(conn, next_id, token, config.worker_name, config.lease_seconds)
        _, hand_on = _run_admitted(conn, admitted, token, config, publish, registry, make_context)
    return outcome


# How long one worker task may keep running held executions it handed a slot to before it leaves the rest to
# doorbells (so a worker asked to stop is never kept busy for long).
HAND_ON_SECONDS = 5.0


def _run_admitted(
    conn: Connection,
    claimed: dict[str, Any] | None,
    token: str,
    config: RunnerConfig,
    publish: Publish,
    registry: Registry,
    make_context: Callable[..., Context],
) -> tuple[str, _HandOn | None]:
    """Returns what happened and the capacity to hand on (None: nothing to hand on)."""
    if claimed is None:
        return "skipped", None
    execution_id = claimed["id"]
    limit = claimed["limit_name"]
    if claimed["verdict"] == "held":
        return "held", _HandOn(limit, after_refusal=True)
    if claimed["verdict"] == "cancel":
        busy = {"type": "ConcurrencyKeyBusy", "message": f"another execution with this key of '{limit}' is running"}
        finished, wake_parent = finish_with_parent(
            config.database_url, execution_id, status="cancelled", token=token, error=busy
        )
        if wake_parent is not None:
            publish(wake_parent, None)
        return ("cancelled" if finished else "lease-lost"), None
    if claimed["rated"]:  # the bucket may hold more tokens: the next held ones need not wait for this run
        dispatch_held(conn, [limit], publish, config.short_wait_hint)
    claimed_run = _ClaimedRun(config, conn, claimed, token, publish, make_context)
    outcome = _run_hooked(claimed_run, registry)
    return outcome, (_HandOn(limit) if claimed_run.hand_on else None)


def _hand_on(conn: Connection, config: RunnerConfig, hand_on: _HandOn, publish: Publish, run_one: bool) -> str | None:
    """Ring for the held executions that may start now, keeping the first to run here when `run_one`.
    On the run's own connection (this follows runs under a limit: no pool checkout), or a fresh one when the
    run's broke; the sweeper does this later if that fails too."""
    kept: list[str] = []

    def ring(execution_id: str, delay: float | None) -> None:
        if run_one and not kept and not delay:
            kept.append(execution_id)
        else:
            publish(execution_id, delay)

    limits, wait = [hand_on.limit], hand_on.after_refusal
    try:
        if conn.invalidated:
            with db.autocommit(config.database_url) as fresh:
                dispatch_held(fresh, limits, ring, config.short_wait_hint, wait)
        else:
            dispatch_held(conn, limits, ring, config.short_wait_hint, wait)
    except StoreUnavailable:
        log.warning("could not hand on the capacity of limit %s; the sweeper will", hand_on.limit, exc_info=True)
    return kept[0] if kept else None


class _ClaimedRun:
    def __init__(
        self,
        config: RunnerConfig,
        conn: Connection,
        claimed: dict[str, Any],
        token: str,
        publish: Publish,
        make_context: Callable[..., Context] = Context,
    ) -> None:
        self.make_context = make_context
        self.config = config
        self.conn = conn
        self.claimed = claimed
        self.token = token
        self.publish = publish
        self.execution_id: str = claimed["id"]
        # whether the limit slot this run held (if any) should be handed on when the run ends: known to be
        # needless only when the finish saw its limit holding nothing back
        self.hand_on = True

    def run(self, registry: Registry) -> str:
        if isinstance(self.claimed["input"], Undecodable) or isinstance(self.claimed["steps"], Undecodable):
            reason = UndecodableExecution(f"its input or checkpoints could not be decoded: {Undecodable.REASON}")
            return self._finish("failed", None, error_json(reason))
        if self.claimed["recoveries"] > self.config.max_recoveries:
            return self._finish("failed", None, error_json(exhausted(self.config.max_recoveries)))
        task = _resolve_task(self.claimed, registry, self.config.workflow_modules)
        if task is None:
            if self._pass_on():
                log.info("task %r is not registered in this worker; %s goes to one that has it",
                         self.claimed["task"], self.execution_id)
                return "passed-on"
            log.warning(
                "task %r is not registered in this worker; releasing %s", self.claimed["task"], self.execution_id
            )
            self._wait_for_a_worker_with_the_task()
            return "unknown-task"
        if self.claimed["past_deadline"]:
            return self._finish("failed", None, error_json(ExecutionTimeout("execution exceeded its timeout")))
        keeper = LeaseKeeper(
            self.config.database_url,
            self.execution_id,
            self.token,
            self.claimed["run_index"],
            self.claimed["attempt"],
            self.config.lease_seconds,
        )
        context = self.make_context(
            database_url=self.config.database_url,
            conn=self.conn,
            claimed=self.claimed,
            token=self.token,
            lease_seconds=self.config.lease_seconds,
            keeper=keeper,
            publish=self.publish,
            workflow_modules=self.config.workflow_modules,
        )
        keeper.start()
        reset = current_context.set(context)
        try:
            output = task.handler(context, self.claimed["input"])
            context.raise_if_stopped()  # a handler that caught a control signal and returned: the signal stands
            ensure_storable(output, "the execution's output")
        except Suspend:
            for execution_id in context.to_publish:
                self.publish(execution_id, None)
            self._send_wake_hint(context)
            return "suspended"
        except LeaseLost:
            return "lease-lost"
        except (WorkflowDefinitionError, MisplacedCall, ExecutionTimeout, UnstorableValue) as exc:
            return self._finish("failed", None, error_json(exc))
        except BaseException as exc:  # noqa: BLE001  user code may raise anything; the lease must not leak
            return self._retry_or_fail(task.retry, exc)
        finally:
            current_context.reset(reset)
            context.end()
            keeper.stop()
        if _past(self.claimed["deadline_at"]):  # the last step overran: the timeout wins over its result
            return self._finish("failed", None, error_json(ExecutionTimeout("execution exceeded its timeout")))
        return self._finish("completed", output, None)

    def _retry_or_fail(self, policy: RetryPolicy, exc: BaseException) -> str:
        """Execution-level retry: the handler runs again later; completed steps come from checkpoints."""
        attempt = self.claimed["attempt"]
        if not policy.allows_retry(attempt):
            return self._finish("failed", None, error_json(exc))
        delay = policy.delay_before_retry(attempt)
        self._release(attempt + 1, delay)
        self.publish(self.execution_id, delay if delay <= self.config.short_wait_hint else None)
        return "retrying"

    def _pass_on(self) -> bool:
        """Give an execution whose task this worker lacks back as ready, and ring its doorbell again, when a
        running worker of its queue has the task (a rolling deploy: the doorbell reached an older worker while a
        newer one was idle). Parking it to wait out a back-off would keep it from that worker for seconds. At
        most once in a while per execution, so workers lacking it never toss it back and forth; a function
        child is never passed on (which functions a worker may run is not announced)."""
        task = self.claimed["task"]
        if self.config.pass_on is None or task == CHILD_FUNCTION_TASK:
            return False
        queue = executions.queue_of(self.conn, self.execution_id)
        try:
            if not self.config.pass_on(queue, task, self.execution_id):
                return False
        except Exception as exc:  # the broker cannot say: wait for a worker with the task, as without it
            log.info("could not ask the broker which workers run %r: %s", task, exc)
            return False
        if not executions.park(
            self.conn, self.execution_id, self.token, wake_at=None, waiting_for=None,
            attempt=self.claimed["attempt"], status="pending",
        ):
            return True  # the lease was lost: its new owner has it
        self.publish(self.execution_id, None)
        return True

    def _wait_for_a_worker_with_the_task(self) -> None:
        """Give the execution back to wait for a worker that registers its task (one starting wakes it)."""
        delay = unregistered_task_delay(unregistered.age_seconds(self.conn, self.execution_id))
        executions.park(
            self.conn,
            self.execution_id,
            self.token,
            wake_at=utcnow() + timedelta(seconds=delay),
            waiting_for={"kind": "worker", "task": self.claimed["task"]},
            attempt=self.claimed["attempt"],
        )

    def _release(self, attempt: int, delay: float) -> None:
        """Give the execution back, ready again after `delay` seconds."""
        executions.park(
            self.conn,
            self.execution_id,
            self.token,
            wake_at=utcnow() + timedelta(seconds=delay),
            waiting_for={"kind": "retry"} if delay > 0 else None,
            attempt=attempt,
            status="waiting" if delay > 0 else "pending",
        )

    def _finish(self, status: str, output: Any, error: dict[str, Any] | None) -> str:
        """Terminal write, fenced on the lease; a child also reports to its parent in the same transaction."""
        if self.claimed["parent_id"] is None:
            done = executions.finish(
                self.conn, self.execution_id, status=status, token=self.token, output=output, error=error
            )
            if done is None:
                return "lease-lost"
            self.hand_on = bool(done["limit_holds_some"])
            return status
        finished, wake_parent = finish_with_parent(
            self.config.database_url, self.execution_id, status=status, token=self.token, output=output, error=error
        )
        if wake_parent is not None:
            self.publish(wake_parent, None)
        return status if finished else "lease-lost"

    def _send_wake_hint(self, context: Context) -> None:
        """A short wait also gets a Celery countdown, for latency; the sweeper still guarantees the wake-up."""
        suspension = context.suspension
        if suspension is None or suspension.wake_at is None:
            return
        delay = max((suspension.wake_at - utcnow()).total_seconds(), 0.0)
        if delay <= self.config.short_wait_hint:
            self.publish(self.execution_id, delay)


def _past(deadline_at: datetime | None) -> bool:
    return deadline_at is not None and deadline_at <= utcnow()


def exhausted(limit: int) -> RecoveriesExhausted:
    return RecoveriesExhausted(
        f"its run was taken back from a dead worker {limit} times without a new checkpoint (a step that kills its "
        "process, say by running out of memory); fix the cause, then restart it with the admin controls"
    )


def _resolve_task(claimed: dict[str, Any], registry: Registry, workflow_modules: tuple[str, ...]) -> Task | None:
    name = claimed["task"]
    if name == CHILD_FUNCTION_TASK:
        reference = claimed["function_ref"]

        def run_child_function(ctx: Context, data: dict[str, Any]) -> Any:
            """A function child runs as one step named after the parent's step. What it calls comes from the
            column its parent wrote, resolved only among the workflow modules; its input holds the arguments."""
            fn = resolve_function(reference, workflow_modules)
            return ctx.step(data["step"], fn, *data["args"], retry=RetryPolicy(**data["retry"]), **data["kwargs"])

        return Task(name=name, handler=run_child_function, retry=RetryPolicy.none(), timeout=None)
    return registry.get(name)


def finish_with_parent(
    database_url: str,
    execution_id: str,
    *,
    status: str,
    token: str | None,
    output: Any = None,
    error: dict[str, Any] | None = None,
    overdue_only: bool = False,
) -> tuple[bool, str | None]:
    """Finish an execution and, when it is a child, record its result in the parent in the same transaction.

    Returns (finished, parent to wake)."""
    with db.transaction(database_url) as conn:
        done = completion.finish_and_report(
            conn, execution_id, status=status, token=token, output=output, error=error, overdue_only=overdue_only
        )
    return done.finished, done.wake_parent
