"""Joining an application's own SQLAlchemy transaction, and acting only once it has committed.

An app hands zart its `Session` (Flask-SQLAlchemy's `db.session` included) or `Connection`; zart writes its rows
on that connection, inside the app's transaction, and rings the doorbell only after the app's outermost
transaction commits (releasing a savepoint is no commit). A rollback, of the transaction or of a savepoint
around the call, takes the rows and the doorbell with it. Should the process die between the commit and the
publish, the workers' sweeper publishes the committed row anyway.
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, event
from sqlalchemy.orm import Session, scoped_session

from zart.store import db, identity

log = logging.getLogger(__name__)

AfterCommit = Callable[[], object]

# A bare Connection's "commit" event fires just before the COMMIT is sent: the callbacks then wait, off the
# caller's thread, until the database says the transaction committed (or gave up on it).
COMMIT_WATCH_SECONDS = 10.0
COMMIT_WATCH_INTERVAL = 0.002


@dataclass(frozen=True)
class Joined:
    """The app's connection, inside its transaction, and how to run something once that transaction commits."""

    conn: Connection
    after_commit: Callable[[AfterCommit], None]


def join(target: Any, database_url: str) -> Joined:
    """The app's Session or Connection as a connection in its open transaction (beginning one if needed)."""
    if isinstance(target, scoped_session):
        target = target()
    if isinstance(target, Session):
        conn = target.connection()
        identity.check_same_database(conn, database_url)
        return Joined(conn, lambda callback: _after_session_commit(target, callback))
    if isinstance(target, Connection):
        identity.check_same_database(target, database_url)
        if _autocommits(target):
            return Joined(target, lambda callback: callback())
        if not target.in_transaction():
            target.begin()
        return Joined(target, lambda callback: _after_connection_commit(target, callback, database_url))
    raise TypeError(
        f"connection= takes a SQLAlchemy Session (db.session works) or Connection, not {type(target).__name__}"
    )


# ---------------------------------------------------------------- after a Session commits

_SESSION_PENDING = "zart_after_commit"


def _after_session_commit(session: Session, callback: AfterCommit) -> None:
    # the innermost savepoint open now: rolling it (or one around it) back takes the callback back too
    scope = session.get_nested_transaction()
    session.info.setdefault(_SESSION_PENDING, []).append((scope, callback))
    if not event.contains(session, "after_commit", _session_committed):
        event.listen(session, "after_commit", _session_committed)
        event.listen(session, "after_soft_rollback", _session_rolled_back)
        event.listen(session, "after_transaction_end", _session_transaction_ended)


def _session_committed(session: Session) -> None:
    """`after_commit` fires for a released savepoint too: only the outermost commit makes the rows visible."""
    if session.in_nested_transaction():
        return
    for _, callback in session.info.pop(_SESSION_PENDING, []):
        _run(callback)


def _session_rolled_back(session: Session, transaction: Any) -> None:
    """A savepoint rolled back: forget what was scheduled inside it (the outer transaction may still commit)."""
    pending = session.info.get(_SESSION_PENDING)
    if transaction.nested and pending:
        pending[:] = [(scope, cb) for scope, cb in pending if not _inside(scope, transaction)]


def _inside(scope: Any, transaction: Any) -> bool:
    while scope is not None:
        if scope is transaction:
            return True
        scope = scope.parent
    return False


def _session_transaction_ended(session: Session, transaction: Any) -> None:
    """The outermost transaction ended without a commit (rolled back, or the session closed): forget it all."""
    if transaction.parent is None:
        session.info.pop(_SESSION_PENDING, None)


# ---------------------------------------------------------------- after a Connection commits

_connection_pending: weakref.WeakKeyDictionary[Connection, list[tuple[int, str, AfterCommit, frozenset[str]]]] = (
    weakref.WeakKeyDictionary()
)


def _after_connection_commit(conn: Connection, callback: AfterCommit, database_url: str) -> None:
    xid = identity.current_transaction_id(conn)
    _connection_pending.setdefault(conn, []).append((xid, database_url, callback, _open_savepoints(conn)))
    if not event.contains(conn, "commit", _connection_committing):
        event.listen(conn, "commit", _connection_committing)
        event.listen(conn, "rollback", _connection_rolled_back)
        event.listen(conn, "rollback_savepoint", _connection_savepoint_rolled_back)


def _open_savepoints(conn: Connection) -> frozenset[str]:
    """The names of the connection's savepoints open now (SQLAlchemy chains each to the one it is in; a name is
    never reused on one connection)."""
    found = []
    nested = conn.get_nested_transaction()
    while nested is not None:
        found.append(nested._savepoint)
        nested = nested._previous_nested
    return frozenset(found)


def _connection_committing(conn: Connection) -> None:
    pending = [(xid, url, callback) for xid, url, callback, _ in _connection_pending.pop(conn, [])]
    if pending:
        threading.Thread(target=_when_committed, args=(pending,), name="zart-after-commit", daemon=True).start()


def _connection_rolled_back(conn: Connection) -> None:
    _connection_pending.pop(conn, None)


def _connection_savepoint_rolled_back(conn: Connection, name: str, context: Any) -> None:
    """A savepoint rolled back: forget what was scheduled inside it (the outer transaction may still commit)."""
    pending = _connection_pending.get(conn)
    if pending:
        pending[:] = [entry for entry in pending if name not in entry[3]]


def _when_committed(pending: list[tuple[int, str, AfterCommit]]) -> None:
    """Run the callbacks once the database reports their transaction committed; drop them if it aborted."""
    deadline = time.monotonic() + COMMIT_WATCH_SECONDS
    xid, database_url, _ = pending[0]
    try:
        while time.monotonic() < deadline:
            with db.autocommit(database_url) as conn:
                status = identity.transaction_status(conn, xid)
            if status == "committed":
                for _, _, callback in pending:
                    _run(callback)
                return
            if status != "in progress":
                return
            time.sleep(COMMIT_WATCH_INTERVAL)
    except Exception:
        log.warning("could not confirm the application's commit; the sweeper will dispatch", exc_info=True)


def _autocommits(conn: Connection) -> bool:
    """Whether each statement commits by itself: asked of the driver's connection, which knows it whether it was
    set for this connection (an execution option) or for the whole engine (`create_engine(isolation_level=…)`)."""
    if conn.get_execution_options().get("isolation_level") == "AUTOCOMMIT":
        return True
    return getattr(conn.connection.dbapi_connection, "autocommit", False) is True


def _run(callback: AfterCommit) -> None:
    try:
        callback()
    except Exception:  # the commit stands; a lost doorbell is the sweeper's to ring
        log.warning("an after-commit action failed; the sweeper will follow up", exc_info=True)
