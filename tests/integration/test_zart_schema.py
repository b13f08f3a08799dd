"""ZART_SCHEMA: zart's tables, functions and migration history in a schema of their own, beside an app whose
own tables use the same names; workflows, app transactions and database steps work as without it."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import psycopg
import pytest

from tests.apps import shop
from tests.apps.ledger import LEDGER_DDL
from tests.harness import REPO, Environment, poll
from zart import appconfig
from zart.registry import Registry
from zart.service import ZartService

SCHEMA = "zart_side"
DATABASE = "schema_side"
APPS = "tests.apps.shop,tests.apps.ledger"


@pytest.fixture(scope="module")
def side_db(postgres) -> str:  # type: ignore[no-untyped-def]
    """A fresh database whose app already has a table called `executions`."""
    with psycopg.connect(f"postgresql://postgres@127.0.0.1:{postgres.port}/postgres", autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {DATABASE}")
        admin.execute(f"CREATE DATABASE {DATABASE}")
    url = f"postgresql+psycopg://postgres@127.0.0.1:{postgres.port}/{DATABASE}"
    with psycopg.connect(libpq(url), autocommit=True) as conn:
        conn.execute("CREATE TABLE executions (id integer PRIMARY KEY, note text NOT NULL)")
        conn.execute("INSERT INTO executions VALUES (1, 'the app''s own')")
        conn.execute(LEDGER_DDL)
    return url


def libpq(url: str) -> str:
    return url.replace("+psycopg", "")


def migrate(env: Environment, url: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "zart", "migrate"],
        cwd=REPO,
        env=env.variables(DATABASE_URL=url, ZART_SCHEMA=SCHEMA),
        capture_output=True,
        text=True,
        timeout=120,
    )


def query(url: str, sql: str, *params: object) -> list[tuple]:
    with psycopg.connect(libpq(url)) as conn:
        return conn.execute(sql, params).fetchall()


@pytest.fixture(scope="module")
def migrated(env: Environment, side_db: str) -> str:
    first = migrate(env, side_db)
    assert first.returncode == 0 and "Applied" in first.stdout, first.stderr
    again = migrate(env, side_db)
    assert again.returncode == 0 and "up to date" in again.stdout, again.stderr
    return side_db


@pytest.fixture()
def configured(env: Environment, migrated: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv("ZART_SCHEMA", SCHEMA)
    appconfig.configure(database_url=migrated, broker_url=env.broker_url)
    yield migrated
    appconfig.reset()


def test_migrations_put_all_of_zart_in_its_schema_and_leave_the_apps_tables_alone(migrated):
    ours = {
        row[0]
        for row in query(migrated, "SELECT table_name FROM information_schema.tables WHERE table_schema = %s", SCHEMA)
    }
    assert {"executions", "steps", "runs", "events", "alembic_version", "execution_counts"} <= ours
    public = {
        row[0]
        for row in query(migrated, "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'")
    }
    assert public == {"executions", "ledger_entries"}  # the app's, nothing of zart's
    assert query(migrated, "SELECT * FROM public.executions") == [(1, "the app's own")]
    functions = query(
        migrated,
        "SELECT n.nspname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE p.proname = %s",
        "zart_count_executions",
    )
    assert functions == [(SCHEMA,)]


def test_workflows_app_transactions_and_database_steps_run_beside_the_apps_tables(
    env, configured, start_worker, unique, log_dir
):
    imports = f"{env.imports},{APPS}"
    start_worker(DATABASE_URL=configured, ZART_SCHEMA=SCHEMA, ZART_IMPORTS=imports, LEDGER_APP_DATABASE_URL=configured)
    service = ZartService(env.settings(DATABASE_URL=configured, ZART_SCHEMA=SCHEMA), registry=Registry())

    plain = service.schedule("t.three-steps", {"journal": str(log_dir / "side.j")}, execution_id=unique("side"))
    done, row = service.wait(plain.execution["execution_id"], 30)
    assert done and row["output"] == {"sum": 6}

    # the app's own session (search_path: public) schedules into zart's schema, in the app's transaction
    client = shop.create_app(configured).test_client()
    order_id = unique("side-order")
    response = client.post("/orders", json={"id": order_id, "amount": 4})
    assert response.status_code == 201, response.get_json()
    done, row = service.wait(response.get_json()["execution_id"], 30)
    assert done and row["output"] == {"order_id": order_id, "status": "fulfilled"}

    # a database step on the app's engine: the app's table in public, the checkpoint in zart's schema
    debit = unique("side-debit")
    service.schedule("ledger.debit", {"journal": str(log_dir / "debit.j"), "amount": 2}, execution_id=debit)
    done, row = service.wait(debit, 30)
    assert done and row["output"] == {"debited": 2}
    assert query(configured, "SELECT amount FROM public.ledger_entries WHERE execution_id = %s", debit) == [(-2,)]
    assert query(configured, f"SELECT kind FROM {SCHEMA}.steps WHERE execution_id = %s AND name = 'debit'", debit) == [
        ("transaction",)
    ]
    assert query(configured, "SELECT * FROM public.executions") == [(1, "the app's own")]
    poll(lambda: service.stats()["completed"] == 3, what="the counts in zart's schema")


def test_a_schema_name_that_is_not_a_plain_identifier_is_refused(env):
    done = subprocess.run(
        [sys.executable, "-m", "zart", "migrate"],
        cwd=REPO,
        env=env.variables(ZART_SCHEMA='zart"; DROP TABLE x; --'),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1 and "ZART_SCHEMA must be a lower-case identifier" in done.stderr
