"""Throughput: executions of three trivial steps per second, scheduled by concurrent clients and run to
completion, beside DBOS (start_workflow threads and its Queue) and a plain Celery chain of three tasks.

Each rate is N / (last completion seen − first submission), after a short warm-up. Beside it, the CPU the
whole footprint (clients, workers, Postgres, Redis) spent per execution, which neighbours disturb less.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import redis
from dbos import DBOS

from bench import celery_chain, dbos_app, workflows
from bench.context import BenchContext
from bench.cpu import CpuMeter
from bench.measure import submit_all, wait_until
from bench.processes import celery_chain_worker
from bench.readback import Readback
from bench.report import Row, ms, per_second, times, verdict
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


def _measure(ctx: BenchContext, count: int, run: Callable[[], None], settle: Callable[[], None] | None = None) -> Rate:
    """The rate of `run`; its CPU also counts what `settle` waits for (work the batch left behind)."""
    with CpuMeter(ctx.services.postgres.data_dir) as meter:
        started = time.monotonic()
        run()
        elapsed = time.monotonic() - started
        if settle is not None:
            settle()
    return Rate(count / elapsed, meter.seconds * 1000 / count)


def doorbells_settled(ctx: BenchContext) -> Callable[[], None]:
    """Waits until the broker holds no doorbell, queued or in a worker's hands: the doorbells of executions a
    worker took straight from Postgres arrive after them, and their cost belongs to the batch."""
    client = redis.Redis.from_url(ctx.services.broker_url)
    queue = ctx.services.settings().queue

    def settled() -> None:
        wait_until(lambda: not client.llen(queue) and not client.hlen("unacked"), TIMEOUT, 0.02, "doorbells")
        time.sleep(0.2)  # the last ones' no-op claims

    return settled


def schedule_and_finish(service: ZartService, readback: Readback, count: int, prefix: str) -> None:
    """Schedule `count` three-step executions from concurrent clients and wait until all completed."""
    ids = [f"{prefix}-{uuid.uuid4().hex[:16]}" for _ in range(count)]
    submit_all(lambda i: service.schedule(workflows.STEPS, {"n": STEPS}, execution_id=i), ids, CLIENTS)
    readback.wait_finished(ids, TIMEOUT)
    failed = readback.failed(ids)
    assert not failed, f"{len(failed)} executions did not complete, e.g. {failed[0]}"


def zart_rate(ctx: BenchContext, count: int, warmup: int, concurrency: int | None = None) -> Rate:
    service = ZartService(ctx.services.settings())
    with ctx.zart_worker(concurrency=concurrency), Readback(ctx.services.libpq_url()) as readback:
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
    counter = redis.Redis.from_url(ctx.services.broker_url)

    def batch(n: int) -> None:
        key = f"bench:chain:{uuid.uuid4().hex}"
        submit_all(lambda i: celery_chain.send(i, key), range(n), CLIENTS)
        wait_until(lambda: int(counter.get(key) or 0) >= n, TIMEOUT, what=f"{n} Celery chains")

    with celery_chain_worker(ctx.services.broker_url, ctx.log_dir, default_concurrency()):
        batch(warmup)
        return _measure(ctx, count, lambda: batch(count))


def run(ctx: BenchContext) -> list[Row]:
    count, warmup = ctx.size(1000, 100), ctx.size(50, 10)
    zart = zart_rate(ctx, count, warmup)
    baselines = {**dbos_rates(ctx, count, warmup), "plain Celery chain": celery_rate(ctx, count, warmup)}
    best_dbos = max((name for name in baselines if name.startswith("DBOS")), key=lambda n: baselines[n].per_second)
    targets = {best_dbos: ("≥ 2× best DBOS", 2.0), "plain Celery chain": ("≥ 0.5×", 0.5)}
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
        rows.append(
            Row("throughput", "CPU per execution (all processes)", ms(zart.cpu_ms), f"{name} {ms(rate.cpu_ms)}",
                f"{times(rate.cpu_ms / zart.cpu_ms)} lower")
        )
    ctx.note(
        f"Throughput: {CLIENTS} client threads submit; zart and the Celery chain run in worker subprocesses with the "
        f"same prefork concurrency, a default zart worker's ({default_concurrency()}: two per core); DBOS runs "
        f"in-process (Queue polling every {dbos_app.QUEUE_POLLING_SECONDS} s). CPU per execution sums user+system "
        "time of this process, its descendants (workers, Redis) and the Postgres server over the measured batch."
    )
    return rows
