"""The built-in workflow a Celery-target schedule fires: one remote step, the named task on its queue.

What a tick hands it is defined with the schedules (zart.schedules.celery_target); a zart worker imports this
module to register the workflow, and never needs the team's Celery app.
"""

from __future__ import annotations

from typing import Any

from celery import Signature

from zart.registry import task
from zart.schedules.celery_target import CELERY_TARGET_TASK, SEND_OPTIONS


@task(CELERY_TARGET_TASK)
def run_celery_target(ctx: Any, data: dict[str, Any]) -> dict[str, Any]:
    """One remote step: the named Celery task with the schedule's arguments, on its queue."""
    options = {k: v for k, v in (data.get("options") or {}).items() if k in SEND_OPTIONS}
    signature = Signature(data["task"], args=data.get("args") or [], kwargs=data.get("kwargs") or {}, options=options)
    return {"task": data["task"], "result": ctx.step("celery-task", signature)}
