"""The zart worker's side of the fallback: Celery callbacks that record a remote step's outcome.

A fleet worker without the integration still runs the `link` / `link_error` callbacks attached to every
dispatch, which send these tasks to zart's own queue. The error callback receives only the task id (there is
no result backend to read the exception from), so such a failure says where to look.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from celery import Celery

from zart.celery import results
from zart.celery.calls import FAILURE_TASK, RESULT_TASK

Publish = Callable[[str], object]

UNINTEGRATED_FAILURE = (
    "the task failed on a worker without zart.celery.integrate(app): its exception is only in that worker's log"
)


def register_fallback_tasks(app: Celery, database_url: str, publish: Publish) -> None:
    @app.task(name=RESULT_TASK, ignore_result=True, shared=False)
    def remote_result(result: Any = None, token: str = "") -> None:
        woken = results.succeeded(database_url, token, result)
        if woken is not None:
            publish(woken)

    @app.task(name=FAILURE_TASK, ignore_result=True, shared=False)
    def remote_failure(task_id: str = "", *_: Any) -> None:
        woken = results.failed(database_url, task_id, {"type": "TaskFailed", "message": UNINTEGRATED_FAILURE})
        if woken is not None:
            publish(woken)
