"""Firing a plain Celery task by name: each tick runs the built-in workflow `zart.schedules.celery-task`
(zart.celery.target), whose one step dispatches the task as a remote Celery step to the team's own workers
and records its result in Postgres. The tick's exactly-once and its overlap policy therefore hold for Celery
targets too; the task body itself runs at least once, as any remote step's does.

A schedule with a Celery target keeps the task's name in `task`, its `args` and `kwargs`, and in `data` the
options it is sent with (`queue`); zart workers need not import the team's Celery app.
"""

from __future__ import annotations

from typing import Any

from zart.limits import SCHEDULES_ONLY_TASKS

CELERY_TARGET_TASK = SCHEDULES_ONLY_TASKS[0]
SEND_OPTIONS = ("queue",)


def execution_input(task_name: str, args: list[Any], kwargs: dict[str, Any], options: dict[str, Any]) -> dict[str, Any]:
    """What a fired tick of a Celery-target schedule hands the built-in workflow."""
    return {"task": task_name, "args": list(args), "kwargs": dict(kwargs), "options": dict(options)}
