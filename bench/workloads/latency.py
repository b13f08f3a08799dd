"""Latency, p50 and p99: schedule → first step started, event delivered → execution resumed, and how late
a durable one-second sleep wakes. Timestamps are taken by the step bodies (time.time(), same machine).

Samples are taken one after another against an idle default worker, so each figure is zart's own delay,
not queueing behind other work. Completion → `/wait` answered comes from bench/wait_latency.py.
"""

from __future__ import annotations

import time
import uuid

from bench import workflows
from bench.context import BenchContext
from bench.measure import Summary, sample
from bench.readback import Readback
from bench.report import Row, p50_p99, verdict
from bench.workloads import wait_http
from zart.service import ZartService

SLEEP_SPACING = 0.03
TIMEOUT = 30.0


def _new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:16]}"


def schedule_to_first_step(service: ZartService, readback: Readback, samples: int, seconds: float) -> list[float]:
    def one() -> float:
        execution_id = _new_id("lat-first")
        scheduled = time.time()
        service.schedule(workflows.FIRST_STEP, {}, execution_id=execution_id)
        readback.wait_finished([execution_id], TIMEOUT, interval=0.005)
        return (float(readback.step(execution_id, "first")["output"]) - scheduled) * 1000

    return sample(one, samples, seconds)


def event_to_resume(service: ZartService, readback: Readback, samples: int, seconds: float) -> list[float]:
    """All executions park on the event first; then events are delivered one at a time."""
    ids = [_new_id("lat-event") for _ in range(samples)]
    for execution_id in ids:
        service.schedule(workflows.EVENT, {}, execution_id=execution_id)
    for execution_id in ids:
        readback.wait_status(execution_id, "waiting", TIMEOUT)
    pending = iter(ids)

    def one() -> float:
        execution_id = next(pending)
        delivered = time.time()
        service.send_event(execution_id, workflows.EVENT_NAME, {"ok": True})
        readback.wait_finished([execution_id], TIMEOUT, interval=0.005)
        return (float(readback.step(execution_id, "resumed")["output"]) - delivered) * 1000

    values = sample(one, samples, seconds)
    for execution_id in pending:  # those the time bound left parked
        service.cancel(execution_id)
    return values


def sleep_lateness(service: ZartService, readback: Readback, samples: int) -> list[float]:
    """Sleeps start `SLEEP_SPACING` apart, so their wake-ups do not queue behind each other."""
    ids = []
    for _ in range(samples):
        ids.append(_new_id("lat-sleep"))
        service.schedule(workflows.SLEEP, {}, execution_id=ids[-1])
        time.sleep(SLEEP_SPACING)
    readback.wait_finished(ids, TIMEOUT + workflows.SLEEP_SECONDS)
    values = []
    for execution_id in ids:
        woke = float(readback.step(execution_id, "woke")["output"])
        due = readback.step(execution_id, "nap")["wake_at"].timestamp()
        values.append((woke - due) * 1000)
    return values


def run(ctx: BenchContext) -> list[Row]:
    samples, seconds = ctx.size(100, 10), ctx.size(30.0, 5.0)
    service = ZartService(ctx.services.settings())
    with ctx.zart_worker(), Readback(ctx.services.libpq_url()) as readback:
        schedule_to_first_step(service, readback, 5, seconds)  # warm-up: connections, imports
        first = Summary.of(schedule_to_first_step(service, readback, samples, seconds))
        event = Summary.of(event_to_resume(service, readback, samples, seconds))
        late = Summary.of(sleep_lateness(service, readback, samples))
    ctx.note(
        f"Latency: up to {samples} samples each, bounded to {seconds:.0f} s per figure, one at a time against an "
        f"idle default worker; sleeps start {SLEEP_SPACING * 1000:.0f} ms apart."
    )
    return [
        Row("latency", f"schedule → first step started (n={first.n})", p50_p99(first.p50, first.p99),
            target="p50 ≤ 10 ms", verdict=verdict(first.p50 <= 10)),
        Row("latency", f"event delivered → execution resumed (n={event.n})", p50_p99(event.p50, event.p99),
            target="p50 ≤ 20 ms", verdict=verdict(event.p50 <= 20)),
        Row("latency", f"sleep(1) wake-up lateness (n={late.n})", p50_p99(late.p50, late.p99),
            target="p99 ≤ 100 ms", verdict=verdict(late.p99 <= 100)),
        *wait_http.rows(ctx),
    ]
