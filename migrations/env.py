"""Alembic environment: the URL comes from the caller (zart migrate) or from zart's settings."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine, pool

from zart.config import load_settings, normalise_database_url, schema_of
from zart.store.tables import metadata

config = context.config
url = normalise_database_url(config.get_main_option("sqlalchemy.url") or load_settings().database_url)
# ZART_SCHEMA travels in the URL as the connection's search_path: the tables, the functions and Alembic's
# own version table are all created in that schema
schema = schema_of(url)


def run_migrations_online() -> None:
    connectable = create_engine(url, poolclass=pool.NullPool)
    with connectable.connect() as connection:
        if schema is not None:
            connection.exec_driver_sql(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
            connection.commit()
        context.configure(
            connection=connection,
            target_metadata=metadata,
            transaction_per_migration=True,
            version_table_schema=schema,
        )
        with context.begin_transaction():
            # Two deploys migrating at once must not race: serialise on an advisory lock.
            connection.exec_driver_sql("SELECT pg_advisory_xact_lock(7370302)")
            context.run_migrations()


if context.is_offline_mode():
    context.configure(url=url, target_metadata=metadata, literal_binds=True, version_table_schema=schema)
    with context.begin_transaction():
        context.run_migrations()
else:
    run_migrations_online()
