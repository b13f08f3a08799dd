"""Many small hosts on one Postgres: a fleet of `zart worker` processes (concurrency 1 each) through PgBouncer
in transaction mode with a pool of 20. Every execution completes, Postgres never sees more client connections
than the pooler's pool, and a worker SIGKILLed mid-step is recovered as usual.

ZART_FLEET_WORKERS sizes the fleet (12 here, 24 in `make reliability`)."""

from __future__ import annotations

import os
import time
from pathlib import Path

from sqlalchemy import text

from tests.conftest import PGBOUNCER_POOL_SIZE
from tests.harness import Environment, Worker, fresh_database, poll, stop_together
from tests.workflows import entries
from zart.config import mark_pooled
from zart.localservices import LocalPgBouncer, LocalPostgres, LocalRedis
from zart.migrate import upgrade
from zart.registry import Registry
from zart.service import ZartService
from zart.store import db
from zart.store.connections import PeakBackends
from zart.store.sql import one

FLEET_WORKERS = int(os.environ.get("ZART_FLEET_WORKERS", "12"))
EXECUTIONS_PER_WORKER = 8
DATABASE = "fleet"


def test_a_fleet_through_pgbouncer_completes_everything_within_the_pool_and_recovers_a_sigkill(
    postgres: LocalPostgres, redis_server: LocalRedis, pgbouncer: LocalPgBouncer, log_dir: Path
) -> None:
    direct = fresh_database(postgres.port, DATABASE)
    upgrade(direct)
    db.dispose_all()  # the migration's connections are gone before counting starts
    pooled = mark_pooled(f"postgresql+psycopg://postgres@127.0.0.1:{pgbouncer.port}/{DATABASE}")
    env = Environment(
        database_url=pooled,
        broker_url=redis_server.url,
        extra={"ZART_POOLER": "transaction", "ZART_DIRECT_DATABASE_URL": direct, "ZART_QUEUE": "fleet"},
    )
    watch_url = f"postgresql://postgres@127.0.0.1:{postgres.port}/postgres"
    with PeakBackends(watch_url, DATABASE) as peak:
        workers = [Worker(env, log_dir, concurrency=1, args=("--no-restart",)) for _ in range(FLEET_WORKERS)]
        try:
            for worker in workers:
                worker.wait_ready(timeout=180)
            assert "to the transaction pooler" in workers[0].log_path.read_text()  # the budget line
            service = ZartService(env.settings(), registry=Registry())
            release = log_dir / "release"
            blocked_journal = str(log_dir / "blocked.journal")
            blocked = service.schedule("t.blocking", {"journal": blocked_journal, "release": str(release)})
            blocked_id = blocked.execution["execution_id"]
            journals = [str(log_dir / f"e{n}.journal") for n in range(FLEET_WORKERS * EXECUTIONS_PER_WORKER)]
            ids = [service.schedule("t.three-steps", {"journal": j}).execution["execution_id"] for j in journals]

            poll(lambda: service.status(blocked_id)["current_step"] == "b", 60, what="the blocking step to run")
            holder = _worker_running(service, blocked_id, workers)
            holder.kill()
            release.touch()

            def all_completed() -> bool:
                with db.autocommit(pooled) as conn:
                    row = one(conn, _COMPLETED, ids=[*ids, blocked_id])
                return bool(row and row["n"] == len(ids) + 1)

            started = time.monotonic()
            poll(all_completed, 120, interval=0.2, what="every execution of the fleet to complete")
            assert time.monotonic() - started < 120
        finally:
            stop_together(workers)
    assert service.status(blocked_id)["output"] == {"out": "ABC"}
    assert entries(blocked_journal, "b") == 2  # the killed attempt and its one re-run
    assert all([entries(j, s) for s in "abc"] == [1, 1, 1] for j in journals)
    assert peak.samples > 10
    # the pooler's server connections are all Postgres saw: the workers open none of their own
    assert 1 <= peak.peak <= PGBOUNCER_POOL_SIZE, peak.peak


_COMPLETED = text("SELECT count(*) AS n FROM executions WHERE id = ANY(:ids) AND status = 'completed'")
_LEASED_BY = text("SELECT leased_by FROM executions WHERE id = :id")


def _worker_running(service: ZartService, execution_id: str, workers: list[Worker]) -> Worker:
    """The fleet member whose pool child holds the execution's lease (leased_by is host:pid)."""
    leased_by = service.status(execution_id).get("leased_by") or _leased_by(service, execution_id)
    pid = int(str(leased_by).rsplit(":", 1)[1])
    group = os.getpgid(pid)
    return next(w for w in workers if w.process.pid == group)


def _leased_by(service: ZartService, execution_id: str) -> str:
    with db.autocommit(service.settings.database_url) as conn:
        row = one(conn, _LEASED_BY, id=execution_id)
    return str(row["leased_by"]) if row else ""
