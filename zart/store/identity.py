"""Which database a connection reaches, and what became of a transaction: for joining an app's transaction."""

from __future__ import annotations

import threading
import weakref
from typing import NamedTuple

from sqlalchemy import Connection, Engine, text
from sqlalchemy.engine import make_url

from zart.errors import ConfigurationError
from zart.store import db
from zart.store.sql import one, scalar


class DatabaseIdentity(NamedTuple):
    """Equal for two connections exactly when they reach the same database of the same running server."""

    name: str
    oid: int
    server_started: str


_IDENTITY = text(
    """
    SELECT current_database() AS name, d.oid::bigint AS oid, pg_postmaster_start_time()::text AS server_started
    FROM pg_database d WHERE d.datname = current_database()
    """
)


def database_identity(conn: Connection) -> DatabaseIdentity:
    row = one(conn, _IDENTITY)
    assert row is not None
    return DatabaseIdentity(row["name"], int(row["oid"]), row["server_started"])


_CURRENT_XID = text("SELECT pg_current_xact_id()::text::bigint")
_XACT_STATUS = text("SELECT pg_xact_status(CAST(CAST(:xid AS text) AS xid8))")


def current_transaction_id(conn: Connection) -> int:
    """The id of the connection's open transaction (assigning one if it has written nothing yet)."""
    return int(scalar(conn, _CURRENT_XID))


def transaction_status(conn: Connection, xid: int) -> str | None:
    """'committed', 'aborted' or 'in progress' (None once the id is too old to tell)."""
    value = scalar(conn, _XACT_STATUS, xid=xid)
    return None if value is None else str(value)


_checked: weakref.WeakKeyDictionary[Engine, str] = weakref.WeakKeyDictionary()
_checked_lock = threading.Lock()


def check_same_database(source: Engine | Connection, database_url: str) -> None:
    """Refuse an engine that does not reach zart's own database (checked once per engine, then remembered).

    Given the app's connection, the question is asked on it (a read inside its transaction): a second
    connection from the app's pool may not come while the app's requests hold every one."""
    engine = source.engine if isinstance(source, Connection) else source
    with _checked_lock:
        if _checked.get(engine) == database_url:
            return
    if isinstance(source, Connection):
        theirs = database_identity(source)
    else:
        with db.translated_errors(), engine.connect() as conn:
            theirs = database_identity(conn)
    with db.autocommit(database_url) as conn:
        ours = database_identity(conn)
    if theirs != ours:
        raise ConfigurationError(
            f"the application's engine reaches database '{theirs.name}' ({engine.url.render_as_string()}), "
            f"but zart's store is database '{ours.name}' ({make_url(database_url).render_as_string()}): zart "
            "joins only transactions on its own database (point DATABASE_URL at the application's database)"
        )
    with _checked_lock:
        _checked[engine] = database_url
