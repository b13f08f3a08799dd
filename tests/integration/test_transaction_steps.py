"""`ctx.transaction`: the body's writes and the step's checkpoint commit together, on real workers, SIGKILLed
inside the body (before the commit) and just after it."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest
from sqlalchemy import create_engine

from tests.harness import Environment, poll
from tests.workflows import entries
from zart import appconfig

LEDGER_IMPORTS = "tests.workflows,tests.reliability_workflows,tests.apps.ledger"


@pytest.fixture(scope="module")
def ledger(env: Environment) -> Iterator[None]:
    from tests.apps.ledger import LEDGER_DDL

    with psycopg.connect(libpq(env.database_url), autocommit=True) as conn:
        conn.execute(LEDGER_DDL)
    yield


def libpq(url: str) -> str:
    return url.replace("+psycopg", "")


def app_engine_url(env: Environment) -> str:
    """The same database under another spelling, as an app's own configuration would name it."""
    return env.database_url.replace("127.0.0.1", "localhost")


def ledger_rows(env: Environment, execution_id: str) -> list[int]:
    with psycopg.connect(libpq(env.database_url)) as conn:
        found = conn.execute("SELECT amount FROM ledger_entries WHERE execution_id = %s", (execution_id,))
        return [row[0] for row in found]


def step_row(env: Environment, execution_id: str, name: str) -> tuple | None:
    with psycopg.connect(libpq(env.database_url)) as conn:
        return conn.execute(
            "SELECT kind, status, output FROM steps WHERE execution_id = %s AND name = %s", (execution_id, name)
        ).fetchone()


def ledger_worker(start_worker, env: Environment, **overrides: str):  # type: ignore[no-untyped-def]
    return start_worker(
        concurrency=1, ZART_IMPORTS=LEDGER_IMPORTS, LEDGER_APP_DATABASE_URL=app_engine_url(env), **overrides
    )


def test_sigkill_before_the_commit_runs_the_body_again_and_writes_once(env, ledger, service, start_worker, log_dir):
    journal = str(log_dir / "debit.j")
    execution_id = "debit-killed-inside"
    first = ledger_worker(start_worker, env)
    service.schedule(
        "ledger.debit",
        {"journal": journal, "amount": 10, "hold_in_body": str(log_dir / "never")},
        execution_id=execution_id,
    )
    poll(lambda: entries(journal, "debit-holding") == 1, what="the body to write and hold")
    assert ledger_rows(env, execution_id) == []  # written in the open transaction only
    first.kill()
    ledger_worker(start_worker, env)
    done, row = service.wait(execution_id, 30)
    assert done and row["status"] == "completed" and row["output"] == {"debited": 10}
    assert entries(journal, "debit") == 2  # the body ran again after the crash
    assert ledger_rows(env, execution_id) == [-10]  # but its write is there once
    assert step_row(env, execution_id, "debit") == ("transaction", "completed", {"debited": 10})


def test_sigkill_after_the_commit_does_not_run_the_body_again(env, ledger, service, start_worker, log_dir):
    journal = str(log_dir / "debit.j")
    execution_id = "debit-killed-after"
    first = ledger_worker(start_worker, env)
    service.schedule(
        "ledger.debit",
        {"journal": journal, "amount": 7, "hold_after": str(log_dir / "never")},
        execution_id=execution_id,
    )
    poll(lambda: entries(journal, "after-holding") == 1, what="the step after the debit to start")
    assert ledger_rows(env, execution_id) == [-7]
    first.kill()
    ledger_worker(start_worker, env)
    done, row = service.wait(execution_id, 30)
    assert done and row["output"] == {"debited": 7}
    assert entries(journal, "debit") == 1 and entries(journal, "after") == 2
    assert ledger_rows(env, execution_id) == [-7]


def test_a_worker_that_lost_its_lease_inside_the_body_commits_nothing(env, ledger, service, start_worker, log_dir):
    """Frozen inside the body past its lease: a second worker takes over and debits; the first, thawed,
    finds its fence gone and rolls its own debit back."""
    journal = str(log_dir / "debit.j")
    release = log_dir / "release"
    execution_id = "debit-frozen"
    first = ledger_worker(start_worker, env)
    service.schedule(
        "ledger.debit", {"journal": journal, "amount": 3, "hold_in_body": str(release)}, execution_id=execution_id
    )
    poll(lambda: entries(journal, "debit-holding") == 1, what="the body to write and hold")
    first.freeze()
    ledger_worker(start_worker, env)
    done, row = service.wait(execution_id, 30)
    assert done and row["output"] == {"debited": 3}
    release.touch()
    first.thaw()
    poll(lambda: entries(journal, "debit") == 2, what="both bodies to have run")
    poll(lambda: "lease-lost" in first.log_path.read_text(), what="the first worker to give up its run")
    assert ledger_rows(env, execution_id) == [-3]


def test_an_app_engine_on_another_database_is_refused_clearly(env, postgres, ledger, service, start_worker, log_dir):
    with psycopg.connect(f"postgresql://postgres@127.0.0.1:{postgres.port}/postgres", autocommit=True) as admin:
        if not admin.execute("SELECT 1 FROM pg_database WHERE datname = 'ledger_elsewhere'").fetchone():
            admin.execute("CREATE DATABASE ledger_elsewhere")
    elsewhere = f"postgresql+psycopg://postgres@127.0.0.1:{postgres.port}/ledger_elsewhere"
    start_worker(concurrency=1, ZART_IMPORTS=LEDGER_IMPORTS, LEDGER_APP_DATABASE_URL=elsewhere)
    execution_id = "debit-elsewhere"
    service.schedule("ledger.debit", {"journal": str(log_dir / "d.j"), "amount": 1}, execution_id=execution_id)
    done, row = service.wait(execution_id, 30)
    assert done and row["status"] == "failed"
    assert "ledger_elsewhere" in row["error"]["message"] and "zart's store" in row["error"]["message"]
    assert entries(str(log_dir / "d.j"), "debit") == 0  # the body never ran


@pytest.mark.parametrize("driver", ["psycopg", "psycopg2"])
def test_a_failed_attempt_rolls_its_write_back_and_the_retry_writes_once(
    env, ledger, zart_workflows, log_dir, driver
):
    """In-process (zart.testing): the 30 s back-off passes at once; the app engine is a connection factory, on
    either driver an app may use (psycopg2 is SQLAlchemy's default for `postgresql://`)."""
    import tests.apps.ledger  # noqa: F401  (registers the workflow)

    engine = create_engine(app_engine_url(env).replace("+psycopg", f"+{driver}", 1))
    assert engine.dialect.driver == driver
    appconfig.configure(app_engine=engine.connect)
    journal = str(log_dir / f"flaky-{driver}.j")
    execution_id = f"debit-flaky-{driver}"
    try:
        output = zart_workflows.run("ledger.flaky-debit", {"journal": journal, "amount": 5}, id=execution_id)
    finally:
        appconfig.reset()
        engine.dispose()
    assert output == {"debited": 5}
    assert entries(journal, "debit") == 2
    assert ledger_rows(env, execution_id) == [-5]
    (debit,) = zart_workflows.service.steps(execution_id)
    assert (debit["kind"], debit["attempts"], debit["failures"]) == ("transaction", 2, 1)
    assert [a["outcome"] for a in debit["attempts_detail"]] == ["failed", "completed"]
