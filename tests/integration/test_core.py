"""The durable core against a real Postgres, Redis and `zart worker` processes."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from tests.harness import poll
from tests.workflows import entries
from zart.errors import ExecutionNotFound, NotWaitingForEvent
from zart.service import ZartService
from zart.store import db


def schedule(service: ZartService, task: str, log_dir: Path, **data: Any) -> tuple[str, str]:
    journal = str(log_dir / f"{task}-{time.monotonic_ns()}.journal")
    scheduled = service.schedule(task, {"journal": journal, **data})
    return scheduled.execution["execution_id"], journal


def finished(service: ZartService, execution_id: str, timeout: float = 30) -> dict[str, Any]:
    done, row = service.wait(execution_id, timeout)
    assert done, f"{execution_id} did not finish: {row['status']} {row.get('waiting_for')}"
    return row


def query(service: ZartService, sql: str, **params: Any) -> list[dict[str, Any]]:
    with db.autocommit(service.settings.database_url) as conn:
        return [dict(r._mapping) for r in conn.execute(text(sql), params)]


def attempts_of(service: ZartService, execution_id: str) -> list[dict[str, Any]]:
    return query(
        service,
        "SELECT step_name, attempt, outcome, error FROM step_attempts WHERE execution_id = :id "
        "ORDER BY step_name, attempt",
        id=execution_id,
    )


def test_three_step_workflow_completes_with_output_and_step_records(service, worker, log_dir):
    execution_id, journal = schedule(service, "t.three-steps", log_dir)
    row = finished(service, execution_id)
    assert row["status"] == "completed"
    assert row["output"] == {"sum": 6}
    steps = service.steps(execution_id)
    assert [(s["name"], s["position"], s["status"], s["output"]) for s in steps] == [
        ("a", 0, "completed", 1),
        ("b", 1, "completed", 2),
        ("c", 2, "completed", 3),
    ]
    assert all(s["attempts"] == 1 and s["started_at"] and s["completed_at"] for s in steps)
    assert [entries(journal, n) for n in "abc"] == [1, 1, 1]


def test_sigkill_during_a_step_reruns_only_that_step(service, start_worker, log_dir):
    worker = start_worker()
    release = log_dir / "release"
    execution_id, journal = schedule(service, "t.blocking", log_dir, release=str(release))
    poll(lambda: service.status(execution_id)["current_step"] == "b", what="step b to show as running")
    worker.kill()
    release.touch()
    start_worker()
    row = finished(service, execution_id)
    assert row["output"] == {"out": "ABC"}
    assert entries(journal, "a") == 1
    assert entries(journal, "b") == 2  # the interrupted body, and its one re-run
    assert entries(journal, "c") == 1
    counts = query(
        service,
        "SELECT name, count(*) AS n FROM steps WHERE execution_id = :id GROUP BY name ORDER BY name",
        id=execution_id,
    )
    assert counts == [{"name": n, "n": 1} for n in "abc"]
    history = {s["name"]: [a["outcome"] for a in s["attempts_detail"]] for s in service.steps(execution_id)}
    assert history["a"] == ["completed"] and history["c"] == ["completed"]
    assert history["b"] == ["interrupted", "completed"]  # the killed attempt had been marked running


def test_the_same_message_on_two_workers_runs_each_step_once(env, start_worker, log_dir):
    from zart.celery.doorbell import Publisher
    from zart.dispatch import create_celery_app
    from zart.registry import Registry

    silent = ZartService(env.settings(), publish=lambda _id: True, registry=Registry())
    start_worker(concurrency=1)
    start_worker(concurrency=1)
    ids = [schedule(silent, "t.three-steps", log_dir) for _ in range(10)]
    publisher = Publisher(create_celery_app(env.settings()))
    for execution_id, _ in ids:
        publisher.publish(execution_id)
        publisher.publish(execution_id)
    for execution_id, journal in ids:
        assert finished(silent, execution_id)["output"] == {"sum": 6}
        assert [entries(journal, n) for n in "abc"] == [1, 1, 1]


def test_flushed_redis_loses_nothing(env, service, start_worker, log_dir, redis_server):
    import redis

    ids = [schedule(service, "t.three-steps", log_dir) for _ in range(5)]
    redis.Redis.from_url(redis_server.url).flushall()
    start_worker()  # returns once the worker is ready: its start-up (slow on a loaded machine) is not timed
    ready = time.monotonic()
    for execution_id, journal in ids:
        assert finished(service, execution_id)["status"] == "completed"
        assert entries(journal, "a") == 1
    # the sweeper's period: re-dispatch after 2 s, swept every 0.3 s
    assert time.monotonic() - ready < 10


def test_durable_sleep_survives_restart_and_frees_the_slot(service, start_worker, log_dir):
    worker = start_worker(concurrency=1)
    sleeper_id, sleeper_journal = schedule(service, "t.sleeper", log_dir, seconds=2)
    poll(lambda: service.status(sleeper_id)["status"] == "waiting", what="the sleeper to park")
    quick_id, _ = schedule(service, "t.three-steps", log_dir)
    assert finished(service, quick_id, timeout=10)["status"] == "completed"
    assert service.status(sleeper_id)["status"] == "waiting"  # the quick one ran while it slept
    worker.stop()
    start_worker(concurrency=1)
    row = finished(service, sleeper_id)
    assert row["output"]["slept"] >= 2.0
    assert entries(sleeper_journal, "before") == 1 and entries(sleeper_journal, "after") == 1


def test_event_resumes_with_payload(service, worker, log_dir):
    execution_id, journal = schedule(service, "t.event", log_dir)
    poll(lambda: service.status(execution_id)["waiting_for_event"] == "approval", what="the event wait")
    with pytest.raises(NotWaitingForEvent):
        service.send_event(execution_id, "other-event", {"x": 1})
    service.send_event(execution_id, "approval", {"approved": True, "by": "jane"})
    row = finished(service, execution_id)
    assert row["output"] == {"payload": {"approved": True, "by": "jane"}}
    assert entries(journal, "prepare") == 1


def test_event_timeout_is_catchable(service, worker, log_dir):
    execution_id, journal = schedule(service, "t.event", log_dir, timeout=1)
    row = finished(service, execution_id)
    assert row["output"] == {"timed_out": True}
    assert entries(journal, "on-timeout") == 1
    with pytest.raises(NotWaitingForEvent):
        service.send_event(execution_id, "approval", {})


def test_event_refused_when_not_waiting_changes_nothing(service, worker, log_dir):
    execution_id, _ = schedule(service, "t.three-steps", log_dir)
    finished(service, execution_id)
    before = service.status(execution_id)
    with pytest.raises(NotWaitingForEvent):
        service.send_event(execution_id, "approval", {"late": True})
    assert service.status(execution_id) == before
    assert query(service, "SELECT * FROM events WHERE execution_id = :id", id=execution_id) == []
    with pytest.raises(ExecutionNotFound):
        service.send_event("exec-does-not-exist", "approval", {})


def test_fixed_retry_records_attempts(service, worker, log_dir):
    execution_id, journal = schedule(service, "t.retry-fixed", log_dir)
    row = finished(service, execution_id)
    assert row["output"] == {"result": "ok"}, row["error"]
    assert entries(journal, "flaky") == 3
    attempts = attempts_of(service, execution_id)
    assert [(a["attempt"], a["outcome"]) for a in attempts] == [(1, "failed"), (2, "failed"), (3, "completed")]
    assert attempts[0]["error"] == {"type": "ConnectionError", "message": "flaky failure 1"}


def test_exponential_retry_exhausts_into_step_failed(service, worker, log_dir):
    execution_id, journal = schedule(service, "t.retry-exponential", log_dir)
    row = finished(service, execution_id)
    assert row["output"] == {"failed_step": "charge", "type": "ValueError", "message": "card declined"}
    assert entries(journal, "charge") == 3
    times = [float(line.split()[2]) for line in Path(journal).read_text().splitlines()]
    assert times[1] - times[0] >= 0.2 and times[2] - times[1] >= 0.4  # 0.2 s, then doubled
    assert [a["outcome"] for a in attempts_of(service, execution_id)] == ["failed"] * 3


def test_execution_retry_keeps_completed_steps(service, worker, log_dir):
    execution_id, journal = schedule(service, "t.exec-retry", log_dir)
    row = finished(service, execution_id)
    assert row["output"] == {"attempt": 2}
    assert entries(journal, "first") == 1
    assert entries(journal, "handler-attempt-1") == 1 and entries(journal, "handler-attempt-2") == 1
    assert entries(journal, "second") == 1


def test_handler_error_fails_the_execution(service, worker, log_dir):
    execution_id, _ = schedule(service, "t.fails", log_dir)
    row = finished(service, execution_id)
    assert row["status"] == "failed"
    assert row["error"] == {"type": "KeyError", "message": "'missing-thing'"}


def test_children_run_in_parallel_and_parent_resumes_once(service, start_worker, log_dir):
    start_worker(concurrency=3)
    execution_id, journal = schedule(service, "t.fan-out", log_dir, seconds=1.0)
    row = finished(service, execution_id)
    assert row["output"]["regions"] == ["eu", "us"]
    eu, us = row["output"]["children"]
    assert eu["started"] < us["ended"] and us["started"] < eu["ended"], "children did not overlap"
    assert entries(journal, "parent-resumed") == 1
    assert entries(journal, "parent-replay") == 2  # the first run, and one resume
    assert entries(journal, "summary") == 1
    children = query(service, "SELECT status FROM executions WHERE parent_id = :id", id=execution_id)
    assert [c["status"] for c in children] == ["completed", "completed"]


def test_cancel_pending_waiting_and_running(service, start_worker, log_dir):
    pending_id, _ = schedule(service, "t.three-steps", log_dir)
    assert service.cancel(pending_id) == {"execution_id": pending_id, "status": "cancelled"}

    worker = start_worker()
    waiting_id, _ = schedule(service, "t.event", log_dir)
    poll(lambda: service.status(waiting_id)["status"] == "waiting", what="the event wait")
    service.cancel(waiting_id)

    release = log_dir / "release"
    running_id, journal = schedule(service, "t.blocking", log_dir, release=str(release))
    poll(lambda: entries(journal, "b") == 1, what="step b to start")
    service.cancel(running_id)
    release.touch()
    poll(lambda: "'lease-lost'" in worker.log_path.read_text(), what="the worker to stop the cancelled run")
    assert entries(journal, "b-end") == 1
    assert entries(journal, "c") == 0
    for execution_id in (pending_id, waiting_id, running_id):
        assert service.status(execution_id)["status"] == "cancelled"


def test_non_determinism_fails_clearly(service, worker, log_dir):
    execution_id, _ = schedule(service, "t.nondeterministic", log_dir)
    row = finished(service, execution_id)
    assert row["status"] == "failed"
    assert row["error"]["type"] == "NonDeterminismError"
    assert "'beta'" in row["error"]["message"] and "'alpha'" in row["error"]["message"]


def test_duplicate_step_name_fails_clearly(service, worker, log_dir):
    execution_id, journal = schedule(service, "t.duplicate-names", log_dir)
    row = finished(service, execution_id)
    assert row["status"] == "failed"
    assert row["error"]["type"] == "DuplicateStepName"
    assert entries(journal, "same") == 1


def test_unknown_task_and_idempotent_ids(service, worker, log_dir):
    from zart.errors import ExecutionAlreadyExists, InvalidData, TaskNotRegistered

    with pytest.raises(TaskNotRegistered):
        service.schedule("no-such-task", {})
    with pytest.raises(InvalidData):
        service.schedule("t.three-steps", ["not", "an", "object"])
    journal = str(log_dir / "idem.journal")
    first = service.schedule("t.three-steps", {"journal": journal}, execution_id="order-42")
    again = service.schedule("t.three-steps", {"journal": journal}, execution_id="order-42")
    assert first.created and not again.created
    assert again.execution["execution_id"] == "order-42"
    with pytest.raises(ExecutionAlreadyExists):
        service.schedule("t.sleeper", {"journal": journal}, execution_id="order-42")
    assert finished(service, "order-42")["output"] == {"sum": 6}
    assert entries(journal, "a") == 1
    assert json.loads(json.dumps(service.stats()))["completed"] >= 1


def test_heartbeat_keeps_a_long_step_owned(service, start_worker, log_dir):
    start_worker(concurrency=1)
    start_worker(concurrency=1)
    execution_id, journal = schedule(service, "t.long-step", log_dir, seconds=7)  # lease is 3 s in tests
    poll(lambda: service.status(execution_id)["steps_running"] == 1, what="the long step to show as running")
    row = finished(service, execution_id)
    assert row["status"] == "completed"
    assert entries(journal, "long") == 1


def test_plain_celery_command_runs_workflows(env, service, log_dir):
    import subprocess
    import sys

    from tests.harness import REPO

    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "celery_app", "worker", "--concurrency", "1", "-n", "plain@%h"],
        cwd=REPO,
        env=env.variables(),
        stdout=open(log_dir / "celery.log", "wb"),  # noqa: SIM115
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        execution_id, _ = schedule(service, "t.three-steps", log_dir)
        assert finished(service, execution_id, timeout=60)["output"] == {"sum": 6}
    finally:
        worker.terminate()
        worker.wait(timeout=20)


def test_a_task_timeout_applies_even_when_scheduled_by_a_process_without_the_code(service, worker, log_dir):
    execution_id, journal = schedule(service, "t.bounded", log_dir)
    row = finished(service, execution_id)
    assert row["status"] == "failed" and row["error"]["type"] == "ExecutionTimeout"
    assert entries(journal, "never") == 0


def test_zart_worker_starts_a_new_worker_when_its_celery_process_dies(service, start_worker, log_dir):
    import os
    import signal
    import subprocess

    worker = start_worker(concurrency=1)
    celery_main = int(
        subprocess.run(
            ["pgrep", "-P", str(worker.process.pid)], capture_output=True, text=True, check=True
        ).stdout.split()[0]
    )
    os.kill(celery_main, signal.SIGKILL)  # as an "unrecoverable" broker error would end it
    poll(lambda: worker.log_path.read_text().count(" ready.") == 2, timeout=60, what="the replacement worker")
    assert worker.process.poll() is None
    execution_id, _ = schedule(service, "t.three-steps", log_dir)
    assert finished(service, execution_id)["output"] == {"sum": 6}
