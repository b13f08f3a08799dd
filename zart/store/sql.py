"""Small helpers shared by the query modules."""

from __future__ import annotations

import functools
import json
import re
from typing import Any

import psycopg
import psycopg.types.json
from psycopg.rows import dict_row
from sqlalchemy import Connection, TextClause

from zart.errors import StoreUnavailable


class Undecodable(dict):  # type: ignore[type-arg]
    """Stored JSON this process cannot decode (nested past Python's recursion limit: written before input depth
    was capped, or by hand). Reading such a row must not fail the reader, and a worker that claims it fails the
    execution with this reason instead of crashing after its claim and being handed the row again forever."""

    REASON = "stored JSON is nested too deeply to be decoded"

    def __init__(self) -> None:
        super().__init__(undecodable=self.REASON)


def decode_json(data: str | bytes) -> Any:
    """What every JSON and jsonb column decodes through (installed below, for every connection)."""
    try:
        return json.loads(data)
    except RecursionError:
        return Undecodable()


psycopg.types.json.set_json_loads(decode_json)


def to_json(value: Any) -> str | None:
    """Serialise for a `CAST(:x AS jsonb)` parameter; None stays SQL NULL."""
    return None if value is None else json.dumps(value, separators=(",", ":"))


def rows(conn: Connection, statement: TextClause, **params: Any) -> list[dict[str, Any]]:
    return [dict(row._mapping) for row in conn.execute(statement, params)]


def one(conn: Connection, statement: TextClause, **params: Any) -> dict[str, Any] | None:
    row = conn.execute(statement, params).first()
    return None if row is None else dict(row._mapping)


def scalar(conn: Connection, statement: TextClause, **params: Any) -> Any:
    return conn.execute(statement, params).scalar()


FINISHED_CHANNEL = "zart_execution_finished"
# a remote step's outcome was recorded; the payload is the execution id
REMOTE_CHANNEL = "zart_remote_outcome"

# The NOTIFY sent when an execution finishes carries its final state (when it fits in a notification), so a
# waiter can answer without reading the row back; a larger one carries just the id.
# A claim may be lost in a crash (the row is then dispatched again, and the limit slot it took is lost with it,
# being the row's own flag); the first checkpoint's synchronous commit flushes it anyway, so a claim need not
# wait for its own fsync. It is a subquery, run once per statement: as a condition on the rows it would be
# called for every row a look reads, and the planner, guessing it true for one row in two hundred, judged that
# reading and sorting a whole backlog would find the oldest ready row cheaper than walking the ready index.
CLAIM_UNSYNCED = "(SELECT set_config('synchronous_commit', 'off', true)) = 'off'"

NOTIFY_FINISHED_SQL = f"""
    pg_notify('{FINISHED_CHANNEL}', CASE
        WHEN octet_length(final.body) < 7900 THEN final.body
        ELSE json_build_object('execution_id', done.id)::text END)
"""
FINAL_STATE_SQL = """
    LATERAL (SELECT json_build_object('execution_id', done.id, 'task', done.task, 'status', done.status,
                                      'output', done.output, 'error', done.error, 'run_index', done.run_index,
                                      'attempt', done.attempt, 'created_at', done.created_at,
                                      'started_at', done.started_at, 'completed_at', done.completed_at
                                      )::text AS body) final
"""


@functools.cache
def _driver_sql(statement: str) -> str:
    """`:name` placeholders (SQLAlchemy's) as psycopg's `%(name)s`."""
    return re.sub(r"(?<![:\w]):(\w+)", r"%(\1)s", statement.replace("%", "%%"))


def hot_one(conn: Connection, statement: TextClause, **params: Any) -> dict[str, Any] | None:
    """Run one statement straight through psycopg as a prepared statement: the per-step path.

    SQLAlchemy's statement handling costs about a fifth of a step's time; this skips it for the few
    statements that run once per step. A broken connection is invalidated and reported like any other.
    """
    found = _hot(conn, statement, params, all_rows=False)
    return found[0] if found else None


def hot_rows(conn: Connection, statement: TextClause, **params: Any) -> list[dict[str, Any]]:
    """`hot_one` for a statement whose every row is wanted."""
    return _hot(conn, statement, params, all_rows=True)


def _hot(conn: Connection, statement: TextClause, params: dict[str, Any], all_rows: bool) -> list[dict[str, Any]]:
    driver = conn.connection.driver_connection
    try:
        with driver.cursor(row_factory=dict_row) as cursor:
            # behind a transaction pooler the connection prepares nothing (see db._connect_args)
            cursor.execute(_driver_sql(statement.text), params, prepare=driver.prepare_threshold is not None)
            if all_rows:
                return cursor.fetchall()
            row = cursor.fetchone()
            return [] if row is None else [row]
    except psycopg.OperationalError as exc:
        conn.invalidate()
        raise StoreUnavailable(f"database unavailable: {exc}") from exc
