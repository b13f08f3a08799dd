"""A worker that ends a run takes the next ready execution of its queues straight from Postgres, on real
workers: executions scheduled without any doorbell (a service that rings nothing) show what it takes and what
it leaves alone. The sweeper's re-publication is pushed out of the way (ZART_REDISPATCH_AFTER) where it would
otherwise rescue them and hide the difference."""

from __future__ import annotations

import time
from typing import Any

import redis
from sqlalchemy import text

from tests.flow_workflows import overlap, starts
from tests.harness import poll
from tests.integration.test_core import finished
from tests.integration.test_flow import limit_running
from tests.reliability.journal import audit
from zart.celery.doorbell import Publisher, doorbell_app, self_claim_marker
from zart.celery.standby import PASSED_ON_PREFIX, kind_digest, kind_key, kinds_key, pass_on, take
from zart.dispatch.broker import BrokerProbe, broker_marker
from zart.engine import runner
from zart.errors import StoreUnavailable
from zart.registry import Registry, default_registry
from zart.service import ZartService
from zart.store import db, executions

NO_RESCUE = {"ZART_REDISPATCH_AFTER": "600"}


def silent(env: Any, **overrides: str) -> ZartService:
    """Schedules like any client but rings no doorbell."""
    return ZartService(env.settings(**overrides), publish=lambda *_: True, registry=Registry())


def statuses(service: ZartService, ids: list[str]) -> dict[str, str]:
    with db.autocommit(service.settings.database_url) as conn:
        found = conn.execute(text("SELECT id, status FROM executions WHERE id = ANY(:ids)"), {"ids": ids})
        return {row.id: row.status for row in found}


def steps_input(log_dir: Any, name: str, **extra: Any) -> dict[str, Any]:
    return {"journal": str(log_dir / f"{name}.journal"), "steps": 3, "gap": 0.0, **extra}


def test_executions_without_doorbells_are_run_by_the_worker_that_ends_a_run(env, service, start_worker, log_dir):
    start_worker(concurrency=1, **NO_RESCUE)
    quiet = silent(env)
    unrung = [quiet.schedule("r.steps", steps_input(log_dir, "unrung")).execution["execution_id"] for _ in range(5)]
    rung = service.schedule("r.steps", steps_input(log_dir, "rung")).execution["execution_id"]
    finished(service, rung)
    for execution_id in unrung:
        assert finished(service, execution_id, timeout=10)["status"] == "completed"


def test_without_self_claim_an_unrung_execution_waits_for_the_sweeper(env, service, start_worker, log_dir):
    start_worker(concurrency=1, ZART_SELF_CLAIM="off", **NO_RESCUE)
    broker = redis.Redis.from_url(env.broker_url)
    poll(lambda: not broker.exists(self_claim_marker("zart")), what="no worker to claim that it drains the queue")
    # on a fresh broker the first sweep re-publishes whatever was pending before it: schedule after it
    poll(lambda: broker.exists(broker_marker("zart")), what="the first sweep to mark the broker")
    unrung = silent(env).schedule("r.steps", steps_input(log_dir, "unrung")).execution["execution_id"]
    rung = service.schedule("r.steps", steps_input(log_dir, "rung")).execution["execution_id"]
    finished(service, rung)
    time.sleep(1.0)  # a window in which a self-claiming worker would long have run it
    assert statuses(service, [unrung]) == {unrung: "pending"}
    service.cancel(unrung)


def test_limited_executions_without_doorbells_are_taken_within_their_limit(env, service, start_worker, log_dir):
    for _ in range(2):
        start_worker(concurrency=4, **NO_RESCUE)
    journal = log_dir / "limited.journal"
    quiet = silent(env)
    unrung = [
        quiet.schedule("flow.limited", {"journal": str(journal), "seconds": 0.02}).execution["execution_id"]
        for _ in range(30)
    ]
    rung = service.schedule("r.steps", steps_input(log_dir, "rung")).execution["execution_id"]
    finished(service, rung)
    for execution_id in unrung:
        assert finished(service, execution_id, timeout=30)["status"] == "completed"
    assert len(starts(journal)) == 30
    assert overlap(journal) <= 2  # the limit's concurrency, though up to 8 processes took them


def test_limited_executions_taken_without_doorbells_are_held_and_start_in_priority_order(
    env, service, start_worker, log_dir
):
    start_worker(concurrency=2, **NO_RESCUE)
    journal, release = log_dir / "priority.journal", log_dir / "release"
    blocker_id = service.schedule(
        "flow.priority", {"journal": str(journal), "release": str(release)}
    ).execution["execution_id"]
    poll(lambda: service.status(blocker_id)["current_step"] == "block", what="the blocker to hold the slot")
    quiet = silent(env)
    order = [0, 5, 0, 10, -1]
    ids = [
        quiet.schedule("flow.priority", {"journal": str(journal), "n": n}, priority=p).execution["execution_id"]
        for n, p in enumerate(order)
    ]
    finished(service, service.schedule("r.steps", steps_input(log_dir, "rung")).execution["execution_id"])
    # the worker's free process took them after its run: flow control held each (the slot is the blocker's)
    poll(lambda: all(service.holding_limit(i) for i in ids), what="the unrung backlog to be held")
    release.touch()
    for execution_id in [blocker_id, *ids]:
        assert finished(service, execution_id, timeout=30)["status"] == "completed"
    started = [execution_id for _, execution_id in starts(journal) if execution_id != blocker_id]
    assert started == [ids[n] for n in sorted(range(len(order)), key=lambda n: (-order[n], n))]


