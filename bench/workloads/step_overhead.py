"""Step overhead: milliseconds per step of one 50-step execution, beside one raw commit and DBOS.

Per-step time is taken from the checkpoints themselves: first step start to last checkpoint commit,
divided by the number of steps (claim and finish are not steps). Median over the executions.
"""

from __future__ import annotations

import uuid

from dbos import DBOS

from bench import dbos_app, workflows
from bench.context import BenchContext
from bench.measure import median
from bench.readback import Readback
from bench.report import Row, ms, times, verdict
from bench.workloads.physical import raw_commit_ms
from zart.service import ZartService

STEPS = 50
WARMUP = 2
DBOS_DATABASE = "dbos_steps"


def zart_ms_per_step(ctx: BenchContext, executions: int) -> list[float]:
    service = ZartService(ctx.services.settings())
    values = []
    with ctx.zart_worker(), Readback(ctx.services.libpq_url()) as readback:
        for i in range(WARMUP + executions):
            execution_id = f"steps-{uuid.uuid4().hex[:12]}"
            service.schedule(workflows.STEPS, {"n": STEPS}, execution_id=execution_id)
            readback.wait_finished([execution_id], timeout=60)
            first, last, count = readback.step_span(execution_id)
            assert count == STEPS, f"{execution_id} recorded {count} steps"
            if i >= WARMUP:
                values.append((last - first).total_seconds() * 1000 / STEPS)
    return values


def dbos_ms_per_step(ctx: BenchContext, executions: int) -> list[float]:
    url = ctx.services.database(DBOS_DATABASE)
    values = []
    with dbos_app.running_dbos(url):
        for i in range(WARMUP + executions):
            handle = DBOS.start_workflow(dbos_app.steps, STEPS)
            handle.get_result()
            span, count = dbos_app.step_span_ms(url, handle.workflow_id)
            assert count == STEPS, f"DBOS recorded {count} steps"
            if i >= WARMUP:
                values.append(span / STEPS)
    return values


def run(ctx: BenchContext) -> list[Row]:
    executions = ctx.size(10, 3)
    commit = raw_commit_ms(ctx)
    zart = median(zart_ms_per_step(ctx, executions))
    dbos = median(dbos_ms_per_step(ctx, executions))
    measure = f"ms per step ({STEPS}-step execution, median of {executions})"
    ctx.note(
        "Step overhead: first step start to last checkpoint commit over the step count, from each system's own "
        "checkpoint rows; zart in a default `zart worker`, DBOS in-process (start_workflow)."
    )
    return [
        Row("step overhead", measure, ms(zart), f"raw commit {ms(commit)}", times(zart / commit), "≤ 2×",
            verdict(zart <= 2 * commit)),
        Row("step overhead", measure, ms(zart), f"DBOS {ms(dbos)}", f"{times(dbos / zart)} lower", "≥ 3× lower",
            verdict(dbos >= 3 * zart)),
    ]
