"""The zart worker's side of the fallback: Celery callbacks that record a remote step's outcome.

A fleet worker without the integration still runs the `link` / `link_error` callbacks attached to every
dispatch, which send these tasks to zart's own queue. The error callback receives only the task id (there is
no result backend to read the exception from), so such a failure says where to look.

Celery sends a callback with the id of the task it follows as its parent, so a report is taken only from the
callback of that very dispatch: a message that merely names a dispatch (sent by anything else that can name a
task) records nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from celery import Celery, Task

from zart.celery import results
from zart.celery.calls import FAILURE_TASK, RESULT_TASK

log = logging.getLogger(__name__)

Publish = Callable[[str], object]

UNINTEGRATED_FAILURE = (
    "the task failed on a worker without zart.celery.integrate(app): its exception is only in that worker's log"
)


def register_fallback_tasks(app: Celery, database_url: str, publish: Publish) -> None:
    @app.task(name=RESULT_TASK, ignore_result=True, shared=False, bind=True)
    def remote_result(self: Task, result: Any = None, token: str = "") -> None:
        if not _follows(self, token):
            return
        woken = results.succeeded(database_url, token, result)
        if woken is not None:
            publish(woken)

    @app.task(name=FAILURE_TASK, ignore_result=True, shared=False, bind=True)
    def remote_failure(self: Task, task_id: str = "", *_: Any) -> None:
        if not _follows(self, task_id):
            return
        woken = results.failed(database_url, task_id, {"type": "TaskFailed", "message": UNINTEGRATED_FAILURE})
        if woken is not None:
            publish(woken)


def _follows(callback: Task, token: str) -> bool:
    """Whether this callback was sent by Celery after the dispatch `token` itself ran."""
    if callback.request.parent_id == token:
        return True
    log.warning("ignored a report on %r that is not that task's own callback (parent %r)", token,
                callback.request.parent_id)
    return False
