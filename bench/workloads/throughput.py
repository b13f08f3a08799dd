"""Throughput: executions of three trivial steps per second, scheduled by concurrent clients and run to
completion, beside DBOS (start_workflow threads and its Queue) and a plain Celery chain of three tasks.

Each rate is N / (last completion seen − first submission), after a short warm-up. Beside it, the CPU the
whole footprint (clients, workers, Postgres, Redis) spent per execution, which neighbours disturb less.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import psycopg
import redis
from dbos import DBOS

from bench import backlog as backlog_mod
from bench import bulk, celery_chain, dbos_app, workflows
from bench.context import BenchContext
from bench.cpu import CpuMeter
from bench.measure import submit_all, wait_until
from bench.processes import celery_chain_worker, zart_worker
from bench.readback import Readback
from bench.report import Row, ms, per_second, times, verdict
from bench.services import ZART_DATABASE
from zart.dispatch.worker import default_concurrency
from zart.service import ZartService

STEPS = 3
CLIENTS = 4
DBOS_DATABASE = "dbos_throughput"
TIMEOUT = 300.0
WIDER_CONCURRENCY = 8  # a step mostly waits for its commit: more processes than CPUs keep the disk busy


@dataclass(frozen=True)
class Rate:
    per_second: float
    cpu_ms: float  # per execution, whole footprint
    commits: float = 0.0  # Postgres write transactions per execution (the sweeper's included)


def transaction_ids(libpq_url: str) -> int:
    """The server's next transaction id. Only a transaction that writes takes one, so the difference over a
    batch counts the commits that reach the disk (the physical limit's kind), not the read-only transactions
    (the benchmark's own polling, the looks that find nothing) that `pg_stat_database.xact_commit` also counts.
    This call takes one itself."""
    with psycopg.connect(libpq_url, autocommit=True) as conn:
        return int(str(conn.execute("SELECT pg_current_xact_id()").fetchone()[0]))  # type: ignore[index]


def _measure(ctx: BenchContext, count: int, run: Callable[[], None], settle: Callable[[], None] | None = None) -> Rate:
    """The rate of `run`; its CPU also counts what `settle` waits for (work the batch left behind)."""
    url = ctx.services.libpq_url()
    first_id = transaction_ids(url)
    with CpuMeter(ctx.services.postgres.data_dir) as meter:
        started = time.monotonic()
        run()
        elapsed = time.monotonic() - started
        if settle is not None:
            settle()
    writes = transaction_ids(url) - first_id - 1  # the first call's own
    return Rate(count / elapsed, meter.seconds * 1000 / count, writes / count)


def doorbells_settled(ctx: BenchContext) -> Callable[[], None]:
    """Waits until the broker holds no doorbell, queued or in a worker's hands: the doorbells of executions a
    worker took straight from Postgres arrive after them, and their cost belongs to the batch."""
    client = redis.Redis.from_url(ctx.services.broker_url)
    queue = ctx.services.settings().queue

    def in_hand() -> int:
        """Deliveries of this queue a worker holds unacknowledged (another workload's, e.g. of a worker it
        SIGKILLed, stay in the hash until their visibility timeout and are not this batch's)."""
        return sum(1 for raw in client.hvals("unacked") if json.loads(raw)[2] == queue)

    def settled() -> None:
        wait_until(lambda: not client.llen(queue) and not in_hand(), TIMEOUT, 0.02, "doorbells")
        time.sleep(0.2)  # the last ones' no-op claims

    return settled


def schedule_and_finish(service: ZartService, readback: Readback, count: int, prefix: str) -> None:
    """Schedule `count` three-step executions from concurrent clients and wait until all completed."""
    ids = [f"{prefix}-{uuid.uuid4().hex[:16]}" for _ in range(count)]
    submit_all(lambda i: service.schedule(workflows.STEPS, {"n": STEPS}, execution_id=i), ids, CLIENTS)
    readback.wait_finished(ids, TIMEOUT)
    failed = readback.failed(ids)
    assert not failed, f"{len(failed)} executions did not complete, e.g. {failed[0]}"


def zart_rate(
    ctx: BenchContext, count: int, warmup: int, concurrency: int | None = None, database: str = ZART_DATABASE
) -> Rate:
    service = ZartService(ctx.services.settings(database))
    worker = zart_worker(
        ctx.services.sqlalchemy_url(database), ctx.services.broker_url, ctx.log_dir, f"zart-{database}", concurrency
    )
    with worker, Readback(ctx.services.libpq_url(database)) as readback:
        schedule_and_finish(service, readback, warmup, "tp")
        settle = doorbells_settled(ctx)
        settle()
        return _measure(ctx, count, lambda: schedule_and_finish(service, readback, count, "tp"), settle)


def dbos_rates(ctx: BenchContext, count: int, warmup: int) -> dict[str, Rate]:
    """Both ways DBOS runs workflows: started directly on threads, and enqueued on a DBOS Queue."""
    url = ctx.services.database(DBOS_DATABASE)
    with dbos_app.running_dbos(url) as queue:
        modes: dict[str, Callable[[Any], Any]] = {
            "DBOS start_workflow": lambda _: DBOS.start_workflow(dbos_app.steps, STEPS),
            "DBOS Queue": lambda _: queue.enqueue(dbos_app.steps, STEPS),
        }

        def batch(start: Callable[[Any], Any], n: int) -> None:
            for handle in submit_all(start, range(n), CLIENTS):
                handle.get_result()

        rates = {}
        for name, start in modes.items():
            batch(start, warmup)
            rates[name] = _measure(ctx, count, lambda start=start: batch(start, count))  # type: ignore[misc]
        return rates


def celery_rate(ctx: BenchContext, count: int, warmup: int) -> Rate:
    celery_chain.app.conf.broker_url = ctx.services.broker_url

    def batch(n: int) -> None:
        celery_chain.run_batch(n, CLIENTS, TIMEOUT)

    with celery_chain_worker(ctx.services.broker_url, ctx.log_dir, default_concurrency()):
        batch(warmup)
        return _measure(ctx, count, lambda: batch(count))


def run(ctx: BenchContext) -> list[Row]:
    count, warmup = ctx.size(1000, 100), ctx.size(50, 10)
    zart = zart_rate(ctx, count, warmup)
    limit = physical_limit(ctx, zart)
    baselines = {**dbos_rates(ctx, count, warmup), "plain Celery chain": celery_rate(ctx, count, warmup)}
    best_dbos = max((name for name in baselines if name.startswith("DBOS")), key=lambda n: baselines[n].per_second)
    targets = {best_dbos: ("≥ 2× best DBOS", 2.0), "plain Celery chain": ("≥ 2×", 2.0)}
    measure = f"executions/s ({count:,} × {STEPS} steps)"
    rows = []
    for name, rate in baselines.items():
        target, factor = targets.get(name, ("", 0.0))
        rows.append(
            Row("throughput", measure, per_second(zart.per_second), f"{name} {per_second(rate.per_second)}",
                times(zart.per_second / rate.per_second), target,
                verdict(zart.per_second >= factor * rate.per_second) if target else "")
        )
    wider = zart_rate(ctx, count, warmup, WIDER_CONCURRENCY)
    rows.append(
        Row("throughput", f"{measure}, `zart worker --concurrency {WIDER_CONCURRENCY}`", per_second(wider.per_second),
            f"default zart worker {per_second(zart.per_second)}", times(wider.per_second / zart.per_second))
    )
    for name, rate in baselines.items():
        chain = name == "plain Celery chain"
        rows.append(
            Row("throughput", "CPU per execution (all processes)", ms(zart.cpu_ms), f"{name} {ms(rate.cpu_ms)}",
                f"{times(zart.cpu_ms / rate.cpu_ms)}", "≤ 0.5×" if chain else "",
                verdict(zart.cpu_ms <= 0.5 * rate.cpu_ms) if chain else "")
        )
    rows.append(limit)
    rows += sustained_rows(ctx, zart.per_second)
    rows.append(million_rows_row(ctx, count, warmup))
    ctx.note(
        f"Throughput: {CLIENTS} client threads submit; zart and the Celery chain run in worker subprocesses with the "
        f"same prefork concurrency, a default zart worker's ({default_concurrency()}: two per core); DBOS runs "
        f"in-process (Queue polling every {dbos_app.QUEUE_POLLING_SECONDS} s). CPU per execution sums user+system "
        "time of this process, its descendants (workers, Redis) and the Postgres server over the measured batch, "
        "until the broker holds no doorbell (those of executions a worker took itself arrive after them); the "
        "benchmark's own completion polling reads only the last few unfinished ids."
    )
    return rows


def physical_limit(ctx: BenchContext, zart: Rate) -> Row:
    """zart's rate against what the disk allows: commits/s from 8 connections ÷ the commits one execution costs."""
    from bench.workloads.physical import DATABASE, commits_per_second

    eight = commits_per_second(ctx.services.database(DATABASE), 8, ctx.size(3.0, 1.0))
    ceiling = eight / zart.commits
    share = zart.per_second / ceiling
    return Row(
        "throughput", "share of the physical limit", f"{share:.0%} ({per_second(zart.per_second)})",
        f"limit {per_second(ceiling)} = {per_second(eight)} INSERT+COMMIT from 8 connections "
        f"÷ {zart.commits:.2f} write commits per execution",
        f"{share:.2f}", "≥ 30%", verdict(share >= 0.3),
    )


SUSTAINED_DATABASE = "zart_sustained"
BACKLOG = 10_000


def sustained_rows(ctx: BenchContext, rate: float) -> list[Row]:
    """60 s of executions offered at 1.25× the measured rate on top of a 10,000-deep backlog, in a database of
    its own (whatever is left over stays there, and its doorbells are dropped)."""
    seconds, backlog = ctx.size(60.0, 20.0), ctx.size(BACKLOG, 1000)
    ctx.services.zart_database(SUSTAINED_DATABASE)
    service = ZartService(ctx.services.settings(SUSTAINED_DATABASE))
    backlog_mod.fill(service, backlog, "backlog-", CLIENTS, STEPS)
    worker = zart_worker(
        ctx.services.sqlalchemy_url(SUSTAINED_DATABASE), ctx.services.broker_url, ctx.log_dir, "zart-sustained"
    )
    try:
        with worker:
            run = backlog_mod.sustain(
                service, ctx.services.libpq_url(SUSTAINED_DATABASE), worker, "backlog-", seconds, 1.25 * rate, STEPS,
                CLIENTS,
            )
    finally:
        redis.Redis.from_url(ctx.services.broker_url).delete(ctx.services.settings().queue)
    decay = run.last / run.first if run.first else 0.0
    growth = (run.rss_end - run.rss_start) / 2**20
    windows = " · ".join(f"{x:.0f}" for x in run.per_window)
    ctx.note(
        f"Sustained: {backlog:,} executions scheduled before a default worker starts, then {1.25 * rate:.0f}/s "
        f"offered (1.25× the measured rate) from {CLIENTS} client threads for {seconds:.0f} s "
        f"({run.offered_per_second:.0f}/s achieved); completions counted per 10 s window from "
        f"`completed_at`: {windows}/s; {run.backlog_end:,} still pending at the end. Worker RSS (main process and "
        "pool children) 5 s into the run and at its end."
    )
    return [
        Row("throughput", f"sustained {seconds:.0f} s over a {backlog:,} backlog: last 10 s vs first 10 s",
            f"{run.last:.0f}/s", f"first 10 s {run.first:.0f}/s", times(decay), "within 10%, backlog kept",
            verdict(abs(decay - 1) <= 0.10 and run.backlog_end > 0)),
        Row("throughput", f"sustained {seconds:.0f} s: worker RSS end vs start", f"{run.rss_end / 2**20:.0f} MiB",
            f"start {run.rss_start / 2**20:.0f} MiB", f"{growth:+.0f} MiB", "no growth (≤ +5 MiB)",
            verdict(growth <= 5)),
    ]


MILLION_DATABASE = "zart_million"


def million_rows_row(ctx: BenchContext, count: int, warmup: int) -> Row:
    """The same batch against an empty database, then against one holding a million finished executions."""
    total = ctx.size(1_000_000, 50_000)
    ctx.services.zart_database(MILLION_DATABASE)
    empty = zart_rate(ctx, count, warmup, database=MILLION_DATABASE)
    bulk.generate(ctx.services.libpq_url(MILLION_DATABASE), total, lambda line: print(f"  {line}", flush=True))
    # the load wrote a gigabyte of WAL: flush it now, or the checkpoint it triggers competes with the batch's fsyncs
    with psycopg.connect(ctx.services.libpq_url(MILLION_DATABASE), autocommit=True) as conn:
        conn.execute("CHECKPOINT")
    loaded = zart_rate(ctx, count, warmup, database=MILLION_DATABASE)
    ratio = loaded.per_second / empty.per_second
    return Row("throughput", f"{measure_name(count)} @ {total:,} executions in the tables",
               per_second(loaded.per_second), f"same database empty {per_second(empty.per_second)}", times(ratio),
               "within 10%", verdict(ratio >= 0.9))


def measure_name(count: int) -> str:
    return f"executions/s ({count:,} × {STEPS} steps)"
