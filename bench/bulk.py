"""Bulk test data: a million finished-looking executions generated inside Postgres with generate_series.

Rows look like a production table after weeks of use: five task names, mostly completed, some failed,
cancelled or waiting on a far-away timer, spread over thirty days, each with its run row and one completed
step checkpoint. Ids are `bulk-0000001` … so a benchmark can pick existing ones at random.

Loading a million rows through every index one at a time would take minutes on a small machine, so the
loader does what a restore does: it drops the secondary indexes, inserts in parallel batches without
per-row foreign-key triggers (the rows are consistent by construction), then rebuilds the very same indexes
from their saved definitions and analyses the tables.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import psycopg

TABLES = ("executions", "runs", "steps")
TASKS = 5
SPAN_SECONDS = 30 * 24 * 3600
BATCH = 50_000
LOADERS = 2

_EXECUTIONS = """
INSERT INTO executions (id, task, status, input, output, error, run_index, attempt, wake_at, waiting_for,
                        dispatched_at, created_at, updated_at, started_at, completed_at)
SELECT id, task, status, '{"email": "ada@example.com", "plan": "pro"}'::jsonb,
       CASE WHEN status = 'completed' THEN '{"customer_id": "cus_123"}'::jsonb END,
       CASE WHEN status = 'failed' THEN '{"type": "ValueError", "message": "card declined"}'::jsonb END,
       0, 1,
       CASE WHEN status = 'waiting' THEN now() + interval '30 days' END,
       CASE WHEN status = 'waiting' THEN '{"kind": "sleep", "step": "nap"}'::jsonb END,
       created, created, created + interval '2 seconds', created,
       CASE WHEN status <> 'waiting' THEN created + interval '2 seconds' END
FROM (
    SELECT 'bulk-' || lpad(g::text, 7, '0') AS id,
           'bench.task-' || (g %% %(tasks)s) AS task,
           CASE WHEN g %% 100 < 90 THEN 'completed' WHEN g %% 100 < 95 THEN 'failed'
                WHEN g %% 100 < 97 THEN 'cancelled' ELSE 'waiting' END AS status,
           now() - make_interval(secs => (%(total)s::bigint - g) * %(spacing)s::float8 + %(age)s::float8) AS created
    FROM generate_series(%(first)s::bigint, %(last)s::bigint) AS g
) AS generated
"""

_RUNS = """
INSERT INTO runs (execution_id, run_index, trigger, status, input, output, error, created_at, completed_at)
SELECT id, 0, 'initial', status, input, output, error, created_at, completed_at
FROM executions WHERE id BETWEEN %(first_id)s AND %(last_id)s
"""

_STEPS = """
INSERT INTO steps (execution_id, run_index, name, position, kind, status, output, attempts, exec_attempt,
                   started_at, completed_at, updated_at)
SELECT id, 0, 'charge', 0, 'step', 'completed', '"ch_1"'::jsonb, 1, 1, created_at, created_at, created_at
FROM executions WHERE id BETWEEN %(first_id)s AND %(last_id)s AND status <> 'waiting'
"""

_SECONDARY_INDEXES = """
SELECT indexname, indexdef FROM pg_indexes i
WHERE schemaname = current_schema() AND tablename = ANY(%(tables)s)
  AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname)
"""


def execution_id(index: int) -> str:
    return f"bulk-{index:07d}"


def generate(
    libpq_url: str, total: int, progress: Callable[[str], None] = lambda _: None, age: float = 0.0
) -> float:
    """Insert `total` executions with their runs and steps, the newest created `age` seconds ago; returns the
    seconds it took."""
    started = time.monotonic()
    with _loader(libpq_url) as conn:
        indexes = conn.execute(_SECONDARY_INDEXES, {"tables": list(TABLES)}).fetchall()
        for name, _ in indexes:
            conn.execute(f'DROP INDEX "{name}"')
        batches = [(first, min(first + BATCH - 1, total)) for first in range(1, total + 1, BATCH)]
        with ThreadPoolExecutor(max_workers=LOADERS) as pool:
            for done, last in enumerate(pool.map(lambda b: _load_batch(libpq_url, total, age, *b), batches), 1):
                if done % 4 == 0 or last == total:
                    progress(f"{done * BATCH:,}/{total:,} executions generated")
        progress("rebuilding indexes")
        for _, definition in indexes:
            conn.execute(definition)
        for table in TABLES:
            conn.execute(f"VACUUM ANALYZE {table}")
    _recount(libpq_url)  # the load bypassed the counting triggers, as a restore would
    return time.monotonic() - started


def _recount(libpq_url: str) -> None:
    from zart.store import counts, db

    with db.transaction(libpq_url.replace("postgresql://", "postgresql+psycopg://", 1)) as conn:
        counts.rebuild(conn)


def _loader(libpq_url: str) -> psycopg.Connection:
    conn = psycopg.connect(libpq_url, autocommit=True)
    conn.execute("SET session_replication_role = replica")  # no per-row FK triggers: rows are consistent
    conn.execute("SET synchronous_commit = off")
    conn.execute("SET maintenance_work_mem = '256MB'")
    return conn


def _load_batch(libpq_url: str, total: int, age: float, first: int, last: int) -> int:
    ids = {"first_id": execution_id(first), "last_id": execution_id(last)}
    spacing = SPAN_SECONDS / total
    with _loader(libpq_url) as conn, conn.transaction():
        conn.execute(
            _EXECUTIONS, {"tasks": TASKS, "total": total, "spacing": spacing, "age": age, "first": first, "last": last}
        )
        conn.execute(_RUNS, ids)
        conn.execute(_STEPS, ids)
    return last
