"""The built-in workflow a Celery-target schedule fires: one remote step, the named task on its queue.

What a tick hands it is defined with the schedules (zart.schedules.celery_target); a zart worker imports this
module to register the workflow, and never needs the team's Celery app.
"""

from __future__ import annotations

from typing import Any

from celery import Signature

from zart.errors import WorkflowDefinitionError
from zart.registry import task
from zart.schedules.celery_target import CELERY_TARGET_TASK, SEND_OPTIONS, input_problems


class UnsafeCeleryTarget(WorkflowDefinitionError):
    """The input names a Celery task a schedule may not send (zart's or Celery's own): it is never sent."""


@task(CELERY_TARGET_TASK)
def run_celery_target(ctx: Any, data: dict[str, Any]) -> dict[str, Any]:
    """One remote step: the named Celery task with the schedule's arguments, on its queue. The input is checked
    again here, where it becomes a message, so input that was never checked (stored before a check existed)
    sends nothing it should not."""
    problems = input_problems(data)
    if problems:
        raise UnsafeCeleryTarget("; ".join(problems))
    options = {k: v for k, v in (data.get("options") or {}).items() if k in SEND_OPTIONS}
    signature = Signature(data["task"], args=data.get("args") or [], kwargs=data.get("kwargs") or {}, options=options)
    return {"task": data["task"], "result": ctx.step("celery-task", signature)}
