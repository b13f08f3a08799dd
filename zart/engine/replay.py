"""Replaying recorded histories against the current code, in-process and without side effects.

A replay hands the handler a context that only reads: a completed step returns its checkpoint, a recorded
wait resolves as it did; the first thing the recorded run does not hold (a missing step, a wait still
pending, a write of any kind) ends that replay as far as history goes. A step the code reaches at a recorded
position under another name is the non-determinism a deploy must not ship.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from zart.engine.context import CHILD_FUNCTION_TASK, Context, current_context
from zart.engine.remote import RemoteSteps
from zart.errors import ControlSignal, NonDeterminismError, WorkflowDefinitionError
from zart.registry import Registry
from zart.store import db, history


class ReachedFrontier(ControlSignal):
    """The code went past what the recorded run holds: this replay is done, and consistent so far."""


@dataclass(frozen=True)
class ReplayResult:
    execution_id: str
    task: str
    status: str
    outcome: str  # consistent | nondeterministic | error | unknown-task
    position: int | None = None
    recorded: str | None = None
    reached: str | None = None
    message: str | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class _NoLease:
    """Replays hold no lease: nothing to lose, nothing to extend."""

    def __init__(self) -> None:
        self.lost = threading.Event()
        self.current = None

    def entering(self, attempt: Any) -> None:  # pragma: no cover - a replay never runs a step body
        raise ReachedFrontier()

    def leaving(self) -> None:  # pragma: no cover
        pass


class _ReplayRemoteSteps(RemoteSteps):
    """Remote steps as a replay sees them: a dispatch still in flight, or one whose failure would now be judged,
    is where the record ends (a live run would listen for its outcome there, or write the failure in a
    transaction of its own, not through `_write`)."""

    def _wait_for_outcome(self, deadline: float) -> bool:
        return False

    def _fail(self, *args: Any, **kwargs: Any) -> Any:
        raise ReachedFrontier()


class ReplayContext(Context):
    """A context that answers only from the recorded run and stops where the record ends."""

    @property
    def _remote(self) -> RemoteSteps:
        if self._remote_steps is None:
            self._remote_steps = _ReplayRemoteSteps(self)
        return self._remote_steps

    def _enter(self, name: str, kind: str) -> tuple[int, dict[str, Any] | None]:
        position, checkpoint = super()._enter(name, kind)
        if checkpoint is None:
            raise ReachedFrontier()
        return position, checkpoint

    def _run_attempts(self, *args: Any, **kwargs: Any) -> Any:
        raise ReachedFrontier()  # a step the record has not finished would run its body

    def _write(self, write: Callable[..., Any], **params: Any) -> Any:
        raise ReachedFrontier()

    def _park(self, wake_at: Any, waiting_for: dict[str, Any], event: str | None = None) -> None:
        raise ReachedFrontier()

    def _park_for_children(self, names: list[str]) -> None:
        raise ReachedFrontier()

    def _park_on_steps(self, kind: str, names: list[str], wake_at: Any, *, relaxed: bool = False) -> None:
        raise ReachedFrontier()  # a wait on remote steps (beside children or not) still in flight

    def _hold_if_paused(self, name: str) -> None:
        return None


def replay_one(record: dict[str, Any], registry: Registry, database_url: str, conn: Any) -> ReplayResult:
    """Replay one recorded execution against `registry`'s current handler for its task."""
    facts = {"execution_id": record["id"], "task": record["task"], "status": record["status"]}
    task = registry.get(record["task"])
    if task is None:
        return ReplayResult(**facts, outcome="unknown-task", message="the task is not registered in this code")
    claimed = {**record, "deadline_at": None, "pausing": False}
    ctx = ReplayContext(
        database_url=database_url,
        conn=conn,
        claimed=claimed,
        token="",
        lease_seconds=0.0,
        keeper=_NoLease(),  # type: ignore[arg-type]
        publish=lambda *_: None,
    )
    reset = current_context.set(ctx)
    try:
        task.handler(ctx, record["input"])
        ctx.raise_if_stopped()
    except ReachedFrontier:
        return ReplayResult(**facts, outcome="consistent")
    except NonDeterminismError as exc:
        return ReplayResult(
            **facts,
            outcome="nondeterministic",
            position=exc.position,
            recorded=exc.recorded,
            reached=exc.reached,
            message=str(exc),
        )
    except (WorkflowDefinitionError, ControlSignal) as exc:
        return ReplayResult(**facts, outcome="error", message=f"{type(exc).__name__}: {exc}")
    except Exception as exc:
        if record["status"] == "failed":
            return ReplayResult(**facts, outcome="consistent")  # it failed then too
        return ReplayResult(**facts, outcome="error", message=f"{type(exc).__name__}: {exc}")
    finally:
        current_context.reset(reset)
        ctx.end()
    return _finished(ctx, record, facts)


def _finished(ctx: ReplayContext, record: dict[str, Any], facts: dict[str, Any]) -> ReplayResult:
    """The handler returned: the recorded run must not hold steps the code no longer reaches."""
    beyond = sorted(p for p in ctx._names_by_position if p >= ctx._position)
    if not beyond:
        return ReplayResult(**facts, outcome="consistent")
    name = ctx._names_by_position[beyond[0]]
    return ReplayResult(
        **facts,
        outcome="nondeterministic",
        position=beyond[0],
        recorded=name,
        reached="the end of the workflow",
        message=f"the code returns before position {beyond[0]}, where the recorded run has '{name}'",
    )


def replay_histories(
    database_url: str, registry: Registry, *, task: str | None, since: datetime | None, limit: int
) -> Iterator[ReplayResult]:
    """Replay the newest `limit` recorded executions (of `task`, created since `since`)."""
    with db.autocommit(database_url) as conn:
        records = history.recorded_histories(
            conn, task=task, since=since, limit=limit, child_task=CHILD_FUNCTION_TASK
        )
        for record in records:
            yield replay_one(record, registry, database_url, conn)
