"""The in-process registry of workflow handlers, filled by `@zart.task` at import time."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from zart.retry import RetryPolicy
from zart.schedules.declare import Declaration, bind_all
from zart.schedules.spec import ScheduleSpec

Handler = Callable[..., Any]


@dataclass(frozen=True)
class Task:
    """A registered workflow: its handler and execution-level policies."""

    name: str
    handler: Handler
    retry: RetryPolicy
    timeout: float | None
    schema: dict[str, Any] | None = None
    schedules: tuple[ScheduleSpec, ...] = ()

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.handler(*args, **kwargs)


class Registry:
    """Name → Task. One default instance serves `@zart.task`."""

    def __init__(self) -> None:
        self._tasks: dict[str, Task] = {}

    def register(self, task: Task) -> Task:
        existing = self._tasks.get(task.name)
        if existing is not None and _qualified(existing.handler) != _qualified(task.handler):
            raise ValueError(f"task name '{task.name}' is already registered by {_qualified(existing.handler)}")
        self._tasks[task.name] = task
        return task

    def get(self, name: str) -> Task | None:
        return self._tasks.get(name)

    def names(self) -> list[str]:
        return sorted(self._tasks)

    def tasks(self) -> list[Task]:
        return [self._tasks[name] for name in self.names()]


default_registry = Registry()


def seconds(value: float | timedelta | None) -> float | None:
    """Normalise a duration given as seconds or a timedelta."""
    if value is None:
        return None
    if isinstance(value, timedelta):
        return value.total_seconds()
    return float(value)


def task(
    name: str,
    *,
    retry: RetryPolicy | None = None,
    timeout: float | timedelta | None = None,
    schema: dict[str, Any] | None = None,
    schedule: Declaration | list[Declaration] | None = None,
    registry: Registry | None = None,
) -> Callable[[Handler], Task]:
    """Register `fn(ctx, data)` as the workflow `name`, optionally fired on `schedule` (`zart.cron`/`zart.every`)."""
    if not name or len(name) > 200:
        raise ValueError("a task name must have 1 to 200 characters")
    schedules = bind_all(name, schedule)

    def decorate(fn: Handler) -> Task:
        return (registry or default_registry).register(
            Task(
                name=name,
                handler=fn,
                retry=retry or RetryPolicy.none(),
                timeout=seconds(timeout),
                schema=schema,
                schedules=schedules,
            )
        )

    return decorate


def import_modules(modules: Iterable[str]) -> None:
    """Import the modules that define workflows (ZART_IMPORTS)."""
    for module in modules:
        importlib.import_module(module)


def _qualified(fn: Handler) -> str:
    return f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', repr(fn))}"


def function_reference(fn: Callable[..., Any]) -> str:
    """`module:qualname` of a module-level function, so another process can import it."""
    module = getattr(fn, "__module__", None)
    qualname = getattr(fn, "__qualname__", None)
    if not module or not qualname or "<" in qualname:
        raise ValueError(f"{fn!r} must be a module-level function to run as a child execution")
    return f"{module}:{qualname}"


def resolve_function(reference: str) -> Callable[..., Any]:
    module_name, _, qualname = reference.partition(":")
    target: Any = importlib.import_module(module_name)
    for part in qualname.split("."):
        target = getattr(target, part)
    return target  # type: ignore[no-any-return]
