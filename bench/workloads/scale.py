"""Scale: status, list and stats through ZartService with a million executions in the table, and the
worker's resident memory after ten thousand executions.

The big table lives in its own database so the other workloads are not measured against it.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import psycopg

from bench import bulk, dashboard
from bench.context import BenchContext
from bench.measure import Summary, sample, timed
from bench.readback import Readback
from bench.report import Row, p50_p99, verdict
from bench.workloads.throughput import schedule_and_finish
from zart import paging
from zart.service import ZartService

DATABASE = "zart_scale"
DEEP_PAGE_P99_MS = 10
WARMUP = 5


def load_table(ctx: BenchContext, total: int) -> None:
    ctx.services.zart_database(DATABASE)
    seconds = bulk.generate(ctx.services.libpq_url(DATABASE), total, lambda line: print(f"  {line}", flush=True))
    ctx.note(f"Scale: {total:,} executions bulk-generated in {seconds:.0f} s (bench/bulk.py).")


def query_latencies(ctx: BenchContext, total: int) -> dict[str, Summary]:
    service = ZartService(ctx.services.settings(DATABASE))
    pick = random.Random(7)
    last_task = f"bench.task-{bulk.TASKS - 1}"
    queries: dict[str, Callable[[], Any]] = {
        "status (random id)": lambda: service.status(bulk.execution_id(pick.randint(1, total))),
        "list status=failed, first page": lambda: service.list_executions(status="failed"),
        f"list task={last_task}, first page": lambda: service.list_executions(task=last_task),
        "stats": service.stats,
    }
    deep = deep_cursors(ctx.services.libpq_url(DATABASE), total, pick)
    queries[DEEP_PAGE] = lambda: service.list_page(cursor=pick.choice(deep))
    samples, bound = ctx.size(100, 10), ctx.size(20.0, 5.0)
    results = {}
    for name, query in queries.items():
        sample(lambda query=query: timed(query), WARMUP, bound)  # type: ignore[misc]
        results[name] = Summary.of(sample(lambda query=query: timed(query), samples, bound))  # type: ignore[misc]
    return results


DEEP_PAGE = "list, a page by cursor 80-100% deep"


def deep_cursors(libpq_url: str, total: int, pick: random.Random, count: int = 20) -> list[str]:
    """Cursors naming rows in the oldest fifth of the table (newest first): what `next_cursor` would be after
    tens of thousands of pages. Found once by the benchmark itself, not through the measured path."""
    with psycopg.connect(libpq_url) as conn:
        keys = [
            conn.execute(
                "SELECT created_at, id FROM executions ORDER BY created_at DESC, id DESC OFFSET %s LIMIT 1",
                (pick.randint(total * 8 // 10, total - 60),),
            ).fetchone()
            for _ in range(count)
        ]
    return [paging.encode(paging.Cursor(created_at, execution_id, "desc")) for created_at, execution_id in keys]


def worker_rss(ctx: BenchContext, executions: int) -> tuple[float, float]:
    """Worker RSS (MiB, all its processes) after a warm-up and after `executions` three-step executions."""
    service = ZartService(ctx.services.settings())
    with ctx.zart_worker("zart-worker-rss") as worker, Readback(ctx.services.libpq_url()) as readback:
        schedule_and_finish(service, readback, 20, "rss")
        before = worker.rss_bytes() / 2**20
        schedule_and_finish(service, readback, executions, "rss")
        return before, worker.rss_bytes() / 2**20


def run(ctx: BenchContext) -> list[Row]:
    total, executions = ctx.size(1_000_000, 20_000), ctx.size(10_000, 200)
    load_table(ctx, total)
    rows = []
    for name, summary in query_latencies(ctx, total).items():
        limit = DEEP_PAGE_P99_MS if name == DEEP_PAGE else 20
        rows.append(
            Row("scale", f"{name} @ {total:,} rows (n={summary.n})", p50_p99(summary.p50, summary.p99),
                target=f"p99 ≤ {limit} ms", verdict=verdict(summary.p99 <= limit))
        )
    ctx.note(
        "Dashboard: each page requested through the Flask app in process (routing, service calls, templates), "
        "so the figure is server time; beside it, this process's CPU per request (the rest is waiting for Postgres "
        "or for a core); the 200-step execution has two attempts per step (bench/dashboard.py)."
    )
    pages = dashboard.page_latencies(
        ctx.services.settings(DATABASE), ctx.services.libpq_url(DATABASE), total, ctx.size(50, 10), ctx.size(20.0, 5.0)
    )
    rows += [
        Row("scale", f"dashboard: {name} @ {total:,} rows (n={times.wall.n})", p50_p99(times.wall.p50, times.wall.p99),
            f"CPU p50 {times.cpu_p50:.1f} ms",
            target="—" if name in dashboard.UNTARGETED else f"p99 ≤ {dashboard.TARGET_MS} ms",
            verdict="—" if name in dashboard.UNTARGETED else verdict(times.wall.p99 <= dashboard.TARGET_MS))
        for name, times in pages.items()
    ]
    before, after = worker_rss(ctx, executions)
    rows.append(
        Row("scale", f"worker RSS after {executions:,} executions", f"{after:.0f} MiB",
            f"after 20 (warm) {before:.0f} MiB", f"+{after - before:.0f} MiB")
    )
    return rows
