"""Small helpers shared by the query modules."""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import re
import weakref
from typing import Any

import psycopg
import psycopg.types.json
from psycopg.rows import dict_row
from sqlalchemy import Connection, Engine, TextClause, text

from zart.errors import StoreUnavailable

log = logging.getLogger(__name__)


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

# (a text column: a function's result type cannot hold pg_notify's void)
NOTIFY_FINISHED_SQL = f"""
    CAST(pg_notify('{FINISHED_CHANNEL}', CASE
        WHEN octet_length(final.body) < 7900 THEN final.body
        ELSE json_build_object('execution_id', done.id)::text END) AS text) AS notified
"""
FINAL_STATE_SQL = """
    LATERAL (SELECT json_build_object('execution_id', done.id, 'task', done.task, 'status', done.status,
                                      'output', done.output, 'error', done.error, 'run_index', done.run_index,
                                      'attempt', done.attempt, 'created_at', done.created_at,
                                      'started_at', done.started_at, 'completed_at', done.completed_at
                                      )::text AS body) final
"""


PLACEHOLDER = re.compile(r"(?<![:\w]):(\w+)")  # SQLAlchemy's `:name`, not a `::type` cast


@functools.cache
def _driver_sql(statement: str) -> str:
    """`:name` placeholders (SQLAlchemy's) as psycopg's `%(name)s`."""
    return PLACEHOLDER.sub(r"%(\1)s", statement.replace("%", "%%"))


# The statements that run once or more per step, by text, with the name they are installed under. Each is also a
# server-side function (zart.store.hot, installed by `zart migrate`): Postgres keeps a function's plans for the
# life of the server connection, which a transaction pooler keeps too, whereas it plans an ordinary statement at
# every execution unless the client prepared it (which a transaction pooler rules out).
HOT_STATEMENTS: dict[str, str] = {}
# Every hot statement reads and writes a few rows by an index whatever its parameters: the plan Postgres keeps
# is the generic one (a plan made for the values can drop a branch, look cheaper, and be made again every call).
HOT_FUNCTION_OPTIONS = "SET plan_cache_mode = force_generic_plan"


def hot_statement(label: str, statement: str) -> TextClause:
    """A per-step statement: declared here, run by `hot_one` through its server-side function."""
    HOT_STATEMENTS[statement] = label
    return text(statement)


@functools.cache
def positional(statement: str) -> tuple[str, tuple[str, ...]]:
    """The statement with `$1`, `$2`... for its placeholders (a function's body), and their names in that order."""
    names: list[str] = []

    def number(match: re.Match[str]) -> str:
        if match.group(1) not in names:
            names.append(match.group(1))
        return f"${names.index(match.group(1)) + 1}"

    return PLACEHOLDER.sub(number, statement), tuple(names)


@functools.cache
def function_name(statement: str) -> str:
    """The server-side function a hot statement is installed as: named after its body, so a changed statement is
    a new function and the code of a rolling deployment's both versions finds its own."""
    body, _ = positional(statement)
    digest = hashlib.sha256(f"{HOT_FUNCTION_OPTIONS}\n{body}".encode()).hexdigest()[:12]
    return f"zart_hot_{HOT_STATEMENTS[statement]}_{digest}"


# per engine (one database), statement -> the call of its function; "" when it is not installed there
_calls: weakref.WeakKeyDictionary[Engine, dict[str, str]] = weakref.WeakKeyDictionary()
_ARGUMENT_TYPES = "SELECT p.proargtypes::oid[]::regtype[]::text[] FROM pg_proc p WHERE p.proname = %s"


def _call(conn: Connection, driver: psycopg.Connection[Any], statement: str) -> str:
    """`SELECT * FROM <function>(CAST(%(a)s AS type), ...)` for a hot statement, looked up once per process and
    database (its argument types, from the catalog); "" when the database lacks it: the statement is then sent
    as it is, and planned at each execution."""
    calls = _calls.get(conn.engine)
    if calls is None:
        calls = _calls.setdefault(conn.engine, {})
    call = calls.get(statement)
    if call is None:
        name = function_name(statement)
        row = driver.execute(_ARGUMENT_TYPES, (name,), prepare=False).fetchone()
        if row is None:
            log.warning("%s is not installed in this database: run `zart migrate` (until then Postgres plans "
                        "the statement at every execution)", name)
            call = ""
        else:
            _, names = positional(statement)
            arguments = ", ".join(f"CAST(%({n})s AS {t})" for n, t in zip(names, row[0], strict=True))
            call = f"SELECT * FROM {name}({arguments})"
        calls[statement] = call
    return call


def hot_one(conn: Connection, statement: TextClause, **params: Any) -> dict[str, Any] | None:
    """Run one statement straight through psycopg: the per-step path. A hot statement runs as its server-side
    function (see HOT_STATEMENTS); straight to Postgres the call is a prepared statement too.

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
    if not isinstance(driver, psycopg.Connection):  # an app's own engine on another driver (psycopg2): as it is
        found = rows(conn, statement, **params)
        return found if all_rows else found[:1]
    try:
        sql = (_call(conn, driver, statement.text) if statement.text in HOT_STATEMENTS else "") or _driver_sql(
            statement.text
        )
        with driver.cursor(row_factory=dict_row) as cursor:
            # behind a transaction pooler the connection prepares nothing (see db._connect_args)
            cursor.execute(sql, params, prepare=driver.prepare_threshold is not None)
            if all_rows:
                return cursor.fetchall()
            row = cursor.fetchone()
            return [] if row is None else [row]
    except psycopg.OperationalError as exc:
        conn.invalidate()
        raise StoreUnavailable(f"database unavailable: {exc}") from exc
