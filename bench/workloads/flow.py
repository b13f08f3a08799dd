"""Flow control: what a global concurrency limit costs, and how fast a freed slot starts the next execution.

Throughput of the three-step workflow under a limit of twice the worker's processes (so the limit admits
every claim and what is measured is its bookkeeping) against the same workflow unlimited, in alternating
rounds. Then a concurrency-1 task with a backlog: each execution's first step starts after the previous
one's completion; the gap is slot freed → next held execution started.
"""

from __future__ import annotations

import uuid

import psycopg

from bench import workflows
from bench.context import BenchContext
from bench.measure import Summary, median, submit_all
from bench.readback import Readback
from bench.report import Row, p50_p99, per_second, times, verdict
from bench.workloads.throughput import CLIENTS, STEPS, TIMEOUT, _measure
from zart.dispatch.worker import default_concurrency
from zart.service import ZartService

ROUNDS = 3


def _batch(service: ZartService, readback: Readback, task: str, count: int) -> None:
    ids = [f"flow-{uuid.uuid4().hex[:16]}" for _ in range(count)]
    submit_all(lambda i: service.schedule(task, {"n": STEPS}, execution_id=i), ids, CLIENTS)
    readback.wait_finished(ids, TIMEOUT)
    failed = readback.failed(ids)
    assert not failed, f"{len(failed)} executions did not complete, e.g. {failed[0]}"


def throughputs(ctx: BenchContext, count: int, warmup: int) -> tuple[float, float]:
    """(unlimited, limited) executions per second: medians of alternating rounds."""
    service = ZartService(ctx.services.settings())
    rates: dict[str, list[float]] = {workflows.STEPS: [], workflows.LIMITED_STEPS: []}
    with ctx.zart_worker(), Readback(ctx.services.libpq_url()) as readback:
        for task in rates:
            _batch(service, readback, task, warmup)
        for _ in range(ROUNDS):
            for task, values in rates.items():
                values.append(_measure(ctx, count, lambda task=task: _batch(service, readback, task, count)).per_second)
    return median(rates[workflows.STEPS]), median(rates[workflows.LIMITED_STEPS])


def handoff_gaps(ctx: BenchContext, count: int) -> list[float]:
    """Milliseconds from one execution's completion to the next one's first step, in start order."""
    service = ZartService(ctx.services.settings())
    ids = [f"handoff-{uuid.uuid4().hex[:16]}" for _ in range(count)]
    with ctx.zart_worker(), Readback(ctx.services.libpq_url()) as readback:
        for execution_id in ids:
            service.schedule(workflows.HANDOFF, {}, execution_id=execution_id)
        readback.wait_finished(ids, TIMEOUT)
    with psycopg.connect(ctx.services.libpq_url(), autocommit=True) as conn:
        rows = conn.execute(
            "SELECT (output #>> '{}')::float8, EXTRACT(EPOCH FROM completed_at)::float8 FROM executions "
            "WHERE id = ANY(%s) AND status = 'completed' ORDER BY 1",
            (ids,),
        ).fetchall()
    return [(started - previous_done) * 1000 for (_, previous_done), (started, _) in zip(rows, rows[1:], strict=False)]


def run(ctx: BenchContext) -> list[Row]:
    count, warmup = ctx.size(1000, 100), ctx.size(50, 10)
    unlimited, limited = throughputs(ctx, count, warmup)
    gaps = Summary.of(handoff_gaps(ctx, ctx.size(200, 30)))
    ctx.note(
        f"Flow control: the same {STEPS}-step workflow unlimited and under `concurrency="
        f"{workflows.LIMITED_CONCURRENCY}` (twice a default worker's {default_concurrency()} processes), "
        f"{ROUNDS} alternating rounds of {count:,}, medians. Slot handoff: a `concurrency=1` task with a backlog "
        "scheduled at once; the gap runs from one execution's completion (its row's completed_at) to the next "
        "one's first step (time.time() in the step); the worker that frees the slot runs the next held execution "
        "itself."
    )
    return [
        Row(
            "flow control",
            f"executions/s ({count:,} × {STEPS} steps), limit {workflows.LIMITED_CONCURRENCY}",
            per_second(limited),
            f"unlimited {per_second(unlimited)}",
            times(limited / unlimited),
            "≥ 0.8×",
            verdict(limited >= 0.8 * unlimited),
        ),
        Row(
            "flow control",
            f"slot freed → next held execution started (n={gaps.n})",
            p50_p99(gaps.p50, gaps.p99),
            target="p50 ≤ 10 ms",
            verdict=verdict(gaps.p50 <= 10),
        ),
    ]
