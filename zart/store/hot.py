"""Installs the per-step statements as server-side functions, which `hot_one` then calls.

Postgres plans an ordinary statement at every execution; a client avoids that by preparing it, which a
transaction pooler (PgBouncer before 1.21) rules out, as it hands each transaction to any server connection. A
PL/pgSQL function's statements are planned once per server connection and kept, and server connections outlive
transactions. So each hot statement becomes `zart_hot_<label>_<hash>(...)`, whose body is the statement as the
code has it (`RETURN QUERY <statement>`) and whose result is a composite type of the same name with the
statement's own columns (read from Postgres's description of it): one code path for direct and pooled connections.

Run by `zart migrate` after the migrations: missing functions are created; after a migration every function is
made again (a column's type may have changed). Functions of earlier code are left in place, so its workers keep
theirs during a rolling deployment.
"""

from __future__ import annotations

import logging
from typing import Any

from psycopg import pq
from sqlalchemy import create_engine, pool

# the modules whose hot statements are installed (imported for their declarations)
from zart.store import executions, flow, remote, steps  # noqa: F401
from zart.store.db import CONNECT_TIMEOUT
from zart.store.sql import HOT_FUNCTION_OPTIONS, HOT_STATEMENTS, function_name, positional

log = logging.getLogger(__name__)

_DESCRIBED = b"zart_hot_describe"
# one installer at a time per database (two `zart migrate` racing would create the same type twice)
_INSTALL_LOCK = "SELECT pg_advisory_xact_lock(hashtext('zart_hot_statements'))"
_TYPE_NAMES = (
    "SELECT format_type(t.oid, t.mod) FROM unnest(%s::oid[], %s::integer[]) WITH ORDINALITY AS t(oid, mod, n) "
    "ORDER BY t.n"
)
_EXISTS = "SELECT to_regtype(%(name)s) IS NOT NULL AND EXISTS (SELECT 1 FROM pg_proc WHERE proname = %(name)s)"


def install(database_url: str, refresh: bool = False) -> int:
    """Create the hot statements' functions missing from the database (all of them when `refresh`); returns how
    many were created."""
    engine = create_engine(database_url, poolclass=pool.NullPool, connect_args={"connect_timeout": CONNECT_TIMEOUT})
    created = 0
    try:
        with engine.begin() as conn:
            driver: Any = conn.connection.driver_connection
            driver.execute(_INSTALL_LOCK)
            for statement in HOT_STATEMENTS:
                name = function_name(statement)
                if not refresh and driver.execute(_EXISTS, {"name": name}).fetchone()[0]:
                    continue
                driver.execute(definition(driver, name, statement))
                created += 1
    finally:
        engine.dispose()
    return created


def definition(driver: Any, name: str, statement: str) -> str:
    """The SQL that (re)creates the function `name` and its result type for `statement`."""
    body, names = positional(statement)
    arguments, columns = _describe(driver, body)
    assert len(arguments) == len(names), f"{name}: {len(names)} placeholders, {len(arguments)} parameters"
    fields = ", ".join(f'"{column}" {kind}' for column, kind in columns)
    return f"""
        DROP FUNCTION IF EXISTS {name}({", ".join(arguments)});
        DROP TYPE IF EXISTS {name};
        CREATE TYPE {name} AS ({fields});
        CREATE FUNCTION {name}({", ".join(arguments)}) RETURNS SETOF {name} LANGUAGE plpgsql
        {HOT_FUNCTION_OPTIONS} AS $zart$
        BEGIN
            RETURN QUERY {body};
        END
        $zart$;
    """


def _describe(driver: Any, body: str) -> tuple[list[str], list[tuple[str, str]]]:
    """The statement's parameter types and its result columns (name, type), as Postgres infers them."""
    pgconn = driver.pgconn
    prepared = pgconn.prepare(_DESCRIBED, body.encode())
    if prepared.status != pq.ExecStatus.COMMAND_OK:
        raise RuntimeError(f"cannot install a hot statement: {prepared.error_message.decode()}\n{body}")
    try:
        described = pgconn.describe_prepared(_DESCRIBED)
        parameters = [described.param_type(i) for i in range(described.nparams)]
        fields = range(described.nfields)
        names = [described.fname(i).decode() for i in fields]
        result = [described.ftype(i) for i in fields], [described.fmod(i) for i in fields]
    finally:
        pgconn.exec_(b"DEALLOCATE " + _DESCRIBED)
    arguments = [row[0] for row in driver.execute(_TYPE_NAMES, (parameters, [-1] * len(parameters))).fetchall()]
    kinds = [row[0] for row in driver.execute(_TYPE_NAMES, result).fetchall()]
    return arguments, list(zip(names, kinds, strict=True))
