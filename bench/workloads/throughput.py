"""Throughput: executions of three trivial steps per second, scheduled by concurrent clients and run to
completion, beside DBOS (start_workflow threads and its Queue) and a plain Celery chain of three tasks.

Each figure is N / (last completion seen − first submission), after a short warm-up.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

import redis
from dbos import DBOS

from bench import celery_chain, dbos_app, workflows
from bench.context import BenchContext
from bench.measure import submit_all, wait_until
from bench.processes import celery_chain_worker, default_concurrency
from bench.readback import Readback
from bench.report import Row, per_second, times, verdict
from zart.service import ZartService

STEPS = 3
CLIENTS = 4
DBOS_DATABASE = "dbos_throughput"
TIMEOUT = 300.0


def _rate(count: int, run: Callable[[], None]) -> float:
    started = time.monotonic()
    run()
    return count / (time.monotonic() - started)


def zart_rate(ctx: BenchContext, count: int, warmup: int) -> float:
    service = ZartService(ctx.services.settings())

    def batch(n: int) -> None:
        ids = [f"tp-{uuid.uuid4().hex[:16]}" for _ in range(n)]
        submit_all(lambda i: service.schedule(workflows.STEPS, {"n": STEPS}, execution_id=i), ids, CLIENTS)
        readback.wait_finished(ids, TIMEOUT)
        failed = readback.failed(ids)
        assert not failed, f"{len(failed)} executions did not complete, e.g. {failed[0]}"

    with ctx.zart_worker(), Readback(ctx.services.libpq_url()) as readback:
        batch(warmup)
        return _rate(count, lambda: batch(count))


def dbos_rates(ctx: BenchContext, count: int, warmup: int) -> dict[str, float]:
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
            rates[name] = _rate(count, lambda start=start: batch(start, count))  # type: ignore[misc]
        return rates


def celery_rate(ctx: BenchContext, count: int, warmup: int) -> float:
    celery_chain.app.conf.broker_url = ctx.services.broker_url
    counter = redis.Redis.from_url(ctx.services.broker_url)

    def batch(n: int) -> None:
        key = f"bench:chain:{uuid.uuid4().hex}"
        submit_all(lambda i: celery_chain.send(i, key), range(n), CLIENTS)
        wait_until(lambda: int(counter.get(key) or 0) >= n, TIMEOUT, what=f"{n} Celery chains")

    with celery_chain_worker(ctx.services.broker_url, ctx.log_dir, default_concurrency()):
        batch(warmup)
        return _rate(count, lambda: batch(count))


def run(ctx: BenchContext) -> list[Row]:
    count, warmup = ctx.size(1000, 100), ctx.size(50, 10)
    zart = zart_rate(ctx, count, warmup)
    dbos = dbos_rates(ctx, count, warmup)
    chain = celery_rate(ctx, count, warmup)
    best_name, best = max(dbos.items(), key=lambda item: item[1])
    measure = f"executions/s ({count:,} × {STEPS} steps)"
    ctx.note(
        f"Throughput: {CLIENTS} client threads submit; zart and the Celery chain run in worker subprocesses with "
        f"Celery's default prefork concurrency ({default_concurrency()}); DBOS runs in-process "
        f"(Queue polling every {dbos_app.QUEUE_POLLING_SECONDS} s)."
    )
    rows = [
        Row("throughput", measure, per_second(zart), f"{name} {per_second(rate)}", times(zart / rate),
            "≥ 2× best DBOS" if name == best_name else "", verdict(zart >= 2 * best) if name == best_name else "")
        for name, rate in dbos.items()
    ]
    rows.append(
        Row("throughput", measure, per_second(zart), f"plain Celery chain {per_second(chain)}", times(zart / chain),
            "≥ 0.5×", verdict(zart >= 0.5 * chain))
    )
    return rows
