"""Running workflows to completion inside a test process, against a real Postgres, on a controllable clock.

The driver plays the worker and the sweeper in one thread: it runs every ready execution of the tree (the
one started and all it started), and when nothing is left to run it moves time forward to the tree's
earliest timer (a sleep, a retry back-off, an event's timeout) so that it fires at once; an event the test
supplied is delivered when the workflow waits for it. Steps may be replaced by name with a value, a
function or an exception, for one execution and everything it starts.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from zart.config import Settings
from zart.engine import clock
from zart.engine.context import Context
from zart.engine.runner import RunnerConfig, run_execution
from zart.errors import ZartError
from zart.limits import TERMINAL_STATUSES
from zart.registry import Registry, Task, default_registry
from zart.service import ZartService, new_execution_id
from zart.store import db, timetravel

MAX_RUNS = 10_000


class WorkflowStuck(AssertionError):
    """The workflow waits for something the test did not provide (an event with no timeout, a pause)."""


class WorkflowFailed(AssertionError):
    """`result()` of an execution that failed or was cancelled."""


class StubbingContext(Context):
    """A context whose steps named in `stubs` return (or raise) what the test says instead of running."""

    stubs: Mapping[str, Any] = {}

    def _run_attempts(self, name: str, position: int, kind: str, fn: Callable[..., Any], *rest: Any) -> Any:
        if name in self.stubs:
            fn = _stub_body(self.stubs[name], transactional=kind == "transaction")
        return super()._run_attempts(name, position, kind, fn, *rest)


def _stub_body(stub: Any, transactional: bool) -> Callable[..., Any]:
    def body(*args: Any, **kwargs: Any) -> Any:
        if isinstance(stub, BaseException):
            raise stub
        if callable(stub):
            return stub(*(args[1:] if transactional else args), **kwargs)
        return stub

    return body


@dataclass
class Clock:
    """The engine's clock in this test: `now()` moves on only when the driver (or the test) advances it."""

    def now(self) -> datetime:
        return clock.utcnow()

    def advance(self, seconds: float | timedelta) -> None:
        clock.advance(seconds if isinstance(seconds, timedelta) else timedelta(seconds=seconds))

    def reset(self) -> None:
        clock.reset()


@dataclass
class WorkflowRun:
    """One execution started by the harness, and everything it started."""

    harness: WorkflowHarness
    execution_id: str
    events: dict[str, Any] = field(default_factory=dict)
    stubs: dict[str, Any] = field(default_factory=dict)  # for this execution and everything it starts

    def advance(self) -> WorkflowRun:
        """Run until the execution finishes or waits for something only the test can give (an event)."""
        self.harness.drive(self)
        return self

    def send_event(self, name: str, payload: Any = None) -> WorkflowRun:
        """Deliver `name` now (the execution must be waiting for it), then run on."""
        self.harness.service.send_event(self.execution_id, name, payload)
        return self.advance()

    def result(self) -> Any:
        """Run to the end and return the output; raises WorkflowFailed or WorkflowStuck otherwise."""
        self.harness.drive(self, must_finish=True)
        row = self.row
        if row["status"] != "completed":
            raise WorkflowFailed(f"execution {self.execution_id} {row['status']}: {row['error']}")
        return row["output"]

    @property
    def row(self) -> dict[str, Any]:
        return self.harness.tree(self.execution_id)[0]

    @property
    def status(self) -> str:
        return str(self.row["status"])

    @property
    def waiting_for_event(self) -> str | None:
        return self.row["waiting_for_event"]

    def steps(self) -> list[dict[str, Any]]:
        """Every step of the run, in order, as `zart status --verbose` shows them."""
        return self.harness.service.steps(self.execution_id)


