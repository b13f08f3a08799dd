"""Reads that must not grow with the rows that are plainly alive: tens of thousands of sleepers, a deep pending
backlog and parked event waits beside a few stranded executions of every cause.

The liveness check must still find exactly the rows its definition (`STRANDED_CONDITION`) calls stranded,
while reading only its candidates; before, it read every sleeping and pending row on every sweep. The
release of lifted pause rules must not walk the pending backlog when no rule was lifted, and a self-claiming
worker's look must take the oldest ready row without reading the backlog behind it. And a run's final update
must stay on its page, not land on a cold page anywhere in a big table.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from sqlalchemy import TextClause, text

from tests.harness import fresh_database
from zart.localservices import LocalPostgres
from zart.migrate import upgrade
from zart.store import db, executions, liveness, pause

DATABASE = "zart_reads_at_scale"
SLEEPERS, BACKLOG, EVENT_WAITS, LEASED = 20_000, 5_000, 2_000, 50
# a pass reads the candidates (a few stranded rows, the running ones, event waits without a timeout); walking
# the sleepers or the backlog reads tens of thousands
MOST_ROWS = 3_000
NODE = re.compile(r"Scan .*on (\w+) .*actual time=\S+ rows=(\d+) loops=(\d+)")
FILTERED = re.compile(r"Rows Removed by (?:Filter|Index Recheck): (\d+)")

_ACTIVE = """
    INSERT INTO executions (id, task, status, input, run_index, created_at, updated_at, dispatched_at, wake_at,
                            waiting_for, waiting_for_event, lease_token, lease_expires_at, held_by, flow_limit)
    SELECT %(prefix)s || g, 'task-1', %(status)s, '{}', 0, now(), now(), now(), %(wake_at)s::timestamptz,
           %(waiting_for)s::jsonb, %(event)s, %(token)s, %(lease)s::timestamptz, %(held_by)s, %(limit)s
    FROM generate_series(1, %(count)s) g
