"""The per-step statements run as server-side functions that `zart migrate` installs (so Postgres plans them once
per server connection, also behind a transaction pooler); a database without them still works."""

from __future__ import annotations

import psycopg
from sqlalchemy import text

from tests.harness import fresh_database
from zart.migrate import upgrade
from zart.store import db, executions, hot
from zart.store.sql import HOT_STATEMENTS, function_name


def installed(url: str) -> set[str]:
    with db.autocommit(url) as conn:
        return set(conn.execute(text("SELECT proname FROM pg_proc WHERE proname LIKE 'zart_hot_%'")).scalars())


def test_migrate_installs_every_hot_statement_and_workers_call_it(postgres):
    url = fresh_database(postgres.port, "zart_hot_install")
    upgrade(url)
    assert installed(url) == {function_name(statement) for statement in HOT_STATEMENTS}
    assert hot.install(url) == 0  # present already: nothing made again
    with db.transaction(url) as conn:
        conn.execute(text("SET LOCAL track_functions = 'pl'"))
        assert executions.finish(conn, "no-such-execution", status="completed", token="t") is None
        calls = conn.execute(
            text("SELECT calls FROM pg_stat_xact_user_functions WHERE funcname = :name"),
            {"name": function_name(executions._FINISH.text)},
        ).scalar()
    assert calls == 1
    db.dispose_all()


def test_a_database_without_the_functions_runs_the_statements_as_they_are(postgres, caplog):
    url = fresh_database(postgres.port, "zart_hot_missing")
    upgrade(url)
    name = function_name(executions._FINISH.text)
    with psycopg.connect(url.replace("+psycopg", ""), autocommit=True) as conn:
        conn.execute(f"DROP FUNCTION {name}")
    with db.autocommit(url) as conn:
        assert executions.finish(conn, "no-such-execution", status="completed", token="t") is None
    assert f"{name} is not installed in this database: run `zart migrate`" in caplog.text
    upgrade(url)  # up to date, but the missing function is made again
    assert name in installed(url)
    db.dispose_all()
