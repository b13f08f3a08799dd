"""Failures of remote steps as a Celery user expects them, and reports that must change nothing."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest
from celery import Celery

from tests.celery.conftest import IMPORTS, celery_worker_argv
from tests.celery.test_remote_steps import remote_rows
from tests.harness import Environment, Process, Worker, poll, stop_together
from tests.integration.test_core import attempts_of, finished, query, schedule
from tests.workflows import entries
from zart.celery import results
from zart.celery.calls import FAILURE_TASK, RESULT_TASK
from zart.dispatch import record_catalog
from zart.localservices import LocalPostgres, free_port
from zart.migrate import upgrade
from zart.registry import Registry
from zart.service import ZartService
from zart.store import db


def test_self_retry_is_honoured_and_is_not_a_step_failure(service, zart_worker, legacy_worker, log_dir):
    execution_id, journal = schedule(service, "c.retry-twice", log_dir)
    assert finished(service, execution_id)["output"] == "ok after 2 retries"
    assert entries(journal, "retry_twice") == 3
    step = service.steps(execution_id)[0]
    assert (step["status"], step["attempts"], step["failures"]) == ("completed", 1, 0)


def test_autoretry_for_is_honoured(service, zart_worker, legacy_worker, log_dir):
    execution_id, journal = schedule(service, "c.autoretry", log_dir)
    assert finished(service, execution_id)["output"] == "recovered"
    assert entries(journal, "autoretry") == 2


def test_a_task_that_always_raises_fails_the_step_after_its_retry_policy(service, zart_worker, legacy_worker, log_dir):
    execution_id, journal = schedule(service, "c.always-fails", log_dir)
    row = finished(service, execution_id)
    assert row["status"] == "failed"
    assert row["error"]["type"] == "StepFailed"
    assert row["error"]["cause"] == "ValueError" and "card declined" in row["error"]["message"]
    assert entries(journal, "always_fails") == 3  # the first attempt and the policy's two retries
    attempts = attempts_of(service, execution_id)
    assert [(a["attempt"], a["outcome"], a["error"]["type"]) for a in attempts] == [
        (1, "failed", "ValueError"),
        (2, "failed", "ValueError"),
        (3, "failed", "ValueError"),
    ]


def test_a_queue_nobody_serves_fails_clearly_after_the_dispatch_timeout(service, zart_worker, legacy_worker, log_dir):
    started = time.monotonic()
    execution_id, journal = schedule(service, "c.unserved", log_dir, dispatch_timeout=1.0)
    row = finished(service, execution_id)
    assert row["status"] == "failed"
    assert row["error"]["cause"] == "DispatchTimeout"
    assert "nobody-serves-this" in row["error"]["message"] and "legacy.unserved" in row["error"]["message"]
    assert time.monotonic() - started < 15
    assert entries(journal, "unserved") == 0


@pytest.mark.parametrize(
    ("task", "message"),
    [
        ("c.bad-arguments", "JSON-serialisable"),
        ("c.with-callbacks", "callbacks attached"),
        ("c.bad-queue", "queue name"),
    ],
)
def test_bad_input_fails_the_execution_at_the_call(service, zart_worker, log_dir, task, message):
    execution_id, _ = schedule(service, task, log_dir)
    row = finished(service, execution_id)
    assert row["status"] == "failed"
    assert message in row["error"]["message"]
    assert remote_rows(service, execution_id) == []


def test_late_duplicate_and_foreign_results_change_nothing(service, zart_worker, legacy_worker, log_dir):
    execution_id, _ = schedule(service, "c.sequence", log_dir)
    assert finished(service, execution_id)["output"] == {"a": 3, "b": 30}
    (token,) = [
        r["token"]
        for r in query(service, "SELECT token FROM remote_steps WHERE execution_id = :id AND step_name = 'add'",
                       id=execution_id)
    ]
    url = service.settings.database_url
    before = service.steps(execution_id)
    assert results.succeeded(url, token, 999) is None  # a duplicate of the recorded result
    assert results.failed(url, token, {"type": "ValueError", "message": "late"}) is None
    assert results.succeeded(url, "zart-" + "0" * 32, 5) is None  # nobody's dispatch
    assert results.held(url, [token], [token], "intruder", 30) == set()
    assert service.steps(execution_id) == before
    assert remote_rows(service, execution_id)[0]["state"] == "succeeded"


def test_a_legacy_worker_killed_mid_task_is_replaced_and_the_result_recorded_once(
    service, zart_worker, start_legacy, log_dir
):
    legacy = start_legacy()
    release = log_dir / "release"
    execution_id, journal = schedule(service, "c.blocking", log_dir, release=str(release))
    poll(lambda: [r["state"] for r in remote_rows(service, execution_id)] == ["started"],
         what="the worker to report the remote step started")
    # The start is reported before the body runs; kill only once the body is really inside the task.
    poll(lambda: entries(journal, "wait") == 1, what="the task body to begin")
    legacy.kill()
    release.touch()
    start_legacy()
    assert finished(service, execution_id, timeout=40)["output"] == {"value": "released", "after": 4}
    assert entries(journal, "wait") == 2  # the killed body and its re-dispatch
    assert entries(journal, "add") == 1
    (row,) = [r for r in remote_rows(service, execution_id) if r["step_name"] == "wait"]
    assert (row["state"], row["losses"]) == ("succeeded", 1)
    counts = query(service, "SELECT name, count(*) AS n FROM steps WHERE execution_id = :id GROUP BY name "
                   "ORDER BY name", id=execution_id)
    assert counts == [{"name": "after", "n": 1}, {"name": "wait", "n": 1}]


def test_a_task_a_killed_worker_received_but_never_started_is_sent_again_within_about_a_lease(
    service, zart_worker, start_legacy, log_dir
):
    """With one pool process busy and a prefetch of two, the worker holds the second task without starting it;
    killed, it leaves that message unacknowledged in Redis (redelivered only after the visibility timeout). It
    must be noticed within about a lease (3 s here), not after the 300 s dispatch timeout."""
    legacy = start_legacy("tests.legacy.integrated", 1, "--prefetch-multiplier", "2")
    release = log_dir / "release"
    execution_id, journal = schedule(service, "c.blocking-beside-another", log_dir, release=str(release))
    poll(lambda: entries(journal, "wait") == 1, what="the blocking task to begin")
    poll(lambda: [(r["state"], r["worker"] is not None) for r in remote_rows(service, execution_id)
                  if r["step_name"] == "beside"] == [("sent", True)],
         what="the worker to report that it holds the second task")
    assert entries(journal, "add") == 0  # received, not started: the only pool process is busy
    legacy.kill()
    release.touch()
    start_legacy()
    assert finished(service, execution_id, timeout=30)["output"] == ["released", 4]
    assert entries(journal, "add") == 1
    beside = next(r for r in remote_rows(service, execution_id) if r["step_name"] == "beside")
    assert (beside["state"], beside["losses"], beside["sends"]) == ("succeeded", 1, 1)


def test_redis_flushed_during_a_remote_step_loses_nothing(service, start_zart, start_legacy, log_dir, redis_server):
    import redis

    start_zart()
    start_legacy()
    release = log_dir / "release"
    execution_id, journal = schedule(service, "c.blocking", log_dir, release=str(release))
    poll(lambda: entries(journal, "wait") == 1, what="the remote step to start")
    redis.Redis.from_url(redis_server.url).flushall()
    release.touch()
    assert finished(service, execution_id, timeout=40)["output"] == {"value": "released", "after": 4}
    assert entries(journal, "wait-end") >= 1


def test_a_silent_step_the_run_does_not_await_does_not_wake_it_every_sweep(
    service, start_zart, legacy_worker, log_dir
):
    start_zart(ZART_REMOTE_HOLD="0")  # every wake is a replay that parks at once
    release = log_dir / f"release-{time.monotonic_ns()}"
    execution_id, journal = schedule(service, "c.silent-not-awaited", log_dir, release=str(release))
    poll(lambda: entries(journal, "wait") == 1, what="the awaited task to begin")

    def silent_for_a_while() -> bool:
        rows = query(
            service,
            "SELECT now() - alive_until > interval '2 seconds' AS long FROM remote_steps "
            "WHERE execution_id = :id AND step_name = 'lost'",
            id=execution_id,
        )
        return bool(rows and rows[0]["long"])

    poll(silent_for_a_while, what="the scheduled step to be silent for several sweeps")
    replays = entries(journal, "replay")
    release.touch()
    assert finished(service, execution_id)["output"] == "released"
    # the first run (dispatch, hold, park), perhaps one more when the awaited result came: never once per sweep
    assert replays <= 2, f"the run was replayed {replays} times while it awaited one running task"


def test_a_result_recorded_as_the_steps_timeout_is_judged_is_the_steps_outcome(service, env, log_dir, monkeypatch):
    """The fleet's result commits after the replay read the dispatch in flight and before the run records the
    timeout as a failed attempt: the run takes the result, as the checkpoint says."""
    from celery import Celery

    from zart.celery import calls
    from zart.engine import remote as engine_remote
    from zart.engine.runner import RunnerConfig, run_execution
    from zart.registry import default_registry
    from zart.store import db, sweeps

    url = service.settings.database_url
    home = Celery("timeout-race", broker=env.broker_url, set_as_current=False)
    home.conf.update(task_serializer="json")
    monkeypatch.setattr(calls, "_home", calls._home)  # restored afterwards: the home is this process's
    calls.configure_home(home, "nobody-serves-this-either", 300.0)
    config = RunnerConfig(url, 30.0, 0.0, "test-runner")
    execution_id, _ = schedule(service, "c.timeout-race", log_dir)
    assert run_execution(execution_id, config, lambda *_: True, default_registry) == "suspended"
    (token,) = [r["token"] for r in query(service, "SELECT token FROM remote_steps WHERE execution_id = :id",
                                          id=execution_id)]

    def timed_out() -> bool:
        with db.autocommit(url) as conn:
            return execution_id in sweeps.wake_due(conn, 100)

    poll(timed_out, what="the step's timeout to fall due")
    judged = engine_remote.steps.record_failure

    def result_lands_first(*args, **kwargs):
        results.succeeded(url, token, 42)
        return judged(*args, **kwargs)

    monkeypatch.setattr(engine_remote.steps, "record_failure", result_lands_first)
    outcome = run_execution(execution_id, config, lambda *_: True, default_registry)
    row = service.status(execution_id)
    assert (outcome, row["status"], row.get("output")) == ("completed", "completed", 42), row.get("error")
    assert remote_rows(service, execution_id)[0]["state"] == "succeeded"


def test_a_task_the_worker_holds_back_for_its_celery_rate_limit_is_reported_held(
    service, zart_worker, start_legacy, log_dir
):
    """The second call waits about five seconds in the worker's token bucket, received but neither reserved nor
    running: the worker holds it, so it is neither sent again nor failed after its two-second dispatch timeout."""
    start_legacy()
    execution_id, journal = schedule(service, "c.rate-limited", log_dir)
    assert finished(service, execution_id, timeout=40)["output"] == [0, 1]
    assert entries(journal, "rate_limited-1") == 1


@pytest.mark.parametrize(
    ("kind", "cause", "problem"),
    [
        ("nan", "UnstorableValue", "NaN"),
        ("nul", "UnstorableValue", "U+0000"),
        ("set", "UnstorableValue", "not JSON"),
        # recorded as a failing local step's message is (escaped, not replaced), and a message that cannot
        # be had at all is named as such rather than losing the outcome (the task then ran again)
        ("raise-nul", "ValueError", "bad\\x00byte"),
        ("raise-unprintable", "Unprintable", "<str() of this Unprintable raised RuntimeError>"),
    ],
)
def test_a_result_the_store_cannot_hold_fails_the_step_once_and_clearly(
    service, zart_worker, legacy_worker, log_dir, kind, cause, problem
):
    execution_id, journal = schedule(service, "c.unstorable-result", log_dir, kind=kind)
    row = finished(service, execution_id)
    assert row["status"] == "failed"
    assert row["error"]["cause"] == cause and problem in row["error"]["message"]
    assert entries(journal, "returns") == 1  # not run again as if its worker had gone silent


def test_a_failure_an_integrated_worker_reports_from_its_main_process_sends_no_fallback_callback(
    env, service, zart_worker, legacy_worker, log_dir
):
    """A Reject (like a hard time limit or a lost pool process) is failed by the worker's main process, which
    also runs the message's error callbacks: the fallback one must not go out, or it races the integration's
    own report and may record the failure as coming from a worker without the integration."""
    fallbacks = zart_worker.log_path.read_bytes().count(f"{FAILURE_TASK}[".encode())
    execution_id, journal = schedule(service, "c.refuses", log_dir, how="reject", dispatch_timeout=300.0)
    row = finished(service, execution_id)
    assert row["error"]["cause"] == "Reject" and "not for us" in row["error"]["message"]
    assert entries(journal, "refuses") == 1
    # a message queued after the step failed: once the zart worker has taken it, it has taken any callback too
    sender = Celery("marker", broker=env.broker_url, set_as_current=False)
    marker = sender.send_task(RESULT_TASK, kwargs={"token": "zart-marker"}, queue=env.settings().queue).id
    poll(lambda: f"{RESULT_TASK}[{marker}] received".encode() in zart_worker.log_path.read_bytes(),
         what="the zart worker to take the marker")
    assert zart_worker.log_path.read_bytes().count(f"{FAILURE_TASK}[".encode()) == fallbacks


@pytest.mark.parametrize(
    ("task", "outcome"),
    [
        ("c.blocking", {"value": "released", "after": 4}),  # reported by the pool process
        ("c.reject-when-released", "Reject"),  # a failure the worker's main process reports
    ],
)
def test_a_result_reported_while_postgres_is_down_is_recorded_once_it_is_back(
    env, services_dir, log_dir, unique, task, outcome
):
    """The task finished during a database outage: its integrated worker keeps the outcome and reports it when
    Postgres is back, instead of losing it and having the task run again as if its worker had gone silent."""
    postgres, private = _outage_database(env, services_dir / unique("pg-remote"), redis_db=9)
    zart = Worker(private, log_dir, ZART_IMPORTS=IMPORTS)
    legacy = Process(private.variables(), log_dir, "legacy", celery_worker_argv("tests.legacy.integrated", "legacy", 1))
    try:
        zart.wait_ready(60)
        legacy.wait_for(b" ready.")
        service = ZartService(private.settings(), registry=Registry())
        release = log_dir / "release"
        execution_id, journal = schedule(service, task, log_dir, release=str(release))
        poll(lambda: entries(journal, "wait") == 1, 30, what="the task to start")
        postgres.stop()
        release.touch()
        poll(lambda: entries(journal, "wait-end") == 1, 30, what="the task to finish")
        time.sleep(1)  # the outage goes on for a moment after the task finished (its report failed)
        postgres.start(fsync=False)
        row = finished(service, execution_id, 60)
        assert (row["output"] if row["status"] == "completed" else row["error"]["cause"]) == outcome
        assert entries(journal, "wait") == 1  # recorded, not run again
    finally:
        stop_together([legacy, zart])
        db.dispose_all()
        postgres.stop(mode="immediate")


def test_a_task_that_raises_ignore_ends_the_step_clearly_without_running_again(
    service, zart_worker, legacy_worker, log_dir
):
    execution_id, journal = schedule(service, "c.refuses", log_dir, how="ignore", dispatch_timeout=1.0)
    row = finished(service, execution_id)
    assert row["status"] == "failed" and row["error"]["cause"] == "Ignore"
    assert entries(journal, "refuses") == 1


def test_a_task_that_replaces_itself_completes_the_step_with_its_replacements_result(
    service, zart_worker, legacy_worker, log_dir
):
    execution_id, journal = schedule(service, "c.hands-over", log_dir)
    row = finished(service, execution_id)
    assert row["status"] == "completed" and row["output"] == 5
    assert entries(journal, "hands-over") == 1 and entries(journal, "add") == 1


@pytest.mark.parametrize(
    ("how", "outcome"),
    [
        ("retry", ("completed", "plain after 1 retries")),  # self.retry()
        ("autoretry", ("completed", "plain after 1 retries")),  # autoretry_for
        ("lost", ("completed", "plain after 1 retries")),  # retry_on_worker_lost, sent by the main process
        ("replace", ("completed", "plain after 0 retries")),  # self.replace(): the replacement has the same id
        # the chain's last task has the task's id; whichever worker runs the chain's first task sends it
        ("replace-by-chain", ("completed", "plain after")),
        ("exhaust", ("failed", "TaskFailed")),  # autoretry_for, max_retries spent on the worker without it
    ],
)
def test_a_retry_taken_by_a_worker_without_the_integration_still_reports_its_outcome(
    service, zart_worker, start_legacy, log_dir, how, outcome
):
    """A mixed fleet: the task retries on a worker with the integration, and its retried message is taken by one
    without it. That message must still carry the fallback callbacks, or its outcome is never reported and the
    step waits out its two-minute dispatch timeout."""
    start_legacy("tests.legacy.integrated", 1)  # one pool process: it cannot take its own retry while it runs
    release = log_dir / f"release-{how}"
    execution_id, journal = schedule(service, "c.retries-off-integrated", log_dir, release=str(release), how=how)
    poll(lambda: entries(journal, "integrated") == 1, what="the task to begin on the integrated worker")
    start_legacy("tests.legacy.app", 1)
    release.touch()
    row = finished(service, execution_id, timeout=30)
    status, shown = row["status"], row["output"] if row["status"] == "completed" else row["error"]["cause"]
    assert (status, shown[: len(outcome[1])]) == outcome, row.get("error")
    assert entries(journal, "plain") == 1
    # the chain's last task may be taken by the worker with the integration first: it retries that one
    assert entries(journal, "integrated") == 1 or how == "replace-by-chain"


def test_a_retry_waiting_for_its_countdown_on_a_killed_worker_is_sent_again_within_about_a_lease(
    service, zart_worker, start_legacy, log_dir
):
    """`self.retry(countdown=120)`: the worker holds the retried message in memory until then (unacknowledged in
    Redis, redelivered only after the visibility timeout). Killed, it must be noticed within about a lease, as
    a killed worker holding any other task is, not after the countdown and the dispatch timeout."""
    legacy = start_legacy("tests.legacy.integrated", 1)
    execution_id, journal = schedule(service, "c.retry-later", log_dir, countdown=120)
    poll(lambda: entries(journal, "retry_later") == 1, what="the first run")
    (token,) = [r["token"] for r in query(service, "SELECT token FROM remote_steps WHERE execution_id = :id",
                                          id=execution_id)]
    received = f"legacy.retry_later[{token}] received".encode()
    poll(lambda: legacy.log_path.read_bytes().count(received) == 2, what="the worker to take the retried message")
    (seen,) = query(service, "SELECT now() AS at")

    def reported_held() -> bool:
        (row,) = query(service, "SELECT state, heartbeat_at FROM remote_steps WHERE token = :token", token=token)
        return row["state"] == "retry" and row["heartbeat_at"] > seen["at"]

    poll(reported_held, what="the worker to report that it holds the retried message")
    legacy.kill()
    start_legacy("tests.legacy.integrated", 1)
    row = finished(service, execution_id, timeout=30)
    assert (row["status"], row.get("output")) == ("completed", "ran after 0 retries")
    assert entries(journal, "retry_later") == 2  # the killed worker's retry never ran; the new dispatch did


def test_a_retry_that_ran_between_two_looks_of_its_worker_does_not_keep_the_step_alive(
    service, zart_worker, start_legacy, log_dir
):
    """The worker held the retried message for its countdown, then ran it (it retried once more, to a queue
    nobody serves) while its reporter was not looking. That message is done: reporting it held ever after would
    keep the lost retry's step waiting for as long as the worker lives, instead of its dispatch timeout."""
    start_legacy("tests.legacy.integrated_slow_reports", 1)
    execution_id, journal = schedule(service, "c.hops-away", log_dir)
    row = finished(service, execution_id, timeout=45)
    assert row["status"] == "failed" and row["error"]["cause"] in ("DispatchTimeout", "WorkerLost"), row["error"]
    assert entries(journal, "hops_away-0") >= 2  # sent again once its last message was lost


