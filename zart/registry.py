"""The in-process registry of workflow handlers, filled by `@zart.task` at import time."""

from __future__ import annotations

import importlib
import inspect
import math
import re
import sys
import types
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from zart.errors import WorkflowDefinitionError
from zart.flow.definitions import LimitSpec, check_priority, parse_rate
from zart.limits import QUEUE_RULE, is_queue
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
    flow_limit: str | None = None  # the limit its executions are admitted under, when declared
    priority: int = 0
    schedules: tuple[ScheduleSpec, ...] = ()
    queue: str | None = None

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.handler(*args, **kwargs)


class Registry:
    """Name → Task. One default instance serves `@zart.task`."""

    def __init__(self) -> None:
        self._tasks: dict[str, Task] = {}
        self._limits: dict[str, LimitSpec] = {}
        self._limit_modules: dict[str, set[str]] = {}  # limit → the modules declaring it

    def register(self, task: Task) -> Task:
        existing = self._tasks.get(task.name)
        if existing is not None and _qualified(existing.handler) != _qualified(task.handler):
            raise ValueError(f"task name '{task.name}' is already registered by {_qualified(existing.handler)}")
        self._check_schedule_ids(task)
        self._tasks[task.name] = task
        return task

    def _check_schedule_ids(self, task: Task) -> None:
        """A schedule id is one row in the store: two tasks declaring it would overwrite each other's schedule
        at every worker start, so one of them would silently never fire."""
        ours = {spec.id for spec in task.schedules}
        for other in self._tasks.values():
            taken = ours & {spec.id for spec in other.schedules}
            if other.name != task.name and taken:
                raise ValueError(
                    f"task '{task.name}' declares schedule id {sorted(taken)[0]!r}, which task '{other.name}' "
                    "already declares; give one of them another id="
                )

    def register_limit(self, spec: LimitSpec, module: str | None = None) -> LimitSpec:
        """Declare a limit once; declaring the same name again must say the same thing. `module` declares it
        (a worker records a module's limits only while that module's code is the newest seen)."""
        existing = self._limits.get(spec.name)
        if existing is not None and existing != spec:
            raise ValueError(f"limit '{spec.name}' is already declared differently: {existing} vs {spec}")
        self._limits[spec.name] = spec
        if module is not None:
            self._limit_modules.setdefault(spec.name, set()).add(module)
        return spec

    def limit_modules(self, name: str) -> set[str]:
        """The modules known to declare limit `name` (empty when it was registered without one)."""
        return set(self._limit_modules.get(name, ()))

    def limits(self) -> list[LimitSpec]:
        return [self._limits[name] for name in sorted(self._limits)]

    def get(self, name: str) -> Task | None:
        return self._tasks.get(name)

    def names(self) -> list[str]:
        return sorted(self._tasks)

    def tasks(self) -> list[Task]:
        return [self._tasks[name] for name in self.names()]


default_registry = Registry()


def seconds(value: float | timedelta | None) -> float | None:
    """Normalise a duration given as seconds or a timedelta; NaN or an infinity (which no timer or date can
    hold) is refused with a sentence instead of an OverflowError from deep in the date arithmetic."""
    if value is None:
        return None
    if isinstance(value, timedelta):
        return value.total_seconds()
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"a duration must be a finite number of seconds, got {value!r} (use None for no limit)")
    return number


def task(
    name: str,
    *,
    retry: RetryPolicy | None = None,
    timeout: float | timedelta | None = None,
    schema: dict[str, Any] | None = None,
    schedule: Declaration | list[Declaration] | None = None,
    queue: str | None = None,
    registry: Registry | None = None,
    limit: str | None = None,
    concurrency: int | None = None,
    rate_limit: str | None = None,
    burst: int | None = None,
    concurrency_key: str | None = None,
    key_concurrency: int | None = None,
    on_key_busy: str = "wait",
    priority: int = 0,
) -> Callable[[Handler], Task]:
    """Register `fn(ctx, data)` as the workflow `name`, optionally fired on `schedule` (`zart.cron`/`zart.every`).

    Flow control: `concurrency` (at most N running across the fleet), `rate_limit` ("100/m", with `burst`),
    `concurrency_key` (an input field or dotted path) with `key_concurrency` (default 1) and `on_key_busy`
    (wait, cancel_newest, cancel_in_progress) apply to the task's limit: `limit`, else the task's own name.
    Tasks that name the same limit share it; declare it on one task or with `zart.limit`.
    `priority`: higher first among executions held back by the limit (FIFO within a priority).
    `queue` is the Celery queue the workflow's doorbells go to (routing), not a limit.
    """
    if not name or len(name) > 200:
        raise ValueError("a task name must have 1 to 200 characters")
    if queue is not None and not is_queue(queue):
        raise ValueError(f"queue name {queue!r} of task {name!r} is not valid: {QUEUE_RULE}")
    check_priority(priority)
    schedules = bind_all(name, schedule, schema)
    target = registry or default_registry
    declares = any(v is not None for v in (concurrency, rate_limit, concurrency_key, key_concurrency))
    if declares:
        target.register_limit(
            limit_spec(
                limit or name,
                concurrency=concurrency,
                rate=rate_limit,
                burst=burst,
                concurrency_key=concurrency_key,
                key_concurrency=key_concurrency,
                on_key_busy=on_key_busy,
            ),
            _caller_module(),
        )

    def decorate(fn: Handler) -> Task:
        problem = plain_function_problem(fn)
        if problem is not None:
            raise TypeError(f"task '{name}': {problem}")
        return target.register(
            Task(
                name=name,
                handler=fn,
                retry=retry or RetryPolicy.none(),
                timeout=seconds(timeout),
                schema=schema,
                flow_limit=limit or (name if declares else None),
                priority=priority,
                schedules=schedules,
                queue=queue,
            )
        )

    return decorate


def limit_spec(
    name: str,
    *,
    concurrency: int | None = None,
    rate: str | None = None,
    burst: int | None = None,
    concurrency_key: str | None = None,
    key_concurrency: int | None = None,
    on_key_busy: str = "wait",
) -> LimitSpec:
    """A limit from the keyword arguments people write (a key without a per-key count means one per key)."""
    if not name or len(name) > 200:
        raise ValueError("a limit name must have 1 to 200 characters")
    return LimitSpec(
        name=name,
        concurrency=concurrency,
        rate=None if rate is None else parse_rate(rate, burst),
        key_path=concurrency_key,
        key_concurrency=key_concurrency if key_concurrency is not None or concurrency_key is None else 1,
        key_strategy=on_key_busy,
    )


def limit(
    name: str,
    *,
    concurrency: int | None = None,
    rate: str | None = None,
    burst: int | None = None,
    concurrency_key: str | None = None,
    key_concurrency: int | None = None,
    on_key_busy: str = "wait",
    registry: Registry | None = None,
) -> LimitSpec:
    """Declare a named limit: shared by tasks (`@zart.task(..., limit=name)`) or a token bucket for
    steps (`ctx.step(..., rate_limit=name)`). Operators may change it at runtime (`zart limits set`)."""
    return (registry or default_registry).register_limit(
        limit_spec(
            name,
            concurrency=concurrency,
            rate=rate,
            burst=burst,
            concurrency_key=concurrency_key,
            key_concurrency=key_concurrency,
            on_key_busy=on_key_busy,
        ),
        _caller_module(),
    )


def _caller_module() -> str | None:
    """The module calling `task` or `limit` (its declarations are recorded under it)."""
    return sys._getframe(2).f_globals.get("__name__")


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
