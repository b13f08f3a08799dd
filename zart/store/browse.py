"""Browsing executions a page at a time, newest first, by keyset (never OFFSET): a page costs the same at row
one million as at row one, because each page starts where the last one ended in the `created_at` index."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, text

from zart.store.executions import SUMMARY_COLUMNS, status_and_task
from zart.store.sql import rows


def like_prefix(prefix: str) -> str:
    """A LIKE pattern matching ids that start with `prefix` literally (`%`, `_` and `\\` escaped)."""
    escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped + "%"


def page(
    conn: Connection,
    *,
    status: str | None,
    task: str | None,
    created_from: datetime | None,
    created_to: datetime | None,
    id_prefix: str | None,
    older_than: tuple[datetime, str] | None,
    newer_than: tuple[datetime, str] | None,
    limit: int,
) -> list[dict[str, Any]]:
    """Up to `limit` executions matching the filters, newest first, strictly after (or before) a cursor.

    With `newer_than` the page is read upwards from the cursor and returned newest first, so "newer" pages
    cost the same as "older" ones.
    """
    where, params = status_and_task(status, task)
    params["limit"] = limit
    if created_from is not None:
        where.append("e.created_at >= :created_from")
        params["created_from"] = created_from
    if created_to is not None:
        where.append("e.created_at < :created_to")
        params["created_to"] = created_to
    if id_prefix:
        where.append("e.id LIKE :id_pattern")
        params["id_pattern"] = like_prefix(id_prefix)
    upwards = newer_than is not None
    cursor = newer_than if upwards else older_than
    if cursor is not None:
        # the first comparison alone can use the index; the second breaks ties between equal timestamps
        comparison = ">" if upwards else "<"
        where.append(f"e.created_at {comparison}= :cursor_at")
        where.append(f"(e.created_at {comparison} :cursor_at OR e.id {comparison} :cursor_id)")
        params["cursor_at"], params["cursor_id"] = cursor
    direction = "ASC" if upwards else "DESC"
    found = rows(
        conn,
        text(
            f"SELECT {SUMMARY_COLUMNS} FROM executions e WHERE {' AND '.join(where)} "
            f"ORDER BY e.created_at {direction}, e.id {direction} LIMIT :limit"
        ),
        **params,
    )
    return found[::-1] if upwards else found
