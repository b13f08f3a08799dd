"""Dashboard render times: each page as the Flask app serves it (routing, service calls, templates), timed in
process so the figure is server time, not a browser's. Run by the scale workload on its million-row table.

The 200-step execution is written straight into the table (like bench/bulk.py's rows), each step with a
failed attempt and a completed one, so its page renders 200 timeline rows and 400 attempt rows.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import psycopg

from bench import bulk
from bench.measure import Summary, median, sample, timed
from zart import paging
from zart.config import Settings

WIDE_ID = "bench-200-steps"
STEPS = 200
TARGET_MS = 150
UNTARGETED = ("overview",)  # measured, not held to the target: its stranded count reads every active execution

_EXECUTION = """
INSERT INTO executions (id, task, status, input, output, run_index, attempt, dispatched_at, created_at, updated_at,
                        started_at, completed_at)
VALUES (%(id)s, 'bench.task-0', 'completed', '{"order": 1}', '{"ok": true}', 0, 1, now(), now(), now(), now(), now())
ON CONFLICT DO NOTHING
"""
_RUN = """
INSERT INTO runs (execution_id, run_index, trigger, status, input, created_at)
VALUES (%(id)s, 0, 'initial', 'completed', '{"order": 1}', now()) ON CONFLICT DO NOTHING
"""
_STEPS = """
INSERT INTO steps (execution_id, run_index, name, position, kind, status, output, attempts, failures, exec_attempt,
                   started_at, completed_at, updated_at)
SELECT %(id)s, 0, 'step-' || g, g, 'step', 'completed', jsonb_build_object('n', g), 2, 1, 1,
       now() + make_interval(secs => g), now() + make_interval(secs => g + 0.5), now()
FROM generate_series(0, %(steps)s - 1) g ON CONFLICT DO NOTHING
"""
_ATTEMPTS = """
INSERT INTO step_attempts (execution_id, run_index, step_name, attempt, started_at, ended_at, outcome, error)
SELECT %(id)s, 0, 'step-' || g, a, now() + make_interval(secs => g), now() + make_interval(secs => g + 0.2),
       CASE WHEN a = 1 THEN 'failed' ELSE 'completed' END,
       CASE WHEN a = 1 THEN '{"type": "ConnectionError", "message": "flaky"}'::jsonb END
FROM generate_series(0, %(steps)s - 1) g, generate_series(1, 2) a ON CONFLICT DO NOTHING
"""


def add_wide_execution(libpq_url: str) -> None:
    with psycopg.connect(libpq_url, autocommit=True) as conn:
        for statement in (_EXECUTION, _RUN, _STEPS, _ATTEMPTS):
            conn.execute(statement, {"id": WIDE_ID, "steps": STEPS})


@dataclass(frozen=True)
class PageTimes:
    wall: Summary  # milliseconds from request to response, in process: the server's time
    cpu_p50: float  # milliseconds of this process's CPU per request (median): the part not spent queueing


def page_latencies(settings: Settings, libpq_url: str, total: int, samples: int, bound: float) -> dict[str, PageTimes]:
    """p50/p99 server time of each dashboard page, and the CPU it takes, in milliseconds."""
    from flask_app import create_app

    add_wide_execution(libpq_url)
    client = create_app(settings).test_client()
    middle = bulk.execution_id(total // 2)
    with psycopg.connect(libpq_url) as conn:
        created = conn.execute("SELECT created_at FROM executions WHERE id = %s", (middle,)).fetchone()
    deep_cursor = paging.encode(paging.Cursor(created[0], middle, "desc")) if created else ""

    def get(path: str, query: dict[str, str] | None = None) -> Callable[[], None]:
        def fetch() -> None:
            response = client.get(path, query_string=query)
            assert response.status_code == 200, (path, response.status_code)

        return fetch

    pages = {
        "executions page, newest": get("/ui/executions"),
        "executions page, status=failed": get("/ui/executions", {"status": "failed"}),
        f"executions page, {total // 2:,} rows down": get("/ui/executions", {"older": deep_cursor}),
        f"execution detail, {STEPS} steps": get(f"/ui/executions/{WIDE_ID}"),
        "overview": get("/ui/"),
    }
    results = {}
    for name, fetch in pages.items():
        sample(lambda fetch=fetch: timed(fetch), 5, bound)  # type: ignore[misc]
        cpu: list[float] = []

        def measured(fetch: Callable[[], None] = fetch, cpu: list[float] = cpu) -> float:
            started = time.process_time()
            wall = timed(fetch)
            cpu.append((time.process_time() - started) * 1000)
            return wall

        wall = Summary.of(sample(measured, samples, bound))
        results[name] = PageTimes(wall, median(cpu))
    return results