def test_a_retry_reported_while_postgres_is_down_is_recorded_once_it_is_back(
    env, services_dir, log_dir, unique
):
    """The task retries (a 20 s countdown) during a database outage, and a worker without the integration takes
    the retry: nobody else will report on it before it runs. The retry must be recorded when Postgres is back,
    not lost, or the step looks silent after a lease and the task is sent again while its retry waits."""
    postgres, private = _outage_database(env, services_dir / unique("pg-retry"), redis_db=10)
    zart = Worker(private, log_dir, ZART_IMPORTS=IMPORTS)
    argv = celery_worker_argv("tests.legacy.integrated", "legacy", 1)
    integrated = Process(private.variables(), log_dir, "legacy", argv)
    started: list[Process] = [zart, integrated]
    try:
        zart.wait_ready(60)
        integrated.wait_for(b" ready.")
        service = ZartService(private.settings(), registry=Registry())
        release = log_dir / "release"
        execution_id, journal = schedule(
            service, "c.retries-off-integrated", log_dir, release=str(release), how="retry-later"
        )
        poll(lambda: entries(journal, "integrated") == 1, 30, what="the task to begin on the integrated worker")
        plain = Process(private.variables(), log_dir, "plain", celery_worker_argv("tests.legacy.app", "legacy", 1))
        started.append(plain)
        plain.wait_for(b" ready.")
        postgres.stop()
        poll(lambda: not _accepts(postgres.port), 30, what="PostgreSQL to be down")
        release.touch()
        poll(lambda: b"] received" in plain.log_path.read_bytes(), 30, what="the worker without it to take the retry")
        postgres.start(fsync=False)

        def retry_recorded() -> bool:
            return [r["state"] for r in query(service, "SELECT state FROM remote_steps WHERE execution_id = :id",
                                              id=execution_id)] == ["retry"]

        poll(retry_recorded, 30, what="the retry to be recorded")
        row = finished(service, execution_id, 60)
        assert (row["status"], row.get("output")) == ("completed", "plain after 1 retries"), row.get("error")
        assert (entries(journal, "integrated"), entries(journal, "plain")) == (1, 1)  # not sent again
    finally:
        stop_together(reversed(started))
        db.dispose_all()
        postgres.stop(mode="immediate")


