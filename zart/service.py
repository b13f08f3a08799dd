"""What the CLI and the HTTP API call: schedule, status, list, cancel, wait, events, stats, tasks.

Each operation is one short transaction; messages are published only after it commits, and a failed
publish is reported, never fatal (the workers' sweeper re-publishes from the table).
"""

from __future__ import annotations

import logging
import math
import random
import re
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from zart import cancellation, paging
from zart.celery.canvas import CANVAS_TASK
from zart.celery.canvas import problems_of as canvas_problems
from zart.config import Settings
from zart.errors import (
    ExecutionAlreadyExists,
    ExecutionAlreadyFinished,
    ExecutionNotFound,
    InvalidData,
    NotWaitingForEvent,
    TaskNotRegistered,
)
from zart.flow.definitions import check_priority, missing_key
from zart.limits import (
    EXECUTION_STATUSES,
    MAX_ID_LENGTH,
    MAX_LIST_LIMIT,
    NAME_RULE,
    SCHEDULES_ONLY_TASKS,
    TERMINAL_STATUSES,
    is_name,
)
from zart.observability import hooks
from zart.registry import Registry, default_registry
from zart.schedules.celery_target import CELERY_TARGET_TASK
from zart.schedules.celery_target import input_problems as celery_target_problems
from zart.schema import storage_problem, validation_errors
from zart.store import admin as audit
from zart.store import cancel as cancel_store
from zart.store import catalog, counts, db, events, executions, liveness, notifications, pause
from zart.store import flow as flow_store

PublishFn = Callable[[str], bool]

if TYPE_CHECKING:
    from zart.celery.doorbell import Publisher

log = logging.getLogger(__name__)
READINESS_CACHE_SECONDS = 1.0

ID_PATTERN = re.compile(rf"[A-Za-z0-9][A-Za-z0-9._:~@-]{{0,{MAX_ID_LENGTH - 1}}}")  # always fullmatch
# A waiter re-reads its execution this often while the completion listener is down, and far less often while it
# listens (a safety net only: a notification is delivered once committed, and a lost listener wakes everyone).
# Each interval is jittered so waiters that started together never re-read together.
WAIT_POLL_UNLISTENED = 1.0
WAIT_POLL_LISTENING = 30.0
GONE_CHECK_INTERVAL = 1.0
MAX_REPLAY_LIMIT = 100_000


def _next_reread(listening: bool) -> float:
    interval = WAIT_POLL_LISTENING if listening else WAIT_POLL_UNLISTENED
    return time.monotonic() + interval * random.uniform(0.75, 1.25)


DEDUP_RACE_RETRIES = 3
MAX_DEBOUNCE = 86_400.0


@dataclass(frozen=True)
class FlowOptions:
    priority: int | None
    dedup_key: str | None
    debounce: float | None


@dataclass(frozen=True)
class TaskDefinition:
    schema: dict[str, Any] | None
    timeout: float | None
    flow_limit: str | None
    priority: int


def check_debounce(debounce: float | None, dedup_key: str | None) -> None:
    if debounce is None:
        return
    if dedup_key is None:
        raise InvalidData("debounce needs a dedup_key: it is the key whose later schedules replace the input")
    if isinstance(debounce, bool) or not isinstance(debounce, int | float) or not 0 < debounce <= MAX_DEBOUNCE:
        raise InvalidData(f"debounce must be a number of seconds above 0 and at most {MAX_DEBOUNCE:g}")


@dataclass(frozen=True)
class Page:
    executions: list[dict[str, Any]]
    total: int | None  # None when a time range or id prefix narrows the list (the counts cannot say)
    next_cursor: str | None


@dataclass(frozen=True)
class Scheduled:
    execution: dict[str, Any]
    created: bool
    published: bool


def new_execution_id() -> str:
    return f"exec-{uuid.uuid4().hex[:16]}"


def _well_formed(execution_id: Any) -> bool:
    return isinstance(execution_id, str) and ID_PATTERN.fullmatch(execution_id) is not None


