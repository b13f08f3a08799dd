"""Every sweep query reads through an index: each is EXPLAINed against a database holding a million terminal
executions (and as many steps) beside a handful of active ones, and a sequential scan of either table fails.

A plan node expected to read more than a hundredth of the table also fails: an index that still walks every
terminal row is no better than a scan. ZART_EXPLAIN_ROWS sets the size: 200,000 in the everyday suite (the
planner's choice is the same), a million in `make reliability`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from sqlalchemy import TextClause, text

from zart.localservices import LocalPostgres
from zart.migrate import upgrade
from zart.store import db, liveness, pause, sweeps

ROWS = int(os.environ.get("ZART_EXPLAIN_ROWS", "200000"))
ESTIMATE = re.compile(r"rows=(\d+)")
DATABASE = "zart_sweep_plans"

_FILL = [
    "SET session_replication_role = replica",  # a private database: skip the count triggers for the bulk load
    f"""
    INSERT INTO executions (id, task, status, input, output, run_index, created_at, updated_at, started_at,
                            completed_at, dispatched_at, deadline_at)
    SELECT 'done-' || g, 'task-' || (g % 20), (ARRAY['completed', 'failed', 'cancelled'])[1 + g % 3], '{{}}',
           '{{}}', 0, now() - interval '1 day', now(), now(), now(), now() - interval '1 day',
           CASE WHEN g % 10 = 0 THEN now() - interval '1 hour' END
    FROM generate_series(1, {ROWS}) g
    """,
    f"""
    INSERT INTO steps (execution_id, run_index, name, position, kind, status, output, updated_at)
    SELECT 'done-' || g, 0, 's', 0, 'step', 'completed', '1', now() FROM generate_series(1, {ROWS}) g
    """,
    """
    INSERT INTO executions (id, task, status, input, run_index, created_at, updated_at, dispatched_at, wake_at,
                            waiting_for, waiting_for_event, lease_token, lease_expires_at, deadline_at)
    SELECT 'live-' || g, 'task-1', (ARRAY['pending', 'running', 'waiting'])[1 + g % 3], '{}', 0, now(), now(),
           now(), CASE WHEN g % 3 = 2 AND g % 2 = 0 THEN now() + interval '1 hour' END,
           CASE WHEN g % 3 = 2 THEN jsonb_build_object('kind', 'children', 'steps', jsonb_build_array('c')) END,
           NULL, 'token', now() + interval '1 minute', now() + interval '1 hour'
    FROM generate_series(1, 300) g
    """,
    "INSERT INTO pause_rules (id, task, created_at, resumed_at) VALUES ('rule-1', 'task-1', now(), now())",
]


@pytest.fixture(scope="module")
def plans_url(postgres: LocalPostgres) -> Iterator[str]:
    admin = f"postgresql://postgres@127.0.0.1:{postgres.port}/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{DATABASE}"')
        conn.execute(f'CREATE DATABASE "{DATABASE}"')
    url = f"postgresql+psycopg://postgres@127.0.0.1:{postgres.port}/{DATABASE}"
    upgrade(url)
    with psycopg.connect(url.replace("+psycopg", ""), autocommit=True) as conn:
        # secondary indexes are built after the load (far faster than maintaining them row by row)
        indexes = conn.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename IN ('executions', 'steps') "
            "AND indexname NOT IN (SELECT conname FROM pg_constraint)"
        ).fetchall()
        for name, _ in indexes:
            conn.execute(f'DROP INDEX "{name}"')
        for statement in _FILL:
            conn.execute(statement)
        for _, definition in indexes:
            conn.execute(definition)
        conn.execute("ANALYZE")
    yield url
    db.dispose_all()
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')


SWEEP_QUERIES: dict[str, tuple[TextClause, dict[str, Any]]] = {
    "wake due timers": (sweeps._WAKE_DUE, {"limit": 500}),
    "recover expired leases": (sweeps._RECOVER_EXPIRED, {"limit": 500}),
    "re-publish lost messages": (
        sweeps._REDISPATCH,
        {"older_than": 10.0, "limit": 500, "forgotten_before": None, **sweeps.EVERY_QUEUE},
    ),
    "count ready pending": (sweeps._READY_PENDING, {"cap": 500, **sweeps.EVERY_QUEUE}),
    "find overdue": (sweeps._OVERDUE, {"limit": 500}),
    "release lifted pause rules": (pause._RELEASE, {"limit": 500}),
    "release orphaned pauses": (pause._ORPHANED, {}),
    "list stranded": (liveness._STRANDED, {"limit": 500}),
    "count stranded": (liveness._COUNT, {}),
    "report finished children": (liveness._REPORT_FINISHED_CHILDREN, {"id": "live-2"}),
    "release from inactive rule": (liveness._RELEASE_FROM_INACTIVE_RULE, {"id": "live-2"}),
}


@pytest.mark.timeout(600)
@pytest.mark.parametrize("duty", list(SWEEP_QUERIES))
def test_every_sweep_query_reads_through_an_index(plans_url: str, duty: str) -> None:
    statement, params = SWEEP_QUERIES[duty]
    with db.autocommit(plans_url) as conn:
        plan = "\n".join(row[0] for row in conn.execute(text("EXPLAIN " + statement.text), params))
    for table in ("executions", "steps"):
        assert f"Seq Scan on {table}" not in plan, f"{duty} scans {table}:\n{plan}"
    widest = max(int(n) for n in ESTIMATE.findall(plan))
    assert widest <= ROWS // 100, f"{duty} expects to read {widest} rows:\n{plan}"
