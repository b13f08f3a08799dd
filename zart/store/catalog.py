"""The catalog of registered task names, written by every process that imports workflows."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, text

from zart.store.sql import one, rows, to_json

_UPSERT = text(
    """
    INSERT INTO task_catalog (name, schema, registered_by, first_seen_at, last_seen_at)
    VALUES (:name, CAST(:schema AS jsonb), :by, now(), now())
    ON CONFLICT (name) DO UPDATE
        SET schema = EXCLUDED.schema, registered_by = EXCLUDED.registered_by, last_seen_at = now()
    """
)


def record_tasks(conn: Connection, tasks: list[tuple[str, dict[str, Any] | None]], registered_by: str) -> None:
    for name, schema in tasks:
        conn.execute(_UPSERT, {"name": name, "schema": to_json(schema), "by": registered_by})


_GET = text("SELECT name, schema, registered_by, first_seen_at, last_seen_at FROM task_catalog WHERE name = :name")
_ALL = text("SELECT name, schema, registered_by, first_seen_at, last_seen_at FROM task_catalog ORDER BY name")


def get_task(conn: Connection, name: str) -> dict[str, Any] | None:
    return one(conn, _GET, name=name)


def list_tasks(conn: Connection) -> list[dict[str, Any]]:
    return rows(conn, _ALL)