def test_a_worker_killed_while_running_a_limited_one_it_took_frees_the_slot_after_the_lease(
    env, service, start_worker, log_dir
):
    worker = start_worker(concurrency=1, **NO_RESCUE)
    journal, release = log_dir / "one.journal", log_dir / "release"
    quiet = silent(env)
    taken = quiet.schedule("flow.one-slot", {"journal": str(journal), "release": str(release)})
    taken_id = taken.execution["execution_id"]
    finished(service, service.schedule("r.steps", steps_input(log_dir, "rung")).execution["execution_id"])
    poll(lambda: service.status(taken_id)["current_step"] == "block", what="the unrung one to hold the slot")
    worker.kill()
    assert limit_running(service, "flow.one-slot") == 1  # still the dead worker's, until its lease runs out
    after = service.schedule("flow.one-slot", {"journal": str(journal)}).execution["execution_id"]
    release.touch()
    start_worker(concurrency=1, **NO_RESCUE)
    for execution_id in (taken_id, after):
        assert finished(service, execution_id, timeout=30)["status"] == "completed"
    assert overlap(journal) == 1
    poll(lambda: limit_running(service, "flow.one-slot") == 0, what="the slot to be given back")


def test_a_flow_limited_backlog_on_self_claiming_workers_never_exceeds_its_limit(service, start_worker, log_dir):
    for _ in range(2):
        start_worker(concurrency=4)
    journal = log_dir / "limited.journal"
    limited = [
        service.schedule("flow.limited", {"journal": str(journal), "seconds": 0.02}).execution["execution_id"]
        for _ in range(40)
    ]
    free = [service.schedule("r.steps", steps_input(log_dir, "free")).execution["execution_id"] for _ in range(40)]
    for execution_id in limited + free:
        assert finished(service, execution_id, timeout=60)["status"] == "completed"
    assert len(starts(journal)) == 40
    assert overlap(journal) <= 2


def test_a_doorbell_whose_execution_was_taken_makes_its_look_in_its_own_claim(env, service, log_dir, monkeypatch):
    """A self-claiming worker owes a look for ready executions after every doorbell. When the doorbell's own
    execution was taken already (by a worker that ended a run: most doorbells of an idle fleet), the doorbell's
    claim makes that look itself, in the same statement, and runs what it finds: one round trip, not two."""
    url = service.settings.database_url
    config = runner.RunnerConfig(url, 30.0, 0.0, "test-worker")
    selection = runner.ReadySelection(tasks=("r.steps",), queues=(service.settings.queue,), default_queue=True)
    looks: list[str] = []
    claim_next = executions.claim_next
    monkeypatch.setattr(executions, "claim_next", lambda *a, **k: looks.append("look") or claim_next(*a, **k))

    def ring(execution_id: str) -> str:
        return runner.run_execution(execution_id, config, lambda *_: True, default_registry, then_ready=selection)

    taken = service.schedule("r.steps", steps_input(log_dir, "taken")).execution["execution_id"]
    assert ring(taken) == "completed"
    assert looks == ["look"]  # after its run, found nothing
    looks.clear()
    assert ring(taken) == "skipped"  # a doorbell for an execution that ran already, nothing else ready
    assert looks == []
    unrung = silent(env).schedule("r.steps", steps_input(log_dir, "unrung")).execution["execution_id"]
    assert ring(taken) == "skipped"
    assert statuses(service, [unrung]) == {unrung: "completed"}  # taken by the doorbell's claim, and run
    assert looks == ["look"]  # only the look after that run


def test_a_lost_database_during_a_run_the_doorbells_claim_took_is_not_the_doorbells(env, service, log_dir, monkeypatch):
    """The doorbell's own execution had run already; the database goes away during the run its claim took
    instead: the doorbell's outcome stays `skipped` (the other run is recovered by the sweeper as any other)."""
    url = service.settings.database_url
    config = runner.RunnerConfig(url, 30.0, 0.0, "test-worker")
    selection = runner.ReadySelection(tasks=("r.steps",), queues=(service.settings.queue,), default_queue=True)
    taken = service.schedule("r.steps", steps_input(log_dir, "taken")).execution["execution_id"]
    assert runner.run_execution(taken, config, lambda *_: True, default_registry, then_ready=selection) == "completed"
    unrung = silent(env).schedule("r.steps", steps_input(log_dir, "unrung")).execution["execution_id"]
    run_claimed = runner._run_claimed

    def database_gone(conn: Any, claimed: dict[str, Any], *args: Any) -> str:
        if claimed["id"] == unrung:
            raise StoreUnavailable("database unavailable: gone")
        return run_claimed(conn, claimed, *args)

    monkeypatch.setattr(runner, "_run_claimed", database_gone)
    try:
        assert runner.run_execution(taken, config, lambda *_: True, default_registry, then_ready=selection) == "skipped"
        assert statuses(service, [unrung]) == {unrung: "running"}  # claimed by the doorbell's look, then lost
    finally:
        service.cancel(unrung)