class WorkflowHarness:
    """Starts and drives workflows in this process. `clock.now()` is the engine's (virtual) time."""

    def __init__(self, database_url: str, registry: Registry = default_registry) -> None:
        self.database_url = database_url
        self.registry = registry
        self.clock = Clock()
        self.service = ZartService(Settings(database_url=database_url), publish=self._publish, registry=registry)
        worker = f"test:{socket.gethostname()}"
        self._config = RunnerConfig(database_url, lease_seconds=60.0, short_wait_hint=0.0, worker_name=worker)

    def start(
        self,
        task: str | Task,
        data: dict[str, Any] | None = None,
        *,
        id: str | None = None,  # noqa: A002  (zart.schedule's name for it)
        events: Mapping[str, Any] | None = None,
        stubs: Mapping[str, Any] | None = None,
    ) -> WorkflowRun:
        """Schedule `task`; nothing runs until `advance`, `send_event` or `result`. `events` are delivered
        when the workflow waits for them; `stubs` replace steps by name (a value, a callable, an exception)."""
        name = task.name if isinstance(task, Task) else task
        if isinstance(task, Task) and self.registry.get(name) is None:
            self.registry.register(task)
        execution_id = id or new_execution_id()
        self.service.schedule(name, data or {}, execution_id=execution_id)
        return WorkflowRun(self, execution_id, dict(events or {}), dict(stubs or {}))

    def run(self, task: str | Task, data: dict[str, Any] | None = None, **options: Any) -> Any:
        """Start `task` and run it to the end; returns its output."""
        return self.start(task, data, **options).result()

    def tree(self, root_id: str) -> list[dict[str, Any]]:
        with db.autocommit(self.database_url) as conn:
            found = timetravel.execution_tree(conn, root_id)
        if not found:
            raise ZartError(f"no execution {root_id}")
        return sorted(found, key=lambda row: row["id"] != root_id)

    # ------------------------------------------------------------ the driver

    def drive(self, run: WorkflowRun, must_finish: bool = False) -> None:
        """Run the tree's ready executions until none is left, then give it what it waits for (a supplied
        event, or the clock moved to its next timer); stop when it finishes or waits for the test."""
        for _ in range(MAX_RUNS):
            tree = self.tree(run.execution_id)
            if tree[0]["status"] in TERMINAL_STATUSES:
                return
            ready = [row["id"] for row in tree if row["status"] == "pending"]
            if ready:
                with db.autocommit(self.database_url) as conn:
                    for execution_id in ready:
                        timetravel.make_due(conn, execution_id)  # a hold set on the test clock's time
                for execution_id in ready:
                    self._run_one(execution_id, run.stubs)
                continue
            if self._deliver_supplied_event(run, tree) or self._fire_next_timer(tree, run, must_finish):
                continue
            if must_finish:
                raise WorkflowStuck(
                    f"execution {run.execution_id} waits for {tree[0]['waiting_for']} and the test supplies nothing"
                )
            return
        raise WorkflowStuck(f"execution {run.execution_id} ran {MAX_RUNS} times without finishing")

    def _run_one(self, execution_id: str, stubs: Mapping[str, Any]) -> None:
        context = type("Stubbed", (StubbingContext,), {"stubs": stubs})
        # function children may name functions of the modules that define the registered workflows
        modules = tuple(sorted({task.handler.__module__ for task in self.registry.tasks()}))
        config = replace(self._config, workflow_modules=modules)
        run_execution(execution_id, config, self._publish, self.registry, make_context=context)

    def _deliver_supplied_event(self, run: WorkflowRun, tree: list[dict[str, Any]]) -> bool:
        for row in tree:
            name = row["waiting_for_event"]
            if row["status"] == "waiting" and name is not None and name in run.events:
                self.service.send_event(row["id"], name, run.events.pop(name))
                return True
        return False

    def _fire_next_timer(self, tree: list[dict[str, Any]], run: WorkflowRun, must_finish: bool) -> bool:
        """Move the clock to the earliest timer in the tree and fire it. An event's timeout fires only when the
        test wants the end (`result`): `advance` stops at an event wait, so the test can send the event."""
        timers = [
            row
            for row in tree
            if row["status"] == "waiting"
            and row["wake_at"] is not None
            and (must_finish or row["waiting_for_event"] is None)
        ]
        if not timers:
            return False
        due = min(timers, key=lambda row: row["wake_at"])
        self.clock.advance(due["wake_at"] - self.clock.now())
        with db.autocommit(self.database_url) as conn:
            timetravel.make_due(conn, due["id"])
        self._run_one(due["id"], run.stubs)
        return True

    @staticmethod
    def _publish(execution_id: str, countdown: float | None = None) -> bool:
        """Doorbells are not needed: the driver reads what is ready from the tree itself."""
        return True
