"""A team's own Celery fleet as zart's step runners: dispatching a task as a durable step (`steps`, `calls`),
recording its result in Postgres (`results`, and the fallback callbacks in `recorder`), and the one line a
fleet worker adds to report on the tasks it runs (`integrate`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from celery import Celery

    from zart.celery.integration import Integration
    from zart.config import Settings


def integrate(app: Celery | None = None, settings: Settings | None = None) -> Integration:
    """Call once in your Celery app module: `zart.celery.integrate(app)`. See `zart.celery.integration`."""
    from zart.celery.integration import integrate as connect

    return connect(app, settings)


def __getattr__(name: str) -> Any:
    if name in ("RemoteHandle", "DispatchTimeout", "WorkerLost"):
        from zart.celery import steps

        return getattr(steps, name)
    raise AttributeError(f"module 'zart.celery' has no attribute {name!r}")


__all__ = ["DispatchTimeout", "RemoteHandle", "WorkerLost", "integrate"]
