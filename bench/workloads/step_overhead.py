"""Step overhead: milliseconds per step of one 50-step execution, beside one raw commit and DBOS.

Per-step time is taken from each system's own checkpoint rows: first step start to last checkpoint commit,
divided by the number of steps (claim and finish are not steps). A disk's fsync latency drifts, so the three
are measured in turns — raw commits, a zart execution, a DBOS execution — and each ratio is the median of
the ratios of one turn.
"""

from __future__ import annotations

import uuid

from dbos import DBOS

from bench import dbos_app, workflows
from bench.context import BenchContext
from bench.measure import median
from bench.readback import Readback
from bench.report import Row, ms, times, verdict
from bench.workloads import physical
from zart.service import ZartService

STEPS = 50
WARMUP = 2
RAW_COMMIT_SECONDS = 0.5
# the overhead asked of a step: at most this many raw commits (the level measured when the target was set)
OVER_COMMIT_TARGET = 1.8
DBOS_DATABASE = "dbos_steps"


def zart_ms_per_step(service: ZartService, readback: Readback) -> float:
    execution_id = f"steps-{uuid.uuid4().hex[:12]}"
    service.schedule(workflows.STEPS, {"n": STEPS}, execution_id=execution_id)
    readback.wait_finished([execution_id], timeout=60)
    first, last, count = readback.step_span(execution_id)
    assert count == STEPS, f"{execution_id} recorded {count} steps"
    return (last - first).total_seconds() * 1000 / STEPS


def dbos_ms_per_step(system_database_url: str) -> float:
    handle = DBOS.start_workflow(dbos_app.steps, STEPS)
    handle.get_result()
    span, count = dbos_app.step_span_ms(system_database_url, handle.workflow_id)
    assert count == STEPS, f"DBOS recorded {count} steps"
    return span / STEPS


def run(ctx: BenchContext) -> list[Row]:
    turns = ctx.size(10, 3)
    raw_url = ctx.services.database(physical.DATABASE)
    dbos_url = ctx.services.database(DBOS_DATABASE)
    service = ZartService(ctx.services.settings())
    commit, zart, dbos = [], [], []
    with ctx.zart_worker(), Readback(ctx.services.libpq_url()) as readback, dbos_app.running_dbos(dbos_url):
        for turn in range(WARMUP + turns):
            raw = 1000 / physical.commits_per_second(raw_url, 1, RAW_COMMIT_SECONDS)
            zart_ms, dbos_ms = zart_ms_per_step(service, readback), dbos_ms_per_step(dbos_url)
            if turn >= WARMUP:
                commit.append(raw)
                zart.append(zart_ms)
                dbos.append(dbos_ms)
    over_commit = median(z / c for z, c in zip(zart, commit, strict=True))
    dbos_over_zart = median(d / z for d, z in zip(dbos, zart, strict=True))
    measure = f"ms per step ({STEPS}-step execution, median of {turns})"
    ctx.note(
        "Step overhead: zart in a default `zart worker`, DBOS in-process (start_workflow); raw commits, a zart "
        "execution and a DBOS execution are taken in turns and each ratio is the median of per-turn ratios."
    )
    return [
        Row("step overhead", measure, ms(median(zart)), f"raw commit {ms(median(commit))}", times(over_commit),
            f"≤ {OVER_COMMIT_TARGET}×", verdict(over_commit <= OVER_COMMIT_TARGET)),
        Row("step overhead", measure, ms(median(zart)), f"DBOS {ms(median(dbos))}", f"{times(dbos_over_zart)} lower",
            "≥ 3× lower", verdict(dbos_over_zart >= 3)),
    ]