def check_execution_id(execution_id: str) -> None:
    if not _well_formed(execution_id):
        raise InvalidData(
            f"an execution id must be 1 to {MAX_ID_LENGTH} characters: letters, digits and . _ : ~ @ - (not first)"
        )


def check_lookup_id(execution_id: str) -> None:
    """An id that breaks the id rules cannot name an execution, so looking one up finds nothing (exit 3, 404)."""
    if not _well_formed(execution_id):
        raise ExecutionNotFound(shown_id(execution_id))


def shown_id(execution_id: Any) -> str:
    """An id safe to echo in a message: printable, and cut short."""
    text = "".join(c if c.isprintable() else "?" for c in str(execution_id))
    return text if len(text) <= MAX_ID_LENGTH else text[:MAX_ID_LENGTH] + "…"


def check_storable(what: str, value: Any) -> None:
    problem = storage_problem(value)
    if problem is not None:
        raise InvalidData(f"{what} cannot be stored: {problem}")


def check_input_shape(data: Any) -> None:
    """An execution's input is a JSON object that may be stored."""
    if not isinstance(data, dict):
        raise InvalidData("data must be a JSON object")
    check_storable("data", data)


def check_name(kind: str, name: str) -> None:
    if not is_name(name):
        raise InvalidData(f"a {kind} must be {NAME_RULE}")


