"""Remote steps: a team's own Celery task run as a durable step, beside the same task called the plain way.

Both sides use one `celery worker` of the team's app (bench.remote_fleet: the app plus zart's integration
line) at a default zart worker's concurrency, and the same trivial task.

- Round trip: a workflow of two remote steps in a row; the sample is the time between the two dispatches as
  zart recorded them (send → run → result in Postgres → workflow woken, claimed and replayed → next dispatch).
  The baseline is `echo.delay(i).get()` over the Redis result backend, one call at a time; the two sides'
  samples are taken in alternating blocks of ten.
- Throughput: executions of five remote steps each, scheduled by concurrent clients, against the same number
  of `echo.delay(i, key)` calls counted in Redis; tasks per second from first submission to last completion.
"""

from __future__ import annotations

import time
import uuid

import redis

from bench import remote_app, workflows
from bench.context import BenchContext
from bench.measure import Summary, submit_all, wait_until
from bench.processes import remote_fleet_worker
from bench.readback import Readback
from bench.report import Row, p50_p99, per_second, times, verdict
from zart.dispatch.worker import default_concurrency
from zart.service import ZartService

STEPS_PER_EXECUTION = 5
CLIENTS = 4
ROUND_TRIP_BLOCK = 10
TIMEOUT = 300.0


def _id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:16]}"


def zart_round_trips(service: ZartService, readback: Readback, samples: int) -> list[float]:
    values = []
    for _ in range(samples):
        execution_id = _id("remote-rt")
        service.schedule(workflows.REMOTE_STEPS, {"n": 2}, execution_id=execution_id)
        readback.wait_finished([execution_id], TIMEOUT, interval=0.005)
        first, second = readback.remote_dispatch_times(execution_id)
        values.append((second - first).total_seconds() * 1000)
    return values


def celery_round_trips(samples: int) -> list[float]:
    values = []
    for i in range(samples):
        started = time.perf_counter()
        assert remote_app.echo.delay(i).get(timeout=TIMEOUT) == i
        values.append((time.perf_counter() - started) * 1000)
    return values


def interleaved_round_trips(service: ZartService, readback: Readback, samples: int) -> tuple[list[float], list[float]]:
    """Both sides' round trips in alternating blocks of ten, so a change in the machine's load (it is shared)
    falls on both alike instead of on whichever side ran in that second."""
    zart: list[float] = []
    plain: list[float] = []
    while len(zart) < samples:
        block = min(ROUND_TRIP_BLOCK, samples - len(zart))
        zart += zart_round_trips(service, readback, block)
        plain += celery_round_trips(block)
    return zart, plain


def zart_throughput(service: ZartService, readback: Readback, executions: int) -> float:
    ids = [_id("remote-tp") for _ in range(executions)]
    started = time.monotonic()
    submit_all(
        lambda i: service.schedule(workflows.REMOTE_STEPS, {"n": STEPS_PER_EXECUTION}, execution_id=i), ids, CLIENTS
    )
    readback.wait_finished(ids, TIMEOUT)
    elapsed = time.monotonic() - started
    failed = readback.failed(ids)
    assert not failed, f"{len(failed)} executions did not complete, e.g. {failed[0]}"
    return executions * STEPS_PER_EXECUTION / elapsed


def celery_throughput(counter: redis.Redis, tasks: int) -> float:
    key = f"bench:remote:{uuid.uuid4().hex}"
    started = time.monotonic()
    submit_all(lambda i: remote_app.echo.delay(i, key), range(tasks), CLIENTS)
    wait_until(lambda: int(counter.get(key) or 0) >= tasks, TIMEOUT, what=f"{tasks} Celery tasks")
    return tasks / (time.monotonic() - started)


def run(ctx: BenchContext) -> list[Row]:
    samples, executions = ctx.size(100, 10), ctx.size(200, 20)
    broker = ctx.services.broker_url
    remote_app.app.conf.broker_url = broker
    remote_app.app.conf.result_backend = broker
    settings = ctx.services.settings()
    service = ZartService(settings)
    concurrency = default_concurrency()
    fleet_env = {"DATABASE_URL": settings.database_url, "ZART_BROKER_URL": broker, "BENCH_BROKER_URL": broker}
    with (
        ctx.zart_worker(),
        remote_fleet_worker(fleet_env, ctx.log_dir, concurrency),
        Readback(ctx.services.libpq_url()) as readback,
    ):
        zart_round_trips(service, readback, max(3, samples // 10))  # warm-up
        celery_round_trips(max(3, samples // 10))
        zart_samples, plain_samples = interleaved_round_trips(service, readback, samples)
        zart_rt, plain_rt = Summary.of(zart_samples), Summary.of(plain_samples)
        counter = redis.Redis.from_url(broker)
        zart_throughput(service, readback, max(2, executions // 10))
        celery_throughput(counter, max(10, executions // 2))
        zart_rate = zart_throughput(service, readback, executions)
        plain_rate = celery_throughput(counter, executions * STEPS_PER_EXECUTION)
    ctx.note(
        "Remote steps: one `celery -A bench.remote_fleet worker` (the team's app plus `zart.celery.integrate(app)`) "
        f"at concurrency {concurrency} runs the task for both sides, beside a default `zart worker`. The round trip "
        "is the time between two consecutive dispatches of one workflow; `.delay().get()` uses the Redis result "
        "backend; the two sides' samples alternate in blocks of ten. Throughput schedules executions of five "
        f"remote steps from {CLIENTS} clients against the same number of `.delay()` calls counted in Redis."
    )
    return [
        Row("remote", f"remote step round trip ({samples} samples)", p50_p99(zart_rt.p50, zart_rt.p99),
            f".delay().get() {p50_p99(plain_rt.p50, plain_rt.p99)}", times(zart_rt.p50 / plain_rt.p50),
            "p50 ≤ 1.5×", verdict(zart_rt.p50 <= 1.5 * plain_rt.p50)),
        Row("remote", f"remote steps/s ({executions} × {STEPS_PER_EXECUTION})", per_second(zart_rate),
            f"plain Celery tasks {per_second(plain_rate)}", times(zart_rate / plain_rate), "≥ 0.7×",
            verdict(zart_rate >= 0.7 * plain_rate)),
    ]
