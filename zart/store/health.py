"""The cheapest query that proves the database answers (readiness probes)."""

from __future__ import annotations

from sqlalchemy import Connection, text

from zart.store.sql import scalar

_PING = text("SELECT 1")


def ping(conn: Connection) -> bool:
    return scalar(conn, _PING) == 1
