"""A running worker stands by for a new execution of its queues: the new execution takes the standby instead of
ringing a doorbell, and the worker looks for it before it leaves. On real Redis and real workers."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from sqlalchemy import text

import tests.workflows  # noqa: F401  (registers the workflows scheduled here)
from tests.harness import poll
from tests.integration.test_core import finished, schedule
from zart.celery.calls import RESULT_TASK
from zart.celery.doorbell import ANY_READY, Publisher, doorbell_app, self_claim_marker
from zart.celery.standby import TAKERS_GRACE_SECONDS, Standby, kinds_key, standby_key, take, takers_key
from zart.dispatch.broker import broker_marker
from zart.errors import ExecutionAlreadyFinished
from zart.service import ZartService
from zart.store import db, executions

NO_RESCUE = {"ZART_REDISPATCH_AFTER": "600"}


def test_a_standby_is_taken_once_and_its_worker_then_looks_again(env, unique):
    queue = unique("q")
    app = doorbell_app(env.broker_url, queue, env.database_url)
    broker = redis.Redis.from_url(env.broker_url)
    rung: list[str] = []
    standby = Standby(app, (queue,), rung.append, lambda queue: rung.append(f"queue {queue}"), 30.0)
    marker = self_claim_marker(queue)
    try:
        standby.offer()
        assert take(app, queue, marker, "e1") == "ring"  # no worker of the queue said it takes ready executions
        broker.set(marker, "1", ex=30)
        assert take(app, queue, marker, "e1") == "standby"
        assert 0 < broker.ttl(takers_key(standby._token)) <= 30 + TAKERS_GRACE_SECONDS  # gone with a dead worker
        assert take(app, queue, marker, "e2") == "ring"  # one standby, one execution
        assert standby.withdraw() is False  # taken: the worker must look once more
        assert not broker.exists(takers_key(standby._token))  # its takers are read once
        standby.offer()
        assert standby.withdraw() is True  # not taken: it may leave
        assert Publisher(app).ring_queue(queue)  # a doorbell waits in the queue
        assert take(app, queue, marker, "e3") == "queued"
        standby.offer()
        assert take(app, queue, marker, "e4") == "standby"
        standby.claimed("e4")  # its look found e4 before reading who took the standby
        standby.leave()  # e1 was never claimed here (its task, say, is not this worker's): its doorbell rings
        assert rung == ["e1"]
        standby.offer()
        broker.delete(standby_key(queue))  # gone with no taker named (it lapsed, or an older client took it)
        standby.leave()
        assert rung == ["e1", f"queue {queue}"]
    finally:
        broker.delete(queue, marker, standby_key(queue), takers_key(standby._token))


def test_a_standby_lapses_and_a_run_that_outlasts_it_rings_for_its_taker(env, unique):
    queue = unique("q")
    app = doorbell_app(env.broker_url, queue, env.database_url)
    broker = redis.Redis.from_url(env.broker_url)
    marker = self_claim_marker(queue)
    broker.set(marker, "1", ex=30)
    rung: list[str] = []
    try:
        untaken = Standby(app, (queue,), rung.append, rung.append, 0.2)
        untaken.offer()
        poll(lambda: not untaken.held, what="the standby to be withdrawn as it lapses")
        assert take(app, queue, marker, "e1") == "ring"
        assert rung == []  # nobody took it: nothing to ring

        taken = Standby(app, (queue,), rung.append, rung.append, 0.5)
        taken.offer()
        assert take(app, queue, marker, "e2") == "standby"
        poll(lambda: rung == ["e2"], what="a doorbell for the execution that took the lapsing standby")
        assert taken.withdraw() is True  # already left
    finally:
        broker.delete(queue, marker, standby_key(queue))


def test_a_leaving_worker_rings_only_the_takers_nobody_claimed(env, unique, log_dir):
    """In a busy fleet another worker's look usually claims a taker first: its doorbell would only cost a claim
    that takes nothing, so the store is asked which takers are still pending."""
    queue = unique("q")
    app = doorbell_app(env.broker_url, queue, env.database_url)
    broker = redis.Redis.from_url(env.broker_url)
    marker = self_claim_marker(queue)
    broker.set(marker, "1", ex=30)
    service = ZartService(env.settings())  # knows the tests' workflows from their module, with no worker running
    taken_elsewhere, _ = schedule(service, "t.three-steps", log_dir)
    still_pending, _ = schedule(service, "t.three-steps", log_dir)
    service.cancel(taken_elsewhere)  # no longer pending, as once another worker claimed it
    rung: list[str] = []

    def pending(ids: list[str]) -> list[str]:
        with db.autocommit(env.database_url) as conn:
            return executions.pending_among(conn, ids)

    standby = Standby(app, (queue,), rung.append, rung.append, 30.0, still_pending=pending)
    try:
        standby.offer()
        assert take(app, queue, marker, taken_elsewhere) == "standby"
        assert standby.withdraw() is False
        standby.offer()
        assert take(app, queue, marker, still_pending) == "standby"
        standby.leave()
        assert rung == [still_pending]
    finally:
        service.cancel(still_pending)
        broker.delete(queue, marker, standby_key(queue), takers_key(standby._token))


@pytest.fixture()
def idle_queue(env: Any) -> Iterator[redis.Redis]:
    """The default queue without doorbells, standbys or executions of earlier tests (the worker would run them
    first, standing by meanwhile, and the test's first execution would take that standby), and without this
    test's standbys afterwards (its workers stand by for a minute)."""
    service = ZartService(env.settings())
    with db.autocommit(env.database_url) as conn:
        left = conn.execute(text("SELECT id FROM executions WHERE status IN ('pending', 'running', 'waiting')"))
        for execution_id in left.scalars().all():
            with contextlib.suppress(ExecutionAlreadyFinished):  # a parent cancelled before it took it along
                service.cancel(execution_id)
    broker = redis.Redis.from_url(env.broker_url)
    broker.delete("zart", standby_key("zart"), kinds_key("zart"))  # the kinds of earlier tests' workers, too
    yield broker
    broker.delete(standby_key("zart"))


def first_sweep(broker: redis.Redis) -> None:
    """Wait for the worker to say it takes ready executions, and for its first sweep to mark a fresh broker:
    that sweep re-publishes whatever was pending before it, which would add doorbells the tests count."""
    poll(lambda: broker.exists(self_claim_marker("zart")), what="the worker to say it takes ready executions")
    poll(lambda: broker.exists(broker_marker("zart")), what="the first sweep to mark the broker")


def test_a_new_execution_takes_a_running_workers_standby_and_rings_no_doorbell(
    env, idle_queue, service, start_worker, log_dir
):
    broker = idle_queue
    start_worker(concurrency=1, ZART_STANDBY_SECONDS="60", **NO_RESCUE)
    first_sweep(broker)
    release = log_dir / "release"
    blocker, _ = schedule(service, "t.blocking", log_dir, release=str(release))
    poll(lambda: service.status(blocker)["current_step"] == "b", what="the worker's one process to be busy")
    scheduled: Any = service.schedule("r.steps", {"journal": str(log_dir / "new.journal"), "steps": 2})
    assert scheduled.published  # left to the standing worker: nothing is waiting in the queue for it
    assert broker.llen("zart") == 0
    release.touch()
    assert finished(service, blocker)["status"] == "completed"
    assert finished(service, scheduled.execution["execution_id"], timeout=10)["status"] == "completed"


def test_a_worker_killed_while_standing_by_strands_nothing(env, idle_queue, start_worker, log_dir):
    broker = idle_queue
    worker = start_worker(concurrency=1, ZART_STANDBY_SECONDS="60", ZART_REDISPATCH_AFTER="1")
    service = ZartService(env.settings())
    first_sweep(broker)
    release = log_dir / "release"
    blocker, _ = schedule(service, "t.blocking", log_dir, release=str(release))
    poll(lambda: service.status(blocker)["current_step"] == "b", what="the worker's one process to be busy")
    worker.kill()
    taker = service.schedule("r.steps", {"journal": str(log_dir / "taker.journal"), "steps": 2})
    assert broker.llen("zart") == 0  # it took the dead worker's standby
    release.touch()
    start_worker(concurrency=1, ZART_REDISPATCH_AFTER="1")
    assert finished(service, taker.execution["execution_id"], timeout=30)["status"] == "completed"
    assert finished(service, blocker, timeout=30)["status"] == "completed"


def test_a_doorbell_naming_no_execution_runs_the_ready_ones(env, idle_queue, start_worker, log_dir):
    start_worker(concurrency=1, **NO_RESCUE)
    quiet = ZartService(env.settings(), publish=lambda *_: True)
    unrung = quiet.schedule("r.steps", {"journal": str(log_dir / "unrung.journal"), "steps": 2})
    ZartService(env.settings()).publish(ANY_READY)
    assert finished(quiet, unrung.execution["execution_id"], timeout=10)["status"] == "completed"


def test_a_new_execution_takes_no_standby_while_a_worker_lacking_its_task_stands_by(
    env, idle_queue, service, start_worker, log_dir
):
    """A rolling deploy: the standing worker lacks the new execution's task, so its looks would never find it,
    and it would ring that execution's doorbell only when its run ends (or its standby lapses, most of a minute
    here). The execution rings its own instead, and an idle worker with the task runs it meanwhile."""
    broker = idle_queue
    start_worker(concurrency=1, ZART_STANDBY_SECONDS="60", ZART_IMPORTS="tests.workflows", **NO_RESCUE)
    first_sweep(broker)
    release = log_dir / "release"
    blocker, _ = schedule(service, "t.blocking", log_dir, release=str(release))
    poll(lambda: service.status(blocker)["current_step"] == "b", what="the older worker's one process to be busy")
    start_worker(concurrency=1, **NO_RESCUE)  # idle: it stands by for nothing, so only a doorbell wakes it
    scheduled: Any = service.schedule("r.steps", {"journal": str(log_dir / "new.journal"), "steps": 2})
    assert scheduled.published
    assert finished(service, scheduled.execution["execution_id"], timeout=10)["status"] == "completed"
    release.touch()
    assert finished(service, blocker)["status"] == "completed"


def test_a_queued_doorbell_taken_by_a_worker_lacking_the_new_executions_task_rings_for_it(
    env, idle_queue, service, start_worker, log_dir
):
    """A rolling deploy without standbys: a doorbell waits in the queue, but the worker that will take it lacks
    the new execution's task, so its looks would never find it: the new execution rings its own. The older
    worker takes that doorbell too (the newer one is not running yet) and parks it to wait for a worker with the
    task; once the newer one runs, the execution reaches it whichever of the two takes its next doorbell."""
    broker = idle_queue
    start_worker(concurrency=1, ZART_IMPORTS="tests.workflows", **NO_RESCUE)  # an older worker: no r.steps
    first_sweep(broker)
    release = log_dir / "release"
    blocker, _ = schedule(service, "t.blocking", log_dir, release=str(release))
    poll(lambda: service.status(blocker)["current_step"] == "b", what="the older worker's one process to be busy")
    queued, _ = schedule(service, "t.scheduled", log_dir)
    assert broker.llen("zart") == 1  # its doorbell waits for the busy worker
    scheduled: Any = service.schedule("r.steps", {"journal": str(log_dir / "new.journal"), "steps": 2})
    assert scheduled.published and broker.llen("zart") == 2  # not left to a taker lacking its task
    release.touch()
    assert finished(service, blocker)["status"] == "completed"
    assert finished(service, queued)["status"] == "completed"
    poll(lambda: broker.llen("zart") == 0, what="the older worker to take the queued doorbell")
    start_worker(concurrency=1, **NO_RESCUE)  # a newer worker, idle: only a doorbell wakes it
    assert finished(service, scheduled.execution["execution_id"], timeout=10)["status"] == "completed"


def test_a_queued_message_that_is_not_a_doorbell_to_run_now_leaves_no_new_execution_unrung(
    env, idle_queue, service, start_worker, log_dir
):
    """Zart's queue also carries the callbacks of remote steps reported by a fleet without the integration, and
    doorbells with a countdown, which their taker holds until their time: the worker that takes one of those
    makes no look then, so a new execution is left only to a doorbell that is run as soon as it is taken."""
    broker = idle_queue
    broker.set(self_claim_marker("zart"), "1", ex=60)  # the queue's workers take ready executions themselves
    app = doorbell_app(env.broker_url, "zart", env.database_url)
    app.send_task(RESULT_TASK, kwargs={"token": "a dispatch"}, queue="zart")  # a fleet's callback
    behind_callback: Any = service.schedule("r.steps", {"journal": str(log_dir / "one.journal"), "steps": 2})
    assert broker.llen("zart") == 2  # it rang its own doorbell
    assert Publisher(app).publish(ANY_READY, countdown=60)
    behind_countdown: Any = service.schedule("r.steps", {"journal": str(log_dir / "two.journal"), "steps": 2})
    assert broker.llen("zart") == 4
    start_worker(concurrency=1, **NO_RESCUE)
    for scheduled in (behind_callback, behind_countdown):
        assert finished(service, scheduled.execution["execution_id"], timeout=10)["status"] == "completed"
