"""Fleet: many single-slot `zart worker` processes (one per simulated host) through PgBouncer in transaction
mode with 20 server connections, against the same work on 4 workers straight to Postgres.

Reported: executions/s of each and their ratio, steps/s and commits/s (pg_stat_database) of the fleet, the
most client connections Postgres itself saw during each run, and a run in which one fleet member is
SIGKILLed midway (every execution still completes).

On one 2-core machine, 24 workers (a main and a pool process each) share the cores that 4 had to themselves,
so some loss is the simulation's, not zart's. The baseline says how much: the plain Celery chain of the same
three steps on the same two fleet shapes. "Does not collapse" is then zart keeping at least 90% of the ratio
Celery itself keeps.
"""

from __future__ import annotations

import os
import signal
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, ExitStack, contextmanager
from dataclasses import dataclass

import psycopg

from bench import celery_chain, workflows
from bench.context import BenchContext
from bench.measure import submit_all
from bench.processes import WorkerProcess, celery_chain_worker, zart_worker
from bench.readback import Readback
from bench.report import Row, per_second, verdict
from zart.config import Settings, mark_pooled
from zart.localservices import LocalPgBouncer, free_port
from zart.service import ZartService
from zart.store import db
from zart.store.connections import PeakBackends

DATABASE = "zart_fleet"
POOL = 20
BASELINE_WORKERS = 4
CLIENTS = 4
STEPS = 3
TIMEOUT = 600.0
LEASE_SECONDS = "10"
STANDBY_SECONDS = "2"  # the second fleet row: running workers stand by for new executions
RATIO_SHARE = 0.9  # "does not collapse": zart's fleet keeps at least this share of plain Celery's fleet ratio


@contextmanager
def ready(started: list[WorkerProcess]) -> Iterator[list[WorkerProcess]]:
    """Workers started together, all ready before the block and all stopped after it."""
    with ExitStack() as stack:
        for worker in started:
            stack.callback(worker.stop)
        for worker in started:
            worker.wait_ready(timeout=300)
        yield started


def workers(
    ctx: BenchContext, count: int, url: str, env: Mapping[str, str]
) -> AbstractContextManager[list[WorkerProcess]]:
    """`count` single-slot `zart worker` processes."""
    broker = ctx.services.broker_url
    return ready([zart_worker(url, broker, ctx.log_dir, f"fleet-{count}-{n}", 1, env) for n in range(count)])


def celery_fleet_rate(ctx: BenchContext, size: int, count: int, warmup: int) -> float:
    """Chains/s of `count` plain Celery chains on `size` single-slot `celery worker` processes."""
    broker = ctx.services.broker_url
    celery_chain.app.conf.broker_url = broker
    with ready([celery_chain_worker(broker, ctx.log_dir, 1, f"chain-{size}-{n}") for n in range(size)]):
        celery_chain.run_batch(warmup, CLIENTS, TIMEOUT)
        started = time.monotonic()
        celery_chain.run_batch(count, CLIENTS, TIMEOUT)
        return count / (time.monotonic() - started)


def commits(libpq_url: str) -> int:
    with psycopg.connect(libpq_url, autocommit=True) as conn:
        row = conn.execute("SELECT xact_commit FROM pg_stat_database WHERE datname = %s", (DATABASE,)).fetchone()
        return int(row[0]) if row else 0


def run_batch(service: ZartService, readback: Readback, count: int, on_half: object = None) -> float:
    """Schedule `count` three-step executions from concurrent clients; seconds until all completed."""
    ids = [f"fleet-{uuid.uuid4().hex[:16]}" for _ in range(count)]
    started = time.monotonic()
    submit_all(lambda i: service.schedule(workflows.STEPS, {"n": STEPS}, execution_id=i), ids, CLIENTS)
    if callable(on_half):
        while readback.finished_count(ids) < count // 2:
            time.sleep(0.05)
        on_half()
    readback.wait_finished(ids, TIMEOUT)
    elapsed = time.monotonic() - started
    failed = readback.failed(ids)
    assert not failed, f"{len(failed)} executions did not complete, e.g. {failed[0]}"
    return elapsed