def _accepts(port: int) -> bool:
    """Whether something listens on `port`: the outage is under way only once nothing does."""
    with socket.socket() as probe:
        probe.settimeout(1)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def _block_the_legacy_worker(env: Environment, log_dir: Path) -> str:
    """Occupy a one-process legacy worker with a task sent straight to its queue (no zart step); returns the
    file that releases it."""
    journal, release = (str(log_dir / f"blocker-{time.monotonic_ns()}.{kind}") for kind in ("journal", "release"))
    app = Celery("blocker", broker=env.broker_url)
    app.send_task("legacy.wait_for_file", args=[journal, "blocker", release, "x"], queue="legacy")
    poll(lambda: entries(journal, "blocker") == 1, what="the legacy worker to be busy")
    return release


def test_a_dispatch_sent_again_behind_a_backlog_revokes_the_first_so_the_task_runs_once(
    env, service, zart_worker, start_legacy, log_dir
):
    """A plain worker says nothing until the result: behind a backlog longer than the dispatch timeout the task
    is sent again under a new id. The first message stayed queued and ran too (its result thrown away); it is
    now revoked when the second is sent, so the worker discards it."""
    legacy = start_legacy("tests.legacy.app", 1)
    release = _block_the_legacy_worker(env, log_dir)
    execution_id, journal = schedule(service, "c.add-within", log_dir, dispatch_timeout=4.0)
    poll(lambda: [r["sends"] for r in remote_rows(service, execution_id)] == [2],
         what="the task to be sent again", timeout=30)
    legacy.wait_for(b"Tasks flagged as revoked", timeout=10)  # the revoke follows the second send
    open(release, "w").close()
    assert finished(service, execution_id)["output"] == 3
    # FIFO on one worker process: once a task sent after both messages has run, both had their turn
    marker_id, _ = schedule(service, "c.sequence", log_dir)
    assert finished(service, marker_id)["status"] == "completed"
    assert entries(journal, "add") == 1, "the superseded message ran too"


