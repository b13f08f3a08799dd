"""Firing a plain Celery task by name: each tick runs the built-in workflow `zart.schedules.celery-task`
(zart.celery.target), whose one step dispatches the task as a remote Celery step to the team's own workers
and records its result in Postgres. The tick's exactly-once and its overlap policy therefore hold for Celery
targets too; the task body itself runs at least once, as any remote step's does.

A schedule with a Celery target keeps the task's name in `task`, its `args` and `kwargs`, and in `data` the
options it is sent with (`queue`); zart workers need not import the team's Celery app.
"""

from __future__ import annotations

from typing import Any

from zart.limits import NAME_RULE, QUEUE_RULE, SCHEDULES_ONLY_TASKS, is_name, is_queue, is_reserved_task

CELERY_TARGET_TASK = SCHEDULES_ONLY_TASKS[0]
SEND_OPTIONS = ("queue",)
INPUT_FIELDS = ("task", "args", "kwargs", "options")


def execution_input(task_name: str, args: list[Any], kwargs: dict[str, Any], options: dict[str, Any]) -> dict[str, Any]:
    """What a fired tick of a Celery-target schedule hands the built-in workflow."""
    return {"task": task_name, "args": list(args), "kwargs": dict(kwargs), "options": dict(options)}


def input_problems(data: Any) -> list[str]:
    """What is wrong with an input of the built-in workflow; empty when fine.

    A Celery-target schedule is checked when it is written (spec.validate), but new input can reach the workflow
    another way (a restart with `data`, input stored before a check existed): it names the Celery task a worker
    sends, so it passes the same rules, zart's and Celery's own tasks refused, wherever it comes from."""
    if not isinstance(data, dict):
        return ["data must be an object"]
    problems = [f"data.{key} is not allowed" for key in sorted(set(data) - set(INPUT_FIELDS))]
    task = data.get("task")
    if not is_name(task):
        problems.append(f"data.task must be a Celery task name of {NAME_RULE}")
    elif is_reserved_task(task):
        problems.append(f"data.task {task!r} is one of zart's or Celery's own tasks, which a schedule may not send")
    if not isinstance(data.get("args") or [], list):
        problems.append("data.args must be an array")
    if not isinstance(data.get("kwargs") or {}, dict):
        problems.append("data.kwargs must be an object")
    options = data.get("options") or {}
    if not isinstance(options, dict) or set(options) - set(SEND_OPTIONS):
        problems.append("data.options may hold only the queue")
    elif options.get("queue") is not None and not is_queue(options["queue"]):
        problems.append(f"data.options.queue must be a queue name of {QUEUE_RULE}")
    return problems
