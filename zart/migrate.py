"""Apply the Alembic migrations programmatically (what `zart migrate` and the tests call)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, pool

import migrations
from zart.config import schema_of
from zart.store import hot
from zart.store.db import CONNECT_TIMEOUT


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(Path(migrations.__file__).parent))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def pending_revisions(database_url: str) -> list[str]:
    """Revisions not yet applied, oldest first."""
    config = alembic_config(database_url)
    script = ScriptDirectory.from_config(config)
    engine = create_engine(database_url, poolclass=pool.NullPool, connect_args={"connect_timeout": CONNECT_TIMEOUT})
    try:
        with engine.connect() as conn:
            options = {"version_table_schema": schema_of(database_url)}
            current = set(MigrationContext.configure(conn, opts=options).get_current_heads())
    finally:
        engine.dispose()
    pending = []
    for revision in script.walk_revisions():
        if revision.revision in current:
            break
        pending.append(revision.revision)
    return list(reversed(pending))


def upgrade(database_url: str) -> int:
    """Bring the schema to head, and install the per-step statements' functions for this code (see
    zart.store.hot); returns how many migrations were applied (0 when up to date)."""
    pending = pending_revisions(database_url)
    if pending:
        command.upgrade(alembic_config(database_url), "head")
    hot.install(database_url, refresh=bool(pending))
    return len(pending)