class ZartService:
    def __init__(
        self,
        settings: Settings,
        publish: PublishFn | None = None,
        registry: Registry = default_registry,
    ) -> None:
        self.settings = settings
        self._publish_fn = publish
        self._publish_later: Callable[[str, float], bool] | None = None
        self._own_publisher: Publisher | None = None
        self._registry = registry
        self._readiness_lock = threading.Lock()
        self._readiness: tuple[float, dict[str, str]] | None = None

    # ------------------------------------------------------------ publishing

    def publish(self, execution_id: str, countdown: float | None = None) -> bool:
        """Ring the doorbell for an execution (`countdown`: not before that many seconds); False when the broker
        is unreachable (the sweeper follows up)."""
        if self._publish_fn is None:
            publisher = self._publisher()
            self._publish_fn = publisher.publish
            self._publish_later = publisher.publish
        if countdown and self._publish_later is not None:
            return self._publish_later(execution_id, countdown)
        return self._publish_fn(execution_id)

    def _publisher(self) -> Publisher:
        if self._own_publisher is None:
            from zart.celery.doorbell import Publisher
            from zart.dispatch import create_celery_app

            self._own_publisher = Publisher(create_celery_app(self.settings))
        return self._own_publisher

    # ------------------------------------------------------------ commands

    def schedule(
        self,
        task: str,
        data: Any,
        *,
        execution_id: str | None = None,
        idempotency_key: str | None = None,
        triggered_by: str | None = None,
        priority: int | None = None,
        dedup_key: str | None = None,
        debounce: float | None = None,
        connection: Any = None,
    ) -> Scheduled:
        """Create a pending execution (or return the one with the same id / key) and ring the doorbell.

        `dedup_key`: while an execution with this key is active, scheduling again returns it instead of a new
        one. `debounce` (seconds, needs a dedup key): the start waits that long, and a schedule with the same
        key before the start replaces the input (the last one wins). `priority`: higher first among
        executions held by their queue's limits.

        With `connection` (the app's SQLAlchemy Session or Connection) the row is written in the app's open
        transaction and the doorbell rings only once that transaction commits; a rollback leaves nothing."""
        check_name("task name", task)
        if task in SCHEDULES_ONLY_TASKS:
            raise InvalidData(f"'{task}' is started by schedules only: create a schedule with a Celery target")
        if execution_id is not None:
            check_execution_id(execution_id)
        if idempotency_key is not None:
            check_name("idempotency key", idempotency_key)
        if dedup_key is not None:
            check_name("dedup key", dedup_key)
        if priority is not None:
            check_priority(priority)
        check_debounce(debounce, dedup_key)
        check_input_shape(data)
        new_id = execution_id or new_execution_id()
        flow = FlowOptions(priority, dedup_key, debounce)
        if connection is not None:
            from zart import apptx

            joined = apptx.join(connection, self.settings.database_url)
            with db.translated_errors(), db.zart_names(joined.conn, self.settings.database_url):
                scheduled, superseded = self._insert(
                    joined.conn, task, data, new_id, execution_id, idempotency_key, triggered_by, flow
                )
            if scheduled.created:
                joined.after_commit(lambda: self._after_insert(new_id, task, superseded, debounce))
            return scheduled
        with db.transaction(self.settings.database_url) as conn:
            scheduled, superseded = self._insert(
                conn, task, data, new_id, execution_id, idempotency_key, triggered_by, flow
            )
        if not scheduled.created:
            return scheduled
        published = self._after_insert(new_id, task, superseded, debounce)
        return Scheduled(scheduled.execution, created=True, published=published)

    def _after_insert(self, execution_id: str, task: str, superseded: list[str], debounce: float | None) -> bool:
        """After commit: the superseded executions' children are cancelled, woken parents rung, then the new one
        (whose doorbell may be left out when a worker will look for it anyway: see Publisher.ring_unless_queued)."""
        for older in superseded:
            self.cancel_descendants(older)
            self.publish(older)  # a cancelled one claims nothing; a parent its cancelled child woke runs on
        if debounce is None and self._publish_fn is None:
            return self._publisher().ring_unless_queued(execution_id, task)
        return self.publish(execution_id, debounce)

    def _insert(
        self,
        conn: Any,
        task: str,
        data: dict[str, Any],
        new_id: str,
        execution_id: str | None,
        idempotency_key: str | None,
        triggered_by: str | None,
        flow: FlowOptions,
    ) -> tuple[Scheduled, list[str]]:
        """The insert (or the existing execution it collides with) and the executions it supersedes."""
        definition = self.validate_input(conn, task, data)
        for _ in range(DEDUP_RACE_RETRIES):
            with hooks.scheduling(task, new_id) as trace_context:
                created = executions.insert_execution(
                    conn,
                    execution_id=new_id,
                    task=task,
                    data=data,
                    idempotency_key=idempotency_key,
                    timeout=definition.timeout,
                    triggered_by=triggered_by,
                    trace_context=trace_context,
                    limit_name=definition.flow_limit,
                    priority=definition.priority if flow.priority is None else flow.priority,
                    dedup_key=flow.dedup_key,
                    delay=flow.debounce,
                )
                # the id or a key is taken: the same request again, a duplicate, or a conflict
                existing = (
                    None if created is not None else self._existing(conn, execution_id, idempotency_key, flow.dedup_key)
                )
                if existing is not None:
                    hooks.scheduled_existing(existing["execution_id"])
            if created is not None:
                break
            if existing is not None:
                if flow.debounce is not None and flow.dedup_key is not None and existing["task"] == task:
                    replaced = executions.replace_unstarted_input(conn, existing["execution_id"], data, flow.dedup_key)
                    problem = missing_key(replaced) if replaced is not None else None
                    if problem is not None:
                        raise InvalidData(problem)
                return self._same_task_or_conflict(existing, task), []
            if flow.dedup_key is None:
                raise ExecutionAlreadyExists("an execution with that id already exists")
            # the active execution holding the dedup key finished meanwhile: try again
        else:
            raise ExecutionAlreadyExists(f"dedup key '{flow.dedup_key}' is contended; try again")
        problem = missing_key(created)
        if problem is not None:
            raise InvalidData(problem)
        record = {"execution_id": created["id"], **{k: created[k] for k in ("task", "status", "created_at")}}
        scheduled = Scheduled(record, created=True, published=False)
        return scheduled, self._supersede(conn, created)

    def validate_input(self, conn: Any, task: str, data: Any) -> TaskDefinition:
        """Everything new input for `task` must pass, wherever it comes from (schedule, restart): a JSON
        object that jsonb can store, nested at most MAX_JSON_DEPTH deep, conforming to the task's schema.
        Returns the task's definition."""
        check_input_shape(data)
        definition = self.definition(conn, task)
        problems = validation_errors(definition.schema, data)
        if task == CANVAS_TASK and not problems:
            problems = canvas_problems(data)
        if task == CELERY_TARGET_TASK and not problems:  # a restart's new input: it names the task to send
            problems = celery_target_problems(data)
        if problems:
            raise InvalidData("; ".join(problems))
        return definition

    @staticmethod
    def _supersede(conn: Any, created: dict[str, Any]) -> list[str]:
        """Under the cancel_in_progress strategy the newest execution of a key wins: every older active one
        is cancelled in the same transaction (a running one stops at its next step and frees its slot now)."""
        if created["key_strategy"] != "cancel_in_progress" or created["flow_key"] is None:
            return []
        superseded = []
        for execution_id in flow_store.older_with_key(conn, created["flow_limit"], created["flow_key"], created["id"]):
            done = cancel_store.cancel(conn, execution_id)
            if done.finished:
                superseded.append(execution_id)
            if done.wake_parent is not None:
                superseded.append(done.wake_parent)  # a child's cancel may leave its parent ready
        return superseded

    def _task_definition(self, conn: Any, task: str) -> tuple[dict[str, Any] | None, float | None]:
        """The task's input schema and timeout."""
        definition = self.definition(conn, task)
        return definition.schema, definition.timeout

    def definition(self, conn: Any, task: str) -> TaskDefinition:
        """The task's input schema, timeout, limit and priority: from this process's registry, else the catalog."""
        local = self._registry.get(task)
        if local is not None:
            return TaskDefinition(local.schema, local.timeout, local.flow_limit, local.priority)
        known = catalog.get_task(conn, task)
        if known is None:
            raise TaskNotRegistered(task)
        return TaskDefinition(known["schema"], known["timeout_seconds"], known["flow_limit"], known["priority"] or 0)

    def task_timeout(self, conn: Any, task: str) -> float | None:
        """The task's declared timeout, for a new run's deadline; None when it has none (or is not known)."""
        local = self._registry.get(task)
        if local is not None:
            return local.timeout
        known = catalog.get_task(conn, task)
        return None if known is None else known["timeout_seconds"]

    @staticmethod
    def _existing(conn: Any, execution_id: str | None, key: str | None, dedup_key: str | None) -> dict[str, Any] | None:
        if execution_id is not None:
            found = executions.get_execution(conn, execution_id)
            if found is not None:
                return found
        if key is not None:
            found = executions.get_by_idempotency_key(conn, key)
            if found is not None:
                return found
        if dedup_key is not None:
            return executions.get_active_by_dedup_key(conn, dedup_key)
        return None

    @staticmethod
    def _same_task_or_conflict(existing: dict[str, Any], task: str) -> Scheduled:
        if existing["task"] != task:
            raise ExecutionAlreadyExists(
                f"execution {existing['execution_id']} already exists for task '{existing['task']}'"
            )
        record = {k: existing[k] for k in ("execution_id", "task", "status", "created_at")}
        return Scheduled(record, created=False, published=False)

    def status(self, execution_id: str) -> dict[str, Any]:
        """The execution with its step counts."""
        check_lookup_id(execution_id)
        with db.autocommit(self.settings.database_url) as conn:
            row = executions.get_status(conn, execution_id)
        if row is None:
            raise ExecutionNotFound(execution_id)
        return row

    def holding_rule(self, execution_id: str) -> dict[str, Any] | None:
        """The pause rule holding this execution right now, if any (for an operator reading its status)."""
        with db.autocommit(self.settings.database_url) as conn:
            return pause.holding_rule(conn, execution_id)

    def holding_limit(self, execution_id: str) -> dict[str, Any] | None:
        """The limit holding this pending execution back, and why, if any."""
        with db.autocommit(self.settings.database_url) as conn:
            return flow_store.holding_limit(conn, execution_id)

    def steps(self, execution_id: str, run_index: int | None = None) -> list[dict[str, Any]]:
        """Every step of a run (current by default) with its attempts."""
        from zart.store import steps as steps_store

        row = self.status(execution_id)
        with db.autocommit(self.settings.database_url) as conn:
            return steps_store.steps_of_run(conn, execution_id, row["run_index"] if run_index is None else run_index)

    def list_executions(
        self,
        *,
        status: str | None = None,
        task: str | None = None,
        limit: int = 50,
        offset: int = 0,
        order: str = "desc",
    ) -> tuple[list[dict[str, Any]], int]:
        """One page and the total matching the filters (see `list_page` for the cursor as well)."""
        page = self.list_page(status=status, task=task, limit=limit, offset=offset, order=order)
        return page.executions, page.total

    def list_page(
        self,
        *,
        status: str | None = None,
        task: str | None = None,
        limit: int = 50,
        offset: int = 0,
        order: str = "desc",
        cursor: str | None = None,
        created_from: datetime | None = None,
        created_before: datetime | None = None,
        id_prefix: str | None = None,
    ) -> Page:
        """A page by offset (as the contract says) or after a cursor, with the cursor of the next page.

        Creation-time bounds and an id prefix narrow the list further; the total is then None (the maintained
        counts know status and task only). An id prefix is matched by scanning the time-ordered index: fast when
        matches are common, a longer scan when they are rare."""
        if status is not None and status not in EXECUTION_STATUSES:
            raise InvalidData(f"status must be one of {', '.join(EXECUTION_STATUSES)}")
        if task is not None:
            check_name("task name", task)
        if not 1 <= limit <= MAX_LIST_LIMIT:
            raise InvalidData(f"limit must be between 1 and {MAX_LIST_LIMIT}")
        if offset < 0:
            raise InvalidData("offset must not be negative")
        if order not in ("asc", "desc"):
            raise InvalidData("order must be 'asc' or 'desc'")
        if id_prefix is not None:
            check_name("id prefix", id_prefix)
        for moment in (created_from, created_before):
            if moment is not None and moment.tzinfo is None:
                raise InvalidData("times must include a timezone")
        if created_from is not None and created_before is not None and created_from >= created_before:
            raise InvalidData("the start of the time range must come before its end")
        after = None
        if cursor is not None:
            if offset:
                raise InvalidData("give either cursor or offset, not both")
            key = paging.decode(cursor, order)
            if not _well_formed(key.execution_id):  # an edited cursor: its id must not reach the query
                raise InvalidData(paging.NOT_ISSUED)
            after = (key.created_at, key.execution_id)
        with db.autocommit(self.settings.database_url) as conn:
            rows, more, total = executions.list_executions(
                conn,
                status=status,
                task=task,
                limit=limit,
                offset=offset,
                descending=order == "desc",
                after=after,
                created_from=created_from,
                created_before=created_before,
                id_prefix=id_prefix,
            )
        return Page(rows, total, paging.after_last(rows, order) if more else None)

    def cancel(self, execution_id: str, triggered_by: str | None = None) -> dict[str, Any]:
        """Cancel an active execution and its active children; a running one stops at its next step.

        With `triggered_by`, the cancel lands in the execution's audit trail under that name."""
        check_lookup_id(execution_id)
        url = self.settings.database_url
        with db.transaction(url) as conn:
            done = cancel_store.cancel(conn, execution_id)
            row = None if done.finished else executions.get_execution(conn, execution_id)
            if done.finished and triggered_by is not None:
                audit.record_action(conn, action="cancel", triggered_by=triggered_by, execution_id=execution_id)
        if not done.finished:
            if row is None:
                raise ExecutionNotFound(execution_id)
            if row["status"] == "cancelled":  # cancelled before: finish a cascade an earlier cancel left cut short
                self.cancel_descendants(execution_id)
            raise ExecutionAlreadyFinished(f"execution {execution_id} already finished as {row['status']}")
        if done.wake_parent is not None:  # a cancelled child counts as a failed one: its parent goes on
            self.publish(done.wake_parent)
        self.cancel_descendants(execution_id)
        return {"execution_id": execution_id, "status": "cancelled"}

    def cancel_descendants(self, execution_id: str, before_run: int | None = None) -> None:
        """Children are cancelled after the parent commits (see `zart.cancellation`)."""
        for parent in cancellation.cancel_descendants(self.settings.database_url, execution_id, before_run):
            self.publish(parent)

    def send_event(
        self,
        execution_id: str,
        event_name: str,
        payload: Any,
        *,
        connection: Any = None,
        triggered_by: str | None = None,
    ) -> bool:
        """Deliver to an execution parked on `event_name`; returns whether the doorbell was published.

        With `connection` the delivery joins the app's transaction and the doorbell follows its commit
        (returns False: nothing is published before then). With `triggered_by`, the delivery lands in the
        execution's audit trail under that name."""
        check_lookup_id(execution_id)
        check_name("event name", event_name)
        check_storable("the event payload", payload)
        if connection is not None:
            from zart import apptx

            joined = apptx.join(connection, self.settings.database_url)
            with db.translated_errors(), db.zart_names(joined.conn, self.settings.database_url):
                self._deliver(joined.conn, execution_id, event_name, payload, triggered_by)
            joined.after_commit(lambda: self.publish(execution_id))
            return False
        with db.transaction(self.settings.database_url) as conn:
            self._deliver(conn, execution_id, event_name, payload, triggered_by)
        return self.publish(execution_id)

    @staticmethod
    def _deliver(conn: Any, execution_id: str, event_name: str, payload: Any, triggered_by: str | None) -> None:
        stored_context = lambda: executions.trace_context(conn, execution_id)  # noqa: E731  (read only if traced)
        with hooks.delivering_event(execution_id, event_name, stored_context):
            delivered = events.deliver(conn, execution_id, event_name, payload)
            if not delivered:  # raised inside the span, which then tells that nothing was delivered
                row = executions.get_execution(conn, execution_id)
                if row is None:
                    raise ExecutionNotFound(execution_id)
                raise NotWaitingForEvent(
                    f"execution {execution_id} is not waiting for event '{event_name}' (status: {row['status']})"
                )
        if triggered_by is not None:
            details = {"event": event_name}
            audit.record_action(
                conn, action="event", triggered_by=triggered_by, execution_id=execution_id, details=details
            )

    def wait(
        self, execution_id: str, timeout: float, gone: Callable[[], bool] | None = None
    ) -> tuple[bool, dict[str, Any]]:
        """Block until terminal or `timeout`; returns (finished, latest state). Woken by LISTEN/NOTIFY, whose
        payload carries the final state, so most waits end without another read.

        `gone` tells whether the caller has hung up (an HTTP client that disconnected): it is asked every
        GONE_CHECK_INTERVAL, and a waiter whose caller left stops early instead of holding a thread."""
        check_lookup_id(execution_id)
        if math.isnan(timeout):  # it would compare false with every deadline: a wait for good, re-reading in a loop
            raise InvalidData("timeout must be a number of seconds")
        watcher = notifications.for_url(self.settings.libpq_url)
        waiter = watcher.watch(execution_id)
        deadline = time.monotonic() + max(timeout, 0.0)
        try:
            row = self.status(execution_id)
            reread_at = _next_reread(watcher.listening)
            while row["status"] not in TERMINAL_STATUSES:
                if time.monotonic() >= deadline or (gone is not None and gone()):
                    return False, row
                due = min(deadline, reread_at)
                nap = due - time.monotonic()
                if gone is not None:
                    nap = min(nap, GONE_CHECK_INTERVAL)
                if not waiter.event.wait(max(nap, 0.0)) and time.monotonic() < due:
                    continue  # only the caller check was due
                waiter.event.clear()
                final = waiter.final
                row = final if final is not None else self.status(execution_id)
                reread_at = _next_reread(watcher.listening)
            return True, row
        finally:
            watcher.unwatch(execution_id, waiter)

    def stats(self) -> dict[str, int]:
        with db.autocommit(self.settings.database_url) as conn:
            counts = executions.count_by_status(conn)
        return {status: counts.get(status, 0) for status in EXECUTION_STATUSES}

    def tasks(self) -> list[dict[str, Any]]:
        with db.autocommit(self.settings.database_url) as conn:
            return catalog.list_tasks(conn)

    def count_stranded(self) -> int:
        """Executions that nothing will ever move again (a gauge that must stay at 0)."""
        with db.autocommit(self.settings.database_url) as conn:
            return liveness.count_stranded(conn)

    def replay(self, *, task: str | None = None, since: Any = None, limit: int = 100) -> list[dict[str, Any]]:
        """Replay recorded executions against this process's workflow code (no side effects); one result each,
        `outcome` being consistent, nondeterministic, error or unknown-task."""
        from zart.engine.replay import replay_histories

        if task is not None:
            check_name("task name", task)
        if not 1 <= limit <= MAX_REPLAY_LIMIT:
            raise InvalidData(f"limit must be between 1 and {MAX_REPLAY_LIMIT}")
        results = replay_histories(self.settings.database_url, self._registry, task=task, since=since, limit=limit)
        return [result.to_json() for result in results]

    def oldest_pending_age(self) -> float:
        """Seconds the oldest pending execution has waited for a worker (0 when none): a backlog gauge."""
        with db.autocommit(self.settings.database_url) as conn:
            return executions.oldest_pending_age(conn)

    def pending_by_task(self) -> list[dict[str, Any]]:
        """Queue depth and oldest pending age per task, for the API's /metrics."""
        with db.autocommit(self.settings.database_url) as conn:
            return counts.pending_by_task(conn)

    def readiness(self, timeout: float = 2.0) -> dict[str, str]:
        """`ok` or `unavailable` for each dependency a front end needs: the database and the broker.

        The answer is public (probes need no token), so it names what failed and nothing else (the reason,
        which may carry hosts and roles, goes to the log), and it is reused for READINESS_CACHE_SECONDS: a
        flood of probes costs one database round trip and one broker connection a second."""
        with self._readiness_lock:
            cached = self._readiness
            if cached is not None and time.monotonic() - cached[0] < READINESS_CACHE_SECONDS:
                return dict(cached[1])
            checks = {
                "database": _probe("database", self._ping_database),
                "broker": _probe("broker", lambda: self._ping_broker(timeout)),
            }
            self._readiness = (time.monotonic(), checks)
            return dict(checks)

    def _ping_database(self) -> None:
        from zart.store import health

        with db.autocommit(self.settings.database_url) as conn:
            health.ping(conn)

    def _ping_broker(self, timeout: float) -> None:
        from kombu import Connection

        # a read timeout too: a broker that accepts the connection but never answers the ping would hold the
        # probe, and every probe queued behind its lock, forever
        options = {"socket_timeout": timeout}
        with Connection(self.settings.broker_url, connect_timeout=timeout, transport_options=options) as conn:
            conn.ensure_connection(max_retries=0)  # one attempt: a probe must answer quickly


def _probe(dependency: str, check: Callable[[], None]) -> str:
    try:
        check()
    except Exception as exc:  # any failure means not ready; the reason is logged, never shown to the caller
        log.warning("readiness: the %s did not answer: %s: %s", dependency, type(exc).__name__, exc)
        return "unavailable"
    return "ok"
