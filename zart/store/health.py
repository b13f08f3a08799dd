"""The cheapest query that proves the database answers, and holds zart's tables (readiness probes)."""

from __future__ import annotations

from sqlalchemy import Connection, text

from zart.store.sql import scalar

# planned against zart's executions table and reading no row of it: a DATABASE_URL that names another database,
# or one never migrated, answers `SELECT 1` as well, while every request would fail on it
_PING = text("SELECT 1 + count(*) FROM (SELECT FROM executions LIMIT 0) AS zart_table")


def ping(conn: Connection) -> bool:
    return scalar(conn, _PING) == 1
