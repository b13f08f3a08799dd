"""zart's Celery tasks belong to the app that declared them: another app in the same process (a second zart
app with other settings, or a team's own app) never receives them when it is finalised."""

from __future__ import annotations

import warnings

from celery import Celery
from celery.exceptions import DuplicateTaskNameWarning

from zart.celery.calls import FAILURE_TASK, RESULT_TASK
from zart.config import Settings
from zart.dispatch import create_celery_app
from zart.dispatch.worker import RUN_TASK

ZART_TASKS = (RUN_TASK, RESULT_TASK, FAILURE_TASK)


def _settings(queue: str) -> Settings:
    return Settings(broker_url="memory://", database_url=f"postgresql+psycopg://127.0.0.1:1/{queue}", queue=queue)


def test_each_zart_app_runs_its_own_tasks_and_a_team_app_gets_none_of_them() -> None:
    with warnings.catch_warnings():
        # a name registered twice in one app warns (Celery 5.7 keeps the first); only that warning is an error
        # here, not others that shared tasks of modules imported earlier in the process may raise when bound
        warnings.simplefilter("error", DuplicateTaskNameWarning)
        first = create_celery_app(_settings("first"))
        second = create_celery_app(_settings("second"))
        team = Celery("team", broker="memory://", set_as_current=False)
        first.finalize()
        second.finalize()
        team.finalize()
    for name in ZART_TASKS:
        assert first.tasks[name].run is not second.tasks[name].run, name
        assert name not in team.tasks, name
