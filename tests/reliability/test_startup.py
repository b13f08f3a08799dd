"""A worker that becomes ready while Postgres is unreachable (a host reboot, a failover during a deploy) still
records its tasks and runs its sweeper once Postgres is back."""

from __future__ import annotations

from pathlib import Path

from tests.harness import Environment, Worker, poll
from zart.dispatch import record_catalog
from zart.localservices import LocalPostgres, free_port
from zart.migrate import upgrade
from zart.registry import Registry
from zart.service import ZartService
from zart.store import db


def test_a_worker_started_while_postgres_is_down_sweeps_once_it_is_back(env, services_dir, tmp_path: Path, unique):
    tmp_path.chmod(0o777)
    postgres = LocalPostgres(services_dir / unique("pg-late"), free_port())
    postgres.start(fsync=False)
    private = Environment(postgres.url, env.broker_url, env.imports)
    upgrade(postgres.url)
    record_catalog(private.settings())  # so the test's own schedule below knows the task
    postgres.stop()
    worker = Worker(private, tmp_path, concurrency=1)
    try:
        worker.wait_ready(60)
        postgres.start(fsync=False)
        # no doorbell: only the sweeper's lost-message duty can start it
        silent = ZartService(private.settings(), publish=lambda _id: True, registry=Registry())
        execution_id = unique("no-doorbell")
        silent.schedule("r.steps", {"journal": str(tmp_path / "bodies.journal"), "steps": 1, "gap": 0},
                        execution_id=execution_id)
        poll(lambda: silent.status(execution_id)["status"] == "completed", 30, interval=0.5,
             what="the sweeper to start the execution")
        assert b"recorded this worker's tasks" in worker.log_path.read_bytes()
    finally:
        worker.stop()
        db.dispose_all()
        postgres.stop(mode="immediate")
