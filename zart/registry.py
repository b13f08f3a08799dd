"""The in-process registry of workflow handlers, filled by `@zart.task` at import time."""

from __future__ import annotations

import importlib
import inspect
import re
import sys
import types
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from zart.errors import WorkflowDefinitionError
from zart.limits import QUEUE_PATTERN, QUEUE_RULE
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
    queue: str | None = None

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
    queue: str | None = None,
    registry: Registry | None = None,
) -> Callable[[Handler], Task]:
    """Register `fn(ctx, data)` as the workflow `name`, optionally fired on `schedule` (`zart.cron`/`zart.every`)."""
    if not name or len(name) > 200:
        raise ValueError("a task name must have 1 to 200 characters")
    if queue is not None and not QUEUE_PATTERN.match(queue):
        raise ValueError(f"queue name {queue!r} of task {name!r} is not valid: {QUEUE_RULE}")
    schedules = bind_all(name, schedule)

    def decorate(fn: Handler) -> Task:
        problem = plain_function_problem(fn)
        if problem is not None:
            raise TypeError(f"task '{name}': {problem}")
        return (registry or default_registry).register(
            Task(
                name=name,
                handler=fn,
                retry=retry or RetryPolicy.none(),
                timeout=seconds(timeout),
                schema=schema,
                schedules=schedules,
                queue=queue,
            )
        )

    return decorate


def import_modules(modules: Iterable[str]) -> None:
    """Import the modules that define workflows (ZART_IMPORTS)."""
    for module in modules:
        importlib.import_module(module)


def _qualified(fn: Handler) -> str:
    return f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', repr(fn))}"


_DOTTED = r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*"
REFERENCE_PATTERN = re.compile(rf"(?P<module>{_DOTTED}):(?P<qualname>{_DOTTED})")


class UnsafeFunctionReference(WorkflowDefinitionError):
    """A function child names something the deployed workflow modules do not define: it is never called."""


def plain_function_problem(fn: Any) -> str | None:
    """Why `fn` cannot be a handler or a step function (zart runs plain synchronous functions), or None."""
    target = getattr(fn, "handler", fn)
    name = getattr(target, "__qualname__", repr(target))
    if inspect.iscoroutinefunction(target) or inspect.isasyncgenfunction(target):
        return f"{name} is an async function; async def is not supported (call asyncio.run inside a plain function)"
    if inspect.isgeneratorfunction(target):
        return f"{name} is a generator function; generators are not supported (return a list instead)"
    return None


def function_reference(fn: Callable[..., Any], workflow_modules: Iterable[str]) -> str:
    """`module:qualname` of a function a child execution may run: a plain function defined at module level
    in a workflow module (ZART_IMPORTS, or a module inside one of those packages). Checked in the parent,
    so a workflow that names anything else fails at once with the reason."""
    module = getattr(fn, "__module__", None)
    qualname = getattr(fn, "__qualname__", None)
    if not module or not qualname or "<" in qualname:
        raise UnsafeFunctionReference(f"{fn!r} must be a module-level function to run as a child execution")
    reference = f"{module}:{qualname}"
    if resolve_function(reference, workflow_modules) is not fn:
        raise UnsafeFunctionReference(f"{reference} does not name the function that was scheduled")
    return reference


def in_workflow_modules(module: str, workflow_modules: Iterable[str]) -> bool:
    """A module the worker imports for workflows (ZART_IMPORTS) or a module inside one of those packages."""
    return any(module == allowed or module.startswith(allowed + ".") for allowed in workflow_modules if allowed)


def resolve_function(reference: str, workflow_modules: Iterable[str]) -> Callable[..., Any]:
    """The function a child execution names, found only among the workflow modules.

    Stored references are data; this is the one place data becomes a callable, so it refuses anything that
    is not a plain function defined (not merely imported) in a workflow module: never builtins, the standard
    library, a class, a method of a foreign object, or a module outside ZART_IMPORTS (which is never imported).
    """
    parsed = REFERENCE_PATTERN.fullmatch(reference) if isinstance(reference, str) else None
    if parsed is None:
        raise UnsafeFunctionReference(f"{reference!r} is not a `module:qualname` function reference")
    module_name, qualname = parsed["module"], parsed["qualname"]
    parts = qualname.split(".")
    if any(part.startswith("__") for part in [*module_name.split("."), *parts]):
        raise UnsafeFunctionReference(f"{reference} names a private attribute")
    if module_name.split(".")[0] in sys.stdlib_module_names or not in_workflow_modules(module_name, workflow_modules):
        raise UnsafeFunctionReference(
            f"{reference} is outside the workflow modules this worker imports (ZART_IMPORTS); "
            "a child function must be defined in one of them"
        )
    target: Any = importlib.import_module(module_name)
    for part in parts:
        target = getattr(target, part, None)
    if not (
        isinstance(target, types.FunctionType) and target.__module__ == module_name and target.__qualname__ == qualname
    ):
        raise UnsafeFunctionReference(f"{reference} is not a function defined in {module_name}")
    return target  # type: ignore[no-any-return]
