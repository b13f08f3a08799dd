"""zart: durable workflows for Celery shops, checkpointed in PostgreSQL.

The workflow engine (and SQLAlchemy with it) loads on first use of `zart.Context` or a step, so importing
`zart` to declare tasks, and running the CLI, stay quick.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Any, TypeVar

from zart.errors import EventTimeout, StepFailed, StepTimeout
from zart.registry import Registry, Task, default_registry, limit, task
from zart.retry import RetryPolicy
from zart.schedules.declare import cron, every

if TYPE_CHECKING:
    from zart.engine.context import ChildHandle, Context

__version__ = "0.1.0"

F = TypeVar("F", bound=Callable[..., Any])


def step(
    name: str | None = None,
    *,
    retry: RetryPolicy | None = None,
    timeout: float | timedelta | None = None,
    rate_limit: str | None = None,
) -> Callable[[F], F]:
    """Make calls of the decorated function inside a handler run as the checkpointed step `name`."""

    def decorate(fn: F) -> F:
        step_name = name or fn.__name__

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            from zart.engine.context import current_context

            ctx = current_context.get()
            if ctx is None:
                return fn(*args, **kwargs)
            return ctx.step(step_name, fn, *args, retry=retry, timeout=timeout, rate_limit=rate_limit, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate


def configure(**options: Any) -> None:
    """Set the store, the broker and the app's SQLAlchemy engine in code (see `zart.appconfig.configure`)."""
    from zart.appconfig import configure as _configure

    _configure(**options)


def __getattr__(name: str) -> Any:
    if name in ("Context", "ChildHandle"):
        from zart.engine import context

        return getattr(context, name)
    if name in ("schedule", "send_event"):
        from zart import client

        return getattr(client, name)
    raise AttributeError(f"module 'zart' has no attribute {name!r}")


__all__ = [
    "ChildHandle",
    "Context",
    "EventTimeout",
    "Registry",
    "RetryPolicy",
    "StepFailed",
    "StepTimeout",
    "Task",
    "configure",
    "default_registry",
    "limit",
    "schedule",
    "send_event",
    "step",
    "task",
    "cron",
    "every",
    "__version__",
]
