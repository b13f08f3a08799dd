"""The migrations produce exactly the schema the code declares, and applying them is idempotent."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, pool

from tests.harness import fresh_database
from zart.localservices import LocalPostgres
from zart.migrate import pending_revisions, upgrade
from zart.store.tables import metadata


def _fresh_database(postgres: LocalPostgres, name: str) -> str:
    return fresh_database(postgres.port, name)


def test_upgrade_on_empty_database_matches_declared_tables(postgres):
    url = _fresh_database(postgres, "zart_schema_check")
    pending = pending_revisions(url)
    assert pending
    assert upgrade(url) == len(pending)
    assert upgrade(url) == 0
    engine = create_engine(url, poolclass=pool.NullPool)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True, "compare_server_default": True})
            differences = compare_metadata(context, metadata)
    finally:
        engine.dispose()
    assert differences == []


def test_maintained_counts_agree_with_the_table(service, worker, log_dir):
    from sqlalchemy import text

    from zart.store import counts, db

    ids = [service.schedule("t.three-steps", {"journal": str(log_dir / "j")}).execution["execution_id"]]
    ids.append(service.schedule("t.fails", {}).execution["execution_id"])
    waiting = service.schedule("t.event", {"journal": str(log_dir / "k")}).execution["execution_id"]
    for execution_id in ids:
        assert service.wait(execution_id, 30)[0]
    service.cancel(waiting)

    def agree() -> None:
        engine = db.get_engine(service.settings.database_url)
        with engine.connect().execution_options(isolation_level="REPEATABLE READ") as conn, conn.begin():
            raw = dict(conn.execute(text("SELECT status, count(*) FROM executions GROUP BY status")).all())
            assert {s: n for s, n in counts.by_status(conn).items() if n} == raw
            raw_task = conn.execute(text("SELECT count(*) FROM executions WHERE task = 't.fails'")).scalar_one()
            assert counts.matching(conn, task="t.fails", status=None) == raw_task
            assert counts.matching(conn, task="t.fails", status="failed") == raw_task

    agree()
    with db.transaction(service.settings.database_url) as conn:
        counts.fold_deltas(conn)
    agree()
    assert service.stats()["cancelled"] >= 1