def test_an_execution_that_times_out_revokes_its_celery_tasks_still_queued(
    env, service, zart_worker, start_legacy, log_dir
):
    start_legacy("tests.legacy.integrated", 1)
    release = _block_the_legacy_worker(env, log_dir)
    execution_id, journal = schedule(service, "c.add-bounded", log_dir)
    row = finished(service, execution_id)
    assert row["status"] == "failed" and row["error"]["type"] == "ExecutionTimeout"
    poll(lambda: [r["state"] for r in remote_rows(service, execution_id)] == ["abandoned"],
         what="the timed-out run's task to be revoked")
    open(release, "w").close()
    marker_id, _ = schedule(service, "c.sequence", log_dir)
    assert finished(service, marker_id)["status"] == "completed"
    assert entries(journal, "add") == 0, "a revoked task ran"


def test_a_countdown_longer_than_the_dispatch_timeout_is_waited_for_on_a_plain_worker(
    service, zart_worker, start_legacy, log_dir
):
    """A step's signature set with a countdown: a plain worker holds the message until it is due and says
    nothing meanwhile, so the dispatch timeout, counted from the send, took it for lost, sent it again and
    failed the step with DispatchTimeout before the task was even due. It is now counted from when it is due."""
    start_legacy("tests.legacy.app")
    execution_id, journal = schedule(service, "c.add-later", log_dir, countdown=4.0, dispatch_timeout=1.5)
    row = finished(service, execution_id)
    assert (row["status"], row["output"]) == ("completed", 3), row["error"]
    assert entries(journal, "add") == 1
    assert [r["sends"] for r in remote_rows(service, execution_id)] == [1]


def _outage_database(env: Environment, directory: Path, redis_db: int) -> tuple[LocalPostgres, Environment]:
    """A private, migrated Postgres a test may stop (and its own Redis database), for an outage the session's
    other tests must not see. The lease is longer than the outage: the zart worker would otherwise take the
    task for lost as Postgres returns."""
    postgres = LocalPostgres(directory, free_port())
    postgres.start(fsync=False)
    private = Environment(
        postgres.url, env.broker_url.rsplit("/", 1)[0] + f"/{redis_db}", IMPORTS, extra={"ZART_LEASE_SECONDS": "10"}
    )
    upgrade(postgres.url)
    record_catalog(private.settings())
    return postgres, private
