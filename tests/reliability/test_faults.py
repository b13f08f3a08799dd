"""Database faults, a frozen worker, and deliberate duplicate delivery."""

from __future__ import annotations

from flask_app import create_app
from tests.harness import poll
from tests.reliability.journal import audit
from zart.celery.doorbell import Publisher
from zart.dispatch import create_celery_app
from zart.registry import Registry
from zart.service import ZartService


def test_postgres_restart_mid_run_loses_nothing(env, service, start_worker, log_dir, unique, postgres):
    url = service.settings.database_url
    prefix = unique("pgrestart") + "-"
    journal = log_dir / "bodies.journal"
    start_worker(concurrency=2)
    start_worker(concurrency=2)
    ids = [f"{prefix}{i}" for i in range(40)]
    for execution_id in ids:
        service.schedule("r.steps", {"journal": str(journal), "steps": 6, "gap": 0.05}, execution_id=execution_id)
    client = create_app(settings=env.settings()).test_client()
    assert client.get(f"/api/v1/executions/{ids[0]}").status_code == 200  # the pool holds a connection now
    poll(lambda: journal.exists() and len(journal.read_text().splitlines()) > 40, what="work to be under way")
    postgres.restart()
    answers = []
    poll(
        lambda: answers.append(client.get(f"/api/v1/executions/{ids[0]}").status_code) or answers[-1] == 200,
        10,
        what="the API to answer again",
    )
    assert set(answers) <= {200, 503}, answers  # at worst "unavailable, try again", never a 500
    for execution_id in ids:
        done, row = service.wait(execution_id, 60)
        assert done and row["output"] == {"value": 6}, (execution_id, row["status"])
    result = audit(journal, url, prefix, kills=[])
    assert result.runs_after_checkpoint == []
    after = client.post("/api/v1/executions", json={"task": "r.steps", "data": {"journal": str(journal), "steps": 1}})
    assert after.status_code == 201, after.get_json()
    assert service.wait(after.get_json()["execution_id"], 30)[0]
    print(f"\nAPI answers right after the restart: {answers}")


def test_frozen_worker_cannot_overwrite_its_successor(env, service, start_worker, log_dir, unique):
    release = log_dir / "release"
    frozen = start_worker(concurrency=1)
    execution_id = unique("frozen")
    service.schedule("r.owner", {"release": str(release)}, execution_id=execution_id)
    poll(lambda: service.status(execution_id)["steps_completed"] == 1, what="the first step")
    poll(lambda: service.status(execution_id)["current_step"] == "hold", what="the held step to show as running")
    frozen.freeze()
    try:
        release.touch()
        successor = start_worker(concurrency=1)
        done, row = service.wait(execution_id, 30)
        assert done and row["status"] == "completed"
        successor_output = row["output"]
        assert successor_output["hold"] != successor_output["first"]  # a different process finished it
    finally:
        frozen.thaw()
    poll(lambda: "'lease-lost'" in frozen.log_path.read_text(), what="the thawed worker to find its lease gone")
    assert service.status(execution_id)["output"] == successor_output
    assert successor.process.poll() is None


def test_every_message_published_three_times_runs_each_body_once(env, start_worker, log_dir, unique):
    silent = ZartService(env.settings(), publish=lambda _id: True, registry=Registry())
    prefix = unique("dup") + "-"
    journal = log_dir / "bodies.journal"
    start_worker(concurrency=2)
    start_worker(concurrency=2)
    ids = [f"{prefix}{i}" for i in range(30)]
    for execution_id in ids:
        silent.schedule("r.steps", {"journal": str(journal), "steps": 3, "gap": 0}, execution_id=execution_id)
    publisher = Publisher(create_celery_app(env.settings()))
    for _ in range(3):
        for execution_id in ids:
            assert publisher.publish(execution_id)
    for execution_id in ids:
        done, row = silent.wait(execution_id, 60)
        assert done and row["output"] == {"value": 3}
    result = audit(journal, silent.settings.database_url, prefix, kills=[])
    assert result.body_runs == result.distinct_steps == 90


def test_a_sweeper_frozen_inside_its_transaction_does_not_stop_sweeping(env, start_worker, log_dir, unique):
    """A process stopped while holding the sweep lock is cut off by Postgres, and sweeping carries on."""
    from sqlalchemy import text

    from zart.store import db, sweeps

    silent = ZartService(env.settings(), publish=lambda _id: True, registry=Registry())
    start_worker(concurrency=1)
    frozen = db.get_engine(silent.settings.database_url).connect()
    frozen.begin()
    assert sweeps.try_lock(frozen)  # now hold it, as a sweeper frozen mid-sweep would
    execution_id = unique("lost")
    silent.schedule("t.three-steps", {"journal": str(log_dir / "j")}, execution_id=execution_id)  # no message
    done, row = silent.wait(execution_id, 40)
    assert done and row["status"] == "completed"
    try:
        frozen.execute(text("SELECT 1"))
        raise AssertionError("the idle transaction holding the sweep lock was not terminated")
    except Exception as exc:
        assert "terminat" in str(exc) or "closed" in str(exc), exc
    finally:
        frozen.invalidate()
