"""A worker whose wall clock is off judges deadlines by the database's clock, which wrote them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import zart
from zart.engine import clock
from zart.engine.runner import RunnerConfig, run_execution
from zart.registry import Registry, Task
from zart.retry import RetryPolicy
from zart.service import ZartService

AHEAD = timedelta(minutes=12)


class _ClockAhead(datetime):
    """This process's wall clock, twelve minutes ahead of the database's."""

    @classmethod
    def now(cls, tz=None):  # type: ignore[no-untyped-def, override]
        return datetime.now(tz) + AHEAD


def _quick(ctx: zart.Context, data: dict) -> dict:
    return {"value": ctx.step("one", int, 1)}


def test_a_worker_clock_ahead_of_the_database_does_not_time_out_an_execution_in_time(env, unique, monkeypatch):
    registry = Registry()
    registry.register(Task(name="skew.quick", handler=_quick, retry=RetryPolicy.none(), timeout=600.0))
    settings = env.settings()
    service = ZartService(settings, publish=lambda *_: True, registry=registry)
    execution_id = unique("skew")
    service.schedule("skew.quick", {}, execution_id=execution_id)
    monkeypatch.setattr(clock, "datetime", _ClockAhead)
    monkeypatch.setattr(clock, "_synced_at", None, raising=False)  # measured afresh at this claim
    monkeypatch.setattr(clock, "skew", timedelta(0), raising=False)
    outcome = run_execution(execution_id, RunnerConfig(settings.database_url, 30.0, 0.0, "skewed"), lambda *_: True,
                            registry)
    row = service.status(execution_id)
    assert (outcome, row["status"]) == ("completed", "completed"), row.get("error")
    assert abs(clock.utcnow() - datetime.now(UTC)) < timedelta(seconds=5)  # the engine reads the database's time