"""
_BACKLOG = {"prefix": "backlog-", "status": "pending", "count": BACKLOG}
_LIVE: list[dict[str, Any]] = [
    {
        "prefix": "sleeper-",
        "status": "waiting",
        "count": SLEEPERS,
        "wake_at": "2100-01-01",
        "waiting_for": '{"kind": "sleep", "step": "nap"}',
    },
    {
        "prefix": "event-",
        "status": "waiting",
        "count": EVENT_WAITS,
        "event": "go",
        "waiting_for": '{"kind": "event", "step": "go"}',
    },
    {"prefix": "leased-", "status": "running", "count": LEASED, "token": "t", "lease": "2100-01-01"},
]
# one of each way to be stranded: a lost wake-up, children that ended without reporting, a remote wait with
# nothing in flight, a rule deleted under its parked execution, a dead owner, a limit removed under held rows
_STRANDED: list[dict[str, Any]] = [
    {"prefix": "lost-", "status": "waiting", "waiting_for": '{"kind": "sleep", "step": "nap"}'},
    {"prefix": "children-", "status": "waiting", "waiting_for": '{"kind": "children", "steps": ["c"]}'},
    {"prefix": "remote-", "status": "waiting", "waiting_for": '{"kind": "remote", "steps": ["r"]}'},
    {"prefix": "paused-", "status": "waiting", "waiting_for": '{"kind": "pause", "rule": "gone", "step": "s"}'},
    {"prefix": "expired-", "status": "running", "token": "t", "lease": "2000-01-01"},
    {"prefix": "unlimited-", "status": "pending", "held_by": "limit", "limit": "removed"},
]
_DEFAULTS = {
    "wake_at": None,
    "waiting_for": None,
    "event": None,
    "token": None,
    "lease": None,
    "held_by": None,
    "limit": None,
    "count": 2,
}


@pytest.fixture(scope="module")
def scale_url(postgres: LocalPostgres) -> Iterator[str]:
    url = fresh_database(postgres.port, DATABASE)
    upgrade(url)
    with psycopg.connect(url.replace("+psycopg", ""), autocommit=True) as conn:
        conn.execute("SET session_replication_role = replica")  # a private database: no count triggers needed
        for rows in [*_LIVE, _BACKLOG, *_STRANDED]:
            conn.execute(_ACTIVE, {**_DEFAULTS, **rows})
        conn.execute("VACUUM ANALYZE executions")
    yield url
    db.dispose_all()


def _rows_read(url: str, statement: TextClause, params: dict[str, Any]) -> tuple[int, str]:
    """Rows of `executions` the statement reads (returned by its scans or removed by their filters), from
    EXPLAIN ANALYZE in a rolled-back transaction; and the plan."""
    with db.transaction(url) as conn:
        plan = [row[0] for row in conn.execute(text("EXPLAIN ANALYZE " + statement.text), params)]
        conn.rollback()
    read, loops, table = 0, 1, ""
    for line in plan:
        if node := NODE.search(line):
            table, loops = node.group(1), int(node.group(3))
            read += int(node.group(2)) * loops if table == "executions" else 0
        elif line.lstrip().startswith("->"):
            table = ""
        elif (filtered := FILTERED.search(line)) and table == "executions":
            read += int(filtered.group(1)) * loops
    return read, "\n".join(plan)


def test_the_liveness_check_finds_every_stranded_row_and_reads_only_the_candidates(scale_url: str) -> None:
    with db.autocommit(scale_url) as conn:
        defined = {
            row[0] for row in conn.execute(text(f"SELECT e.id FROM executions e WHERE {liveness.STRANDED_CONDITION}"))
        }
        listed = {row["execution_id"]: row["cause"] for row in liveness.stranded(conn, 500)}
        counted = liveness.count_stranded(conn)
    expected = {f"{rows['prefix']}{n}" for rows in _STRANDED for n in (1, 2)}
    assert defined == expected  # the fixture strands what it means to
    assert set(listed) == expected and counted == len(expected)
    assert listed["children-1"] == "children_finished" and listed["expired-1"] == "lease_expired"
    assert listed["unlimited-1"] == "limit_gone" and listed["lost-1"] == "no_wake_up"
    for statement, params in ((liveness._STRANDED, {"limit": 500}), (liveness._COUNT, {})):
        read, plan = _rows_read(scale_url, statement, params)
        assert read <= MOST_ROWS, f"the liveness check read {read} rows:\n{plan}"


def test_releasing_lifted_pause_rules_does_not_walk_the_backlog_when_none_was_lifted(scale_url: str) -> None:
    read, plan = _rows_read(scale_url, pause._RELEASE, {"limit": 500})
    assert read <= MOST_ROWS, f"the release read {read} rows:\n{plan}"


def test_a_self_claim_look_reads_the_oldest_ready_rows_not_the_backlog(scale_url: str) -> None:
    """The look walks the ready rows oldest first and stops at the first it can take; a plan that reads the
    whole backlog to sort it costs a read of every pending row per execution."""
    look = {"token": "t", "worker": "w", "lease": 30.0, "tasks": ["task-1"], "queues": [], "default_queue": True}
    read, plan = _rows_read(scale_url, executions._CLAIM_NEXT, look)
    assert read <= MOST_ROWS, f"the look read {read} rows:\n{plan}"


def test_a_runs_final_update_stays_on_its_page(postgres: LocalPostgres) -> None:
    """A run row is rewritten once, when its execution ends. On a page packed full by the runs scheduled after
    it, the new version would go wherever the free space map points (on a big or pruned table, a cold page
    anywhere); with room left on the page it stays there."""
    url = fresh_database(postgres.port, "zart_run_pages")
    upgrade(url)
    ids = [f"paged-{n:03d}" for n in range(120)]  # several pages of run rows
    page = text("SELECT (ctid::text::point)[0]::int FROM runs WHERE execution_id = :id AND run_index = 0")
    with db.transaction(url) as conn:
        for execution_id in ids:
            executions.insert_execution(conn, execution_id=execution_id, task="t", data={"n": "x" * 100})
    with db.autocommit(url) as conn:
        before = {execution_id: conn.execute(page, {"id": execution_id}).scalar() for execution_id in ids}
        for execution_id in ids:
            assert executions.claim(conn, execution_id, "token", "worker", 30.0) is not None
            done = executions.finish(conn, execution_id, status="completed", token="token", output={"ok": True})
            assert done is not None
        after = {execution_id: conn.execute(page, {"id": execution_id}).scalar() for execution_id in ids}
    moved = [execution_id for execution_id in ids if after[execution_id] != before[execution_id]]
    assert len(set(before.values())) > 1 and not moved, f"{len(moved)} of {len(ids)} run rows moved page"
    db.dispose_all()
