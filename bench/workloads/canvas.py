"""Celery canvases: a 100-task chord and a 50-task chain through `zart.canvas`, beside the same canvas on plain
Celery with a Redis result backend (`apply_async().get()`, chord joined by Celery's Redis chord counter).

Both sides use one `celery worker` of the team's app (bench.remote_fleet) and the same trivial tasks; the
figure is the wall time from submission to the final result, median of a few runs.
"""

from __future__ import annotations

import statistics
import time
import uuid
from collections.abc import Callable
from typing import Any

from celery import chain, chord

from bench import remote_app
from bench.context import BenchContext
from bench.processes import remote_fleet_worker
from bench.readback import Readback
from bench.report import Row, times, verdict
from zart.canvas.build import canvas_input
from zart.celery.canvas import CANVAS_TASK
from zart.dispatch.worker import default_concurrency
from zart.service import ZartService

TIMEOUT = 300.0


def chord_of(size: int) -> Any:
    return chord([remote_app.echo.s(i) for i in range(size)], remote_app.total.s())


def chain_of(size: int) -> Any:
    return chain(remote_app.echo.s(0), *[remote_app.inc.s() for _ in range(size - 1)])


def zart_seconds(service: ZartService, readback: Readback, canvas: Any, expected: Any) -> float:
    execution_id = f"canvas-{uuid.uuid4().hex[:16]}"
    started = time.monotonic()
    service.schedule(CANVAS_TASK, canvas_input(canvas), execution_id=execution_id)
    readback.wait_finished([execution_id], TIMEOUT, interval=0.005)
    elapsed = time.monotonic() - started
    output = service.status(execution_id)["output"]
    assert output == expected, f"{execution_id}: {output!r} != {expected!r}"
    return elapsed


def celery_seconds(canvas: Any, expected: Any) -> float:
    started = time.monotonic()
    output = canvas.apply_async().get(timeout=TIMEOUT)
    elapsed = time.monotonic() - started
    assert output == expected, f"plain Celery: {output!r} != {expected!r}"
    return elapsed


def median(measure: Callable[[], float], runs: int) -> float:
    return statistics.median(measure() for _ in range(runs))


def run(ctx: BenchContext) -> list[Row]:
    chord_size, chain_size, runs = ctx.size(100, 20), ctx.size(50, 10), ctx.size(5, 1)
    broker = ctx.services.broker_url
    remote_app.app.conf.broker_url = broker
    remote_app.app.conf.result_backend = broker
    settings = ctx.services.settings()
    service = ZartService(settings)
    concurrency = default_concurrency()
    fleet_env = {"DATABASE_URL": settings.database_url, "ZART_BROKER_URL": broker, "BENCH_BROKER_URL": broker}
    chord_sum, chain_end = sum(range(chord_size)), chain_size - 1
    with (
        ctx.zart_worker(),
        remote_fleet_worker(fleet_env, ctx.log_dir, concurrency),
        Readback(ctx.services.libpq_url()) as readback,
    ):
        zart_seconds(service, readback, chain_of(3), 2)  # warm-up
        celery_seconds(chain_of(3), 2)
        zart_chord = median(lambda: zart_seconds(service, readback, chord_of(chord_size), chord_sum), runs)
        plain_chord = median(lambda: celery_seconds(chord_of(chord_size), chord_sum), runs)
        zart_chain = median(lambda: zart_seconds(service, readback, chain_of(chain_size), chain_end), runs)
        plain_chain = median(lambda: celery_seconds(chain_of(chain_size), chain_end), runs)
    ctx.note(
        f"Canvas: a {chord_size}-task chord and a {chain_size}-task chain of trivial tasks, median of {runs} runs, "
        f"run by one `celery -A bench.remote_fleet worker` at concurrency {concurrency}; zart runs them with "
        "`zart.canvas` (Postgres as the join), plain Celery with `apply_async().get()` over the Redis result backend."
    )
    return [
        Row("canvas", f"{chord_size}-task chord, wall time", f"{zart_chord * 1000:.0f} ms",
            f"plain Celery {plain_chord * 1000:.0f} ms", times(zart_chord / plain_chord), "≤ 1.5×",
            verdict(zart_chord <= 1.5 * plain_chord)),
        Row("canvas", f"{chain_size}-task chain, wall time", f"{zart_chain * 1000:.0f} ms",
            f"plain Celery {plain_chain * 1000:.0f} ms", times(zart_chain / plain_chain), "≤ 1.5×",
            verdict(zart_chain <= 1.5 * plain_chain)),
    ]
