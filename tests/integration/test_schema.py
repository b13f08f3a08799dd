"""The migrations produce exactly the schema the code declares, and applying them is idempotent."""

from __future__ import annotations

import psycopg
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, pool

from zart.localservices import LocalPostgres
from zart.migrate import pending_revisions, upgrade
from zart.store.tables import metadata


def _fresh_database(postgres: LocalPostgres, name: str) -> str:
    with psycopg.connect(f"postgresql://postgres@127.0.0.1:{postgres.port}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    return f"postgresql+psycopg://postgres@127.0.0.1:{postgres.port}/{name}"


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