def run(ctx: BenchContext) -> list[Row]:
    fleet_size = ctx.size(int(os.environ.get("ZART_BENCH_FLEET", "24")), 8)
    count, warmup = ctx.size(600, 100), ctx.size(40, 10)
    services = ctx.services
    direct = services.zart_database(DATABASE)
    bouncer = LocalPgBouncer(ctx.log_dir / "pgbouncer", free_port(), services.postgres, pool_size=POOL)
    bouncer.start()
    env = {"ZART_LEASE_SECONDS": LEASE_SECONDS, "ZART_QUEUE": "fleet"}
    pooled = mark_pooled(bouncer.url.rsplit("/", 1)[0] + f"/{DATABASE}")
    pooled_env = {**env, "ZART_POOLER": "transaction", "ZART_DIRECT_DATABASE_URL": direct}
    direct_settings = Settings(database_url=direct, broker_url=services.broker_url, queue="fleet")
    pooled_settings = Settings(
        database_url=pooled,
        broker_url=services.broker_url,
        queue="fleet",
        pooler="transaction",
        direct_database_url=direct,
    )
    try:
        with Readback(services.libpq_url(DATABASE)) as readback:
            base = measure(ctx, BASELINE_WORKERS, direct, env, direct_settings, readback, count, warmup)
            celery_base = celery_fleet_rate(ctx, BASELINE_WORKERS, count, warmup)
            fleet = measure(ctx, fleet_size, pooled, pooled_env, pooled_settings, readback, count, warmup, kill=True)
            celery_fleet = celery_fleet_rate(ctx, fleet_size, count, warmup)
            tuned_env = {**pooled_env, "ZART_STANDBY_SECONDS": STANDBY_SECONDS}
            tuned = measure(ctx, fleet_size, pooled, tuned_env, pooled_settings, readback, count, warmup)
    finally:
        bouncer.stop()
    ctx.note(
        f"Fleet: {fleet_size} `zart worker` processes of concurrency 1 through PgBouncer (transaction mode, pool "
        f"{POOL}) against {BASELINE_WORKERS} of concurrency 1 straight to Postgres; {count} three-step executions "
        f"from {CLIENTS} client threads, on the same 2-core machine as Postgres. Connections are Postgres's own "
        "count of client backends on the database (pg_stat_activity, sampled every 50 ms), including the "
        "benchmark's one direct read-back connection. Commits/s from pg_stat_database. The second fleet row turns "
        f"standbys on (ZART_STANDBY_SECONDS={STANDBY_SECONDS}, off by default): running workers take new executions "
        "without their doorbells. The baseline runs the plain Celery chain of the same three steps (no result "
        f"backend) on {BASELINE_WORKERS} and on {fleet_size} single-slot `celery worker` processes, started with the "
        "flags `zart worker` gives Celery (no mingle, no gossip); the fleet rows pass when zart keeps at least "
        f"{RATIO_SHARE:.0%} of the ratio Celery itself keeps between the two shapes."
    )
    name = "fleet"
    celery_ratio = celery_fleet / celery_base
    rows = [
        Row(
            name,
            f"plain Celery chain, {fleet_size} workers x1, chains/s",
            per_second(celery_fleet),
            f"{per_second(celery_base)} on {BASELINE_WORKERS} workers",
            f"{celery_ratio:.2f}x",
        )
    ]
    for label, result in (
        (f"{fleet_size} workers x1 via PgBouncer", fleet),
        (f"same, ZART_STANDBY_SECONDS={STANDBY_SECONDS}", tuned),
    ):
        ratio = result.rate / base.rate
        rows += [
            Row(
                name,
                f"{label}, executions/s",
                per_second(result.rate),
                f"{per_second(base.rate)} on {BASELINE_WORKERS} workers",
                f"{ratio:.2f}x",
                f">= {RATIO_SHARE:.1f} × Celery's {celery_ratio:.2f}x",
                verdict(ratio >= RATIO_SHARE * celery_ratio),
            ),
            Row(
                name,
                f"{label}, steps/s · commits/s",
                f"{per_second(result.rate * STEPS)} · {result.commits:,.0f}/s",
                f"{per_second(base.rate * STEPS)} · {base.commits:,.0f}/s",
            ),
            Row(
                name,
                f"{label}, most client connections Postgres saw",
                str(result.peak),
                f"{base.peak} with {BASELINE_WORKERS} direct workers",
                "",
                f"<= {POOL} + 1 read-back",
                verdict(result.peak <= POOL + 1),
            ),
        ]
    rows.append(
        Row(
            name,
            f"one of {fleet_size} SIGKILLed midway: {count // 2} executions",
            f"all completed in {fleet.killed:.1f} s",
            "",
            "",
            f"lease {LEASE_SECONDS} s",
            verdict(True),
        )
    )
    return rows


@dataclass(frozen=True)
class FleetResult:
    rate: float
    commits: float
    peak: int
    killed: float = 0.0


def measure(
    ctx: BenchContext,
    size: int,
    url: str,
    env: Mapping[str, str],
    settings: Settings,
    readback: Readback,
    count: int,
    warmup: int,
    kill: bool = False,
) -> FleetResult:
    """One fleet of `size` workers: its rate and commits/s on `count` executions, the most connections Postgres
    saw; with `kill`, then a batch during which one member is SIGKILLed."""
    db.dispose_all()  # the benchmark's own pooled connections from an earlier fleet are not this one's
    service = ZartService(settings)
    watch = ctx.services.libpq_url("postgres")
    with workers(ctx, size, url, env) as fleet, PeakBackends(watch, DATABASE) as peak:
        run_batch(service, readback, warmup)
        before = commits(watch)
        seconds = run_batch(service, readback, count)
        committed = (commits(watch) - before) / seconds
        killed = 0.0
        if kill:
            victim = fleet[0]
            killed = run_batch(service, readback, count // 2, lambda: os.killpg(victim.process.pid, signal.SIGKILL))
    db.dispose_all()
    return FleetResult(count / seconds, committed, peak.peak, killed)
