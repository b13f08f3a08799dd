"""What application code calls: start a workflow, deliver an event — optionally inside the app's transaction."""

from __future__ import annotations

import threading
from typing import Any

from zart import appconfig
from zart.config import Settings
from zart.registry import Task
from zart.service import ZartService

_lock = threading.Lock()
_cached: tuple[Settings, ZartService] | None = None


def _service() -> ZartService:
    """One service (and so one publisher) per configuration; `zart.configure` makes a new one."""
    global _cached
    settings = appconfig.settings()
    with _lock:
        if _cached is None or _cached[0] is not settings:
            _cached = (settings, ZartService(settings))
        return _cached[1]


def schedule(
    task: str | Task,
    data: dict[str, Any] | None = None,
    *,
    id: str | None = None,  # noqa: A002  (the contract's name for it)
    idempotency_key: str | None = None,
    connection: Any = None,
    priority: int | None = None,
    dedup_key: str | None = None,
    debounce: float | None = None,
) -> str:
    """Start an execution of `task` with `data`; returns its id.

    `priority`, `dedup_key` and `debounce` are flow control (see `ZartService.schedule`): with a dedup key,
    the active execution holding it is returned instead of a new one.

    Given `connection` (a SQLAlchemy Session, Flask-SQLAlchemy's `db.session`, or a Connection), the execution
    is written in that open transaction: it exists only if the app commits, and workers hear of it only
    after the commit. Scheduling the same `id` again returns the existing execution."""
    name = task.name if isinstance(task, Task) else task
    scheduled = _service().schedule(
        name,
        {} if data is None else data,
        execution_id=id,
        idempotency_key=idempotency_key,
        connection=connection,
        priority=priority,
        dedup_key=dedup_key,
        debounce=debounce,
    )
    return str(scheduled.execution["execution_id"])


def send_event(execution_id: str, event_name: str, payload: Any = None, *, connection: Any = None) -> None:
    """Deliver `event_name` to an execution waiting for it (in the app's transaction, given `connection`)."""
    _service().send_event(execution_id, event_name, payload, connection=connection)
