"""An execution whose task the worker that took it does not register (a rollback, a task removed from the code,
a worker left out of a deploy) waits for a worker that does, less often the longer it has waited, and a worker
that starts with the task wakes it at once. Real workers, Redis and Postgres."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import text

from tests.harness import poll
from tests.integration.test_core import finished
from zart.service import ZartService
from zart.store import db

NO_RESCUE = {"ZART_REDISPATCH_AFTER": "600"}


def _row(env, execution_id: str) -> dict:
    with db.autocommit(env.database_url) as conn:
        found = conn.execute(
            text("SELECT status, waiting_for, wake_at, now() AS now FROM executions WHERE id = :id"),
            {"id": execution_id},
        )
        return dict(found.mappings().one())


def test_an_old_execution_no_worker_can_run_backs_off_and_a_worker_with_its_task_wakes_it(
    env, service: ZartService, start_worker, log_dir
):
    scheduled = service.schedule("r.steps", {"journal": str(log_dir / "j.journal"), "steps": 2})
    execution_id = scheduled.execution["execution_id"]
    with db.transaction(env.database_url) as conn:  # an hour old: no worker has been able to run it since
        conn.execute(
            text("UPDATE executions SET created_at = now() - interval '1 hour' WHERE id = :id"), {"id": execution_id}
        )
    lacking = start_worker(concurrency=1, ZART_IMPORTS="tests.workflows", **NO_RESCUE)
    poll(lambda: _row(env, execution_id)["status"] == "waiting", what="the worker lacking the task to release it")
    row = _row(env, execution_id)
    assert row["waiting_for"] == {"kind": "worker", "task": "r.steps"}
    assert (row["wake_at"] - row["now"]).total_seconds() > 50  # not every few seconds, forever
    lacking.stop()
    start_worker(concurrency=1, **NO_RESCUE)  # registers r.steps: its start-up wakes the execution
    assert finished(service, execution_id, timeout=30)["status"] == "completed"


def test_a_new_execution_a_worker_cannot_run_is_looked_at_again_within_seconds(
    env, service: ZartService, start_worker, log_dir
):
    """During a rolling deploy a new task's first executions may reach older workers: they come back soon."""
    start_worker(concurrency=1, ZART_IMPORTS="tests.workflows", **NO_RESCUE)
    scheduled = service.schedule("r.steps", {"journal": str(log_dir / "j.journal"), "steps": 2})
    execution_id = scheduled.execution["execution_id"]
    poll(lambda: _row(env, execution_id)["status"] == "waiting", what="the worker lacking the task to release it")
    row = _row(env, execution_id)
    assert row["waiting_for"]["kind"] == "worker"
    assert (row["wake_at"] - datetime.now(UTC)).total_seconds() <= 6