def test_a_worker_killed_while_taking_ready_executions_loses_nothing(env, service, start_worker, log_dir, unique):
    worker = start_worker(concurrency=1)
    prefix = unique("self-claim") + "-"
    journal = log_dir / "bodies.journal"
    quiet = silent(env)
    data = {"journal": str(journal), "steps": 4, "gap": 0.05}
    ids = [quiet.schedule("r.steps", data, execution_id=f"{prefix}{i}").execution["execution_id"] for i in range(12)]
    service.schedule("r.steps", data, execution_id=f"{prefix}rung")
    ids.append(f"{prefix}rung")
    # the first unrung ones complete: the worker is draining the queue when it dies
    poll(lambda: list(statuses(service, ids).values()).count("completed") >= 3, what="a few taken without doorbells")
    killed_at = time.time()
    worker.kill()
    assert "completed" in statuses(service, ids[:12]).values()
    start_worker(concurrency=2)
    for execution_id in ids:
        assert finished(service, execution_id, timeout=60)["status"] == "completed"
    found = audit(journal, service.settings.database_url, prefix, [killed_at])
    assert not found.runs_after_checkpoint  # no completed step ran again
    assert found.distinct_steps == 13 * 4
    assert found.reruns <= 1  # at most the step the kill interrupted


def test_a_new_execution_rings_no_doorbell_while_its_queue_holds_one_for_a_self_claiming_fleet(env, unique):
    queue = unique("q")
    client = ZartService(env.settings(ZART_QUEUE=queue))
    broker = redis.Redis.from_url(env.broker_url)
    scheduled = []
    try:
        for _ in range(2):  # no worker announced that it takes ready executions itself: one doorbell each
            scheduled.append(client.schedule("r.steps", {"journal": "/dev/null"}).execution["execution_id"])
        assert broker.llen(queue) == 2
        broker.set(self_claim_marker(queue), "1", ex=30)
        for _ in range(3):
            scheduled.append(client.schedule("r.steps", {"journal": "/dev/null"}).execution["execution_id"])
        # one under a limit too: the worker that takes the queued doorbell admits it through flow control
        scheduled.append(client.schedule("flow.limited", {"journal": "/dev/null"}).execution["execution_id"])
        assert broker.llen(queue) == 2
        broker.delete(queue)
        scheduled.append(client.schedule("r.steps", {"journal": "/dev/null"}).execution["execution_id"])
        assert broker.llen(queue) == 1  # an empty queue always gets the doorbell
    finally:
        broker.delete(queue, self_claim_marker(queue))
        for execution_id in scheduled:
            client.cancel(execution_id)


def test_a_queued_doorbell_is_relied_on_only_when_every_kind_of_worker_on_its_queue_runs_the_task(env, unique):
    """A rolling deploy: an older worker lacking a new execution's task would take the queued doorbell and skip
    the execution. Each worker announces the tasks it runs on its queues (its kind); a kind no worker renews
    lapses. A worker lacking a task hands an execution of it on only while a worker with the task runs, and not
    again for a while (two workers lacking it never toss it back and forth)."""
    queue = unique("q")
    app = doorbell_app(env.broker_url, queue, env.database_url)
    broker = redis.Redis.from_url(env.broker_url)
    marker = self_claim_marker(queue)
    newer = BrokerProbe(app, (queue,), True, tasks=("t.a", "t.b"))
    older = BrokerProbe(app, (queue,), True, tasks=("t.a",))
    try:
        assert Publisher(app).ring_queue(queue)  # a doorbell waits in the queue
        newer.announce()
        assert take(app, queue, marker, "e1", "t.b") == "queued"  # every kind runs it
        older.announce()
        assert take(app, queue, marker, "e2", "t.a") == "queued"
        assert take(app, queue, marker, "e3", "t.b") == "ring"  # the older kind would skip it
        assert take(app, queue, marker, "e4") == "queued"  # a client that does not say the task: as before
        assert pass_on(app, queue, "t.b", "e3") is True
        assert pass_on(app, queue, "t.b", "e3") is False
        assert pass_on(app, queue, "t.c", "e5") is False  # no running worker has it: it waits, as before
        broker.delete(kind_key(queue, kind_digest(["t.a"])))  # the older workers are gone: their kind lapsed
        assert take(app, queue, marker, "e6", "t.b") == "queued"
        assert not broker.sismember(kinds_key(queue), kind_digest(["t.a"]))
        broker.delete(kind_key(queue, kind_digest(["t.a", "t.b"])))
        assert pass_on(app, queue, "t.b", "e7") is False
    finally:
        newer.close()
        older.close()
        broker.delete(
            queue, marker, kinds_key(queue), kind_key(queue, kind_digest(["t.a"])),
            kind_key(queue, kind_digest(["t.a", "t.b"])), *(PASSED_ON_PREFIX + e for e in ("e3", "e5", "e7")),
        )
