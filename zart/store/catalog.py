"""The catalog of registered task names, written by every process that imports workflows."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, text

from zart.store.sql import one, rows, to_json

_UPSERT = text(
    """
    INSERT INTO task_catalog AS t (name, schema, timeout_seconds, queue, flow_limit, priority, registered_by,
                                   first_seen_at, last_seen_at, declared_generation)
    VALUES (:name, CAST(:schema AS jsonb), :timeout, :queue, :flow_limit, :priority, :by, now(), now(), :generation)
    ON CONFLICT (name) DO UPDATE
        SET schema = EXCLUDED.schema, timeout_seconds = EXCLUDED.timeout_seconds, queue = EXCLUDED.queue,
            flow_limit = EXCLUDED.flow_limit, priority = EXCLUDED.priority, registered_by = EXCLUDED.registered_by,
            last_seen_at = now(), declared_generation = EXCLUDED.declared_generation
        -- an entry written by a newer declaration set (the task moved to another module) is left as it is
        WHERE EXCLUDED.declared_generation IS NULL OR t.declared_generation IS NULL
              OR t.declared_generation <= EXCLUDED.declared_generation
    """
)


def record_tasks(conn: Connection, tasks: list[dict[str, Any]], registered_by: str) -> None:
    """Each task as {name, schema, timeout_seconds, queue, flow_limit?, priority?, generation?} (the generation
    of the declaration set it comes from: an entry a newer set wrote is not rewritten)."""
    for task in tasks:
        conn.execute(
            _UPSERT,
            {
                "name": task["name"],
                "schema": to_json(task["schema"]),
                "timeout": task["timeout_seconds"],
                "queue": task.get("queue"),
                "flow_limit": task.get("flow_limit"),
                "priority": task.get("priority"),
                "by": registered_by,
                "generation": task.get("generation"),
            },
        )


_SEEN = text("UPDATE task_catalog SET registered_by = :by, last_seen_at = now() WHERE name = ANY(:names)")


def record_seen(conn: Connection, names: list[str], registered_by: str) -> None:
    """Note that a worker runs these tasks without rewriting their entries (newer code declared them)."""
    if names:
        conn.execute(_SEEN, {"names": names, "by": registered_by})


_COLUMNS = "name, schema, timeout_seconds, queue, flow_limit, priority, registered_by, first_seen_at, last_seen_at"
_GET = text(f"SELECT {_COLUMNS} FROM task_catalog WHERE name = :name")
_ALL = text(f"SELECT {_COLUMNS} FROM task_catalog ORDER BY name")


def get_task(conn: Connection, name: str) -> dict[str, Any] | None:
    return one(conn, _GET, name=name)


def list_tasks(conn: Connection) -> list[dict[str, Any]]:
    return rows(conn, _ALL)


_ANY_ROUTED = text("SELECT EXISTS (SELECT 1 FROM task_catalog WHERE queue IS NOT NULL)")


def any_routed(conn: Connection) -> bool:
    """Whether any registered task sends its executions to a queue of its own."""
    return bool(conn.execute(_ANY_ROUTED).scalar())


_ROUTED_QUEUES = text("SELECT DISTINCT queue FROM task_catalog WHERE queue IS NOT NULL ORDER BY queue")


def routed_queues(conn: Connection) -> list[str]:
    """The queues registered tasks send their executions to, besides the default one."""
    return [row[0] for row in conn.execute(_ROUTED_QUEUES)]
