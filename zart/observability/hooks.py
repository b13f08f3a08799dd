"""The narrow door between the engine (and the service) and observability: one call where each thing happens.

Each hook sets the log fields, opens the span and counts the metrics for its moment; the engine says only
"a run of this claimed execution", "an attempt of this step", "parking for this reason".
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from zart.observability import logs, metrics, tracing

Carrier = dict[str, str]


def run(claimed: dict[str, Any], body: Callable[[], str], adopt: Callable[[Carrier], None]) -> str:
    """One claimed run: `body` runs it and returns its outcome (completed, failed, suspended, lease-lost, …).

    `adopt` stores this run's trace context for an execution that was scheduled without one, so its later runs
    join this trace."""
    task = claimed["task"]
    metrics.run_claimed(task)
    attributes = {
        "zart.execution_id": claimed["id"],
        "zart.task": task,
        "zart.run": claimed["run_index"],
        "zart.attempt": claimed["attempt"],
        "zart.parent_id": claimed.get("parent_id"),
    }
    stored = claimed.get("trace_context")
    with (
        logs.fields(execution_id=claimed["id"], task=task, run=claimed["run_index"]),
        tracing.span(f"zart.run {task}", attributes, parent=stored, kind="consumer") as span,
    ):
        if stored is None and tracing.active():
            carrier = tracing.current_carrier()
            if carrier:
                adopt(carrier)
        outcome = body()
        span.set_attribute("zart.outcome", outcome)
        if outcome == "failed":
            tracing.mark_error(span, "the execution failed")
    metrics.run_ended(task, outcome)
    return outcome


@contextmanager
def step_attempt(task: str, step: str, attempt: int) -> Iterator[None]:
    """One attempt of a step body: its log lines name the step, its span and duration are recorded."""
    started = time.perf_counter()
    failed = True
    attributes = {"zart.task": task, "zart.step": step, "zart.step.attempt": attempt}
    try:
        with logs.fields(step=step, attempt=attempt), tracing.span(f"zart.step {step}", attributes) as span:
            yield
            failed = False
            span.set_attribute("zart.outcome", "completed")
    finally:
        metrics.step_attempt(task, step, time.perf_counter() - started, failed)


def waiting(waiting_for: dict[str, Any], wake_at: datetime | None) -> None:
    """The run parks: an event on its span (a wait may last days; a span that long would help no one)."""
    tracing.add_event(
        "zart.wait",
        {
            "zart.wait.kind": waiting_for.get("kind"),
            "zart.step": waiting_for.get("step"),
            "zart.event": waiting_for.get("event"),
            "zart.wake_at": wake_at.isoformat() if wake_at is not None else None,
        },
    )


def child_trace_context() -> Carrier | None:
    """The context a child execution stores: the scheduling run's, so the child joins the parent's trace."""
    return tracing.current_carrier()


@contextmanager
def scheduling(task: str, execution_id: str, incoming: Carrier | None = None) -> Iterator[Carrier | None]:
    """Scheduling an execution: yields the trace context to store with it (None when tracing is off)."""
    with (
        tracing.continued_from(incoming),
        tracing.span(f"zart.schedule {task}", {"zart.task": task, "zart.execution_id": execution_id}, kind="producer"),
    ):
        yield tracing.current_carrier()


def scheduled_existing(execution_id: str) -> None:
    """The schedule found the execution its id or key already names: the span names that one, not the new id
    nothing was created under."""
    tracing.set_attributes({"zart.execution_id": execution_id, "zart.outcome": "existing"})


@contextmanager
def delivering_event(execution_id: str, event_name: str, stored: Callable[[], Carrier | None]) -> Iterator[None]:
    """An event delivery joins the execution's trace; the caller's own trace, if any, is linked."""
    if not tracing.active():
        yield
        return
    caller = tracing.current_carrier()
    attributes = {"zart.execution_id": execution_id, "zart.event": event_name}
    with tracing.span(
        f"zart.event {event_name}", attributes, parent=stored(), kind="producer", links=[caller] if caller else []
    ):
        yield


@contextmanager
def remote_step(task_name: str, token: str) -> Iterator[dict[str, Any]]:
    """Sending a step to a team's Celery fleet: a span in the run's trace; yields the `apply_async` keyword
    (message headers with `traceparent`) that lets an instrumented fleet worker continue it."""
    attributes = {"zart.remote.task": task_name, "zart.remote.id": token}
    with tracing.span(f"zart.remote {task_name}", attributes, kind="producer"):
        carrier = tracing.current_carrier()
        yield {"headers": carrier} if carrier else {}


def sweep_pass(seconds: float) -> None:
    metrics.sweep_pass(seconds)


def repaired(kind: str, found: list[str]) -> list[str]:
    """Count what a sweeper duty put right; returns `found` unchanged so the duty's line stays one line."""
    metrics.repaired(kind, len(found))
    return found


def pruned(count: int) -> None:
    metrics.repaired("pruned", count)
