"""Retention: pruning a million finished executions while a steady workload runs, against the step latency
of the same workload before pruning (target: p99 during ≤ 1.5× before), and what the tables weigh.

The table is bulk-generated (bench/bulk.py) in a database of its own; a default `zart worker` (its own
retention off) runs ten-step executions scheduled at a steady pace; `zart admin prune`'s code path deletes
everything finished, in its small paced batches, while they run. A step's latency is the time from the
previous checkpoint of its run to its own (body plus checkpoint commit), read back from the steps table.
"""

from __future__ import annotations

import sys
import threading
import time
import uuid

import psycopg

from bench import bulk, workflows
from bench.context import BenchContext
from bench.measure import Summary
from bench.processes import WorkerProcess
from bench.readback import Readback
from bench.report import Row, p50_p99, verdict
from zart.admin import AdminService
from zart.service import ZartService

DATABASE = "zart_retention"
STEPS = 10
PACE = 0.1  # seconds between scheduled executions: a steady load well under the worker's capacity
TARGET_RATIO = 1.5

_INTERVALS = """
SELECT EXTRACT(EPOCH FROM completed_at - lag(completed_at) OVER (PARTITION BY execution_id ORDER BY position))
FROM steps WHERE execution_id = ANY(%s) AND kind = 'step'
"""

_SIZES = """
SELECT sum(pg_total_relation_size(c.oid)) FROM pg_class c
WHERE c.relname IN ('executions', 'runs', 'steps', 'step_attempts', 'events') AND c.relkind = 'r'
"""


class SteadyLoad:
    """Schedules a ten-step execution every PACE seconds from a thread, remembering each id with its phase."""

    def __init__(self, service: ZartService) -> None:
        self._service = service
        self._stop = threading.Event()
        self.phase = "warm-up"
        self.ids: dict[str, list[str]] = {}
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(PACE):
            execution_id = f"steady-{uuid.uuid4().hex[:16]}"
            self.ids.setdefault(self.phase, []).append(execution_id)
            self._service.schedule(workflows.STEPS, {"n": STEPS}, execution_id=execution_id)

    def __enter__(self) -> SteadyLoad:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


def step_latencies(libpq_url: str, ids: list[str]) -> list[float]:
    with psycopg.connect(libpq_url) as conn:
        return [float(v) * 1000 for (v,) in conn.execute(_INTERVALS, (ids,)).fetchall() if v is not None]


def table_bytes(libpq_url: str) -> int:
    with psycopg.connect(libpq_url) as conn:
        return int(conn.execute(_SIZES).fetchone()[0])


def run(ctx: BenchContext) -> list[Row]:
    total = ctx.size(1_000_000, 20_000)
    services = ctx.services
    services.zart_database(DATABASE)
    libpq = services.libpq_url(DATABASE)
    # finished two days ago and earlier: a prune of everything older than a day leaves the steady load alone
    seconds = bulk.generate(libpq, total, lambda line: print(f"  {line}", flush=True), age=2 * 86400)
    loaded = table_bytes(libpq)
    service = ZartService(services.settings(DATABASE))
    env = {
        "DATABASE_URL": services.sqlalchemy_url(DATABASE),
        "ZART_BROKER_URL": services.broker_url,
        "ZART_IMPORTS": "bench.workflows",
        "ZART_RETENTION": "off",
    }
    argv = [sys.executable, "-m", "zart", "worker", "--hostname", "zart-retention@%h"]
    before_seconds = ctx.size(30.0, 5.0)
    with WorkerProcess("zart-retention", argv, env, ctx.log_dir) as _, SteadyLoad(service) as load:
        time.sleep(3.0)
        load.phase = "before"
        time.sleep(before_seconds)
        load.phase = "during"
        started = time.monotonic()
        pruned = AdminService(service).prune(86400.0, None, False, "bench")["total"]
        prune_seconds = time.monotonic() - started
        load.phase = "after"
        with Readback(libpq) as readback:
            for phase in ("before", "during"):
                readback.wait_finished(load.ids.get(phase, []), 120)
    before = Summary.of(step_latencies(libpq, load.ids["before"]))
    during = Summary.of(step_latencies(libpq, load.ids.get("during", [])))
    with psycopg.connect(libpq, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE executions, runs, steps, step_attempts, events")
    vacuumed = table_bytes(libpq)
    ratio = during.p99 / before.p99
    ctx.note(
        f"Retention: {total:,} bulk executions ({seconds:.0f} s to load); a default worker runs {STEPS}-step "
        f"executions scheduled every {PACE * 1000:.0f} ms; the prune is `zart admin prune --older-than 1d`'s path "
        "(batches of 200 trees, each followed by a rest as long as it took). Step latency = previous checkpoint "
        "of the run → this one."
    )
    return [
        Row("retention", f"step latency before pruning (n={before.n})", p50_p99(before.p50, before.p99)),
        Row(
            "retention",
            f"step latency while pruning {pruned:,} executions (n={during.n})",
            p50_p99(during.p50, during.p99),
            f"before p99 {before.p99:.2f} ms",
            f"{ratio:.2f}×",
            target=f"p99 ≤ {TARGET_RATIO}× before",
            verdict=verdict(ratio <= TARGET_RATIO),
        ),
        Row("retention", "prune rate (paced batches, workload running)", f"{pruned / prune_seconds:,.0f} executions/s"),
        Row(
            "retention",
            "tables + indexes (executions, runs, steps)",
            f"{loaded / 2**20:,.0f} MiB loaded → {vacuumed / 2**20:,.0f} MiB after prune + VACUUM",
            f"{loaded / total:,.0f} B per execution",
        ),
    ]
