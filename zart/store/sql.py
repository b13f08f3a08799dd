"""Small helpers shared by the query modules."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Connection, TextClause


def to_json(value: Any) -> str | None:
    """Serialise for a `CAST(:x AS jsonb)` parameter; None stays SQL NULL."""
    return None if value is None else json.dumps(value, separators=(",", ":"))


def rows(conn: Connection, statement: TextClause, **params: Any) -> list[dict[str, Any]]:
    return [dict(row._mapping) for row in conn.execute(statement, params)]


def one(conn: Connection, statement: TextClause, **params: Any) -> dict[str, Any] | None:
    row = conn.execute(statement, params).first()
    return None if row is None else dict(row._mapping)


def scalar(conn: Connection, statement: TextClause, **params: Any) -> Any:
    return conn.execute(statement, params).scalar()


FINISHED_CHANNEL = "zart_execution_finished"
