"""A team's own Celery fleet as zart's step runners: a task call as zart dispatches it (`calls`; the engine's
`remote` steps walk it), recording its result in Postgres (`results`, and the fallback callbacks in
`recorder`), zart's own doorbell (`doorbell`, `routing`), and the one line a fleet worker adds to report on
the tasks it runs (`integrate`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from zart.errors import DispatchTimeout, WorkerLost

if TYPE_CHECKING:
    from celery import Celery

    from zart.celery.calls import RemoteHandle
    from zart.celery.integration import Integration
    from zart.config import Settings


def integrate(app: Celery | None = None, settings: Settings | None = None) -> Integration:
    """Call once in your Celery app module: `zart.celery.integrate(app)`. See `zart.celery.integration`."""
    from zart.celery.integration import integrate as connect

    return connect(app, settings)


def __getattr__(name: str) -> Any:
    # Celery itself loads only when a call is built: `zart.celery.canvas` (pure) is imported by the service.
    if name == "RemoteHandle":
        from zart.celery.calls import RemoteHandle

        return RemoteHandle
    raise AttributeError(f"module 'zart.celery' has no attribute {name!r}")


__all__ = ["DispatchTimeout", "RemoteHandle", "WorkerLost", "integrate"]
