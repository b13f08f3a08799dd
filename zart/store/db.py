"""Engines and connections: one engine per process and URL, reset after fork, driver errors translated."""

from __future__ import annotations

import contextlib
import functools
import os
import threading
import time
from collections.abc import Iterator
from typing import Any

import psycopg
from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, DisconnectionError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from zart.config import is_pooled, schema_of, without_pooler_mark
from zart.errors import StoreUnavailable
from zart.store import deadline

IDLE_IN_TRANSACTION_MS = 10_000
# seconds a new connection may take to be established: a server that accepts it and never answers (frozen, or
# another service on that port) is then reported as unavailable instead of holding the caller forever
CONNECT_TIMEOUT = 5
_ping_after_idle_seconds = 0.0  # ping on every checkout, unless a worker relaxes it
# what a worker relaxes it to (zart's own workers, and a team's Celery worker reporting remote steps)
WORKER_PING_AFTER_IDLE = 2.0


def ping_only_after_idle(seconds: float) -> None:
    """Workers reuse connections many times a second: ping only those idle longer than `seconds`.

    A stale connection then fails one run at worst, which the sweeper recovers; clients (API, CLI) keep
    pinging every checkout so that a restarted Postgres costs them nothing.
    """
    global _ping_after_idle_seconds
    _ping_after_idle_seconds = seconds


# Connections a process keeps open at rest, and how many more it may open for a burst. A worker process uses
# at most three at once (its run, the run's lease keeper, the sweeper in the main process); a client (API,
# CLI) one per thread serving a request. Workers shrink it at start-up (see size_pool).
_pool_size = 5
_max_overflow = 20


def size_pool(kept: int, burst: int) -> None:
    """Size the pools of engines created from now on: `kept` connections stay open, `burst` more may open."""
    global _pool_size, _max_overflow
    _pool_size, _max_overflow = kept, burst


def pool_budget() -> tuple[int, int]:
    """(kept open at rest, most open at once) per engine, as sized for this process."""
    return _pool_size, _pool_size + _max_overflow


_engines: dict[str, Engine] = {}
_lock = threading.Lock()


def get_engine(database_url: str) -> Engine:
    """The process-wide engine for `database_url` (created lazily, never shared across a fork)."""
    engine = _engines.get(database_url)
    if engine is None:
        with _lock:
            engine = _engines.get(database_url)
            if engine is None:
                engine = create_engine(
                    without_pooler_mark(database_url),
                    pool_size=_pool_size,
                    max_overflow=_max_overflow,
                    pool_pre_ping=False,  # see _ping_if_idle: a round trip per checkout is too dear
                    pool_recycle=1800,
                    connect_args=_connect_args(database_url),
                )
                event.listen(engine, "checkin", _note_checkin)
                event.listen(engine, "checkin", deadline.disarm)
                event.listen(engine, "invalidate", deadline.disarm)
                event.listen(engine, "checkout", deadline.arm)  # before the ping, which may be what hangs
                event.listen(engine, "checkout", functools.partial(_ping_if_idle, engine.dialect))
                _engines[database_url] = engine
    return engine


def _connect_args(database_url: str) -> dict[str, Any]:
    common: dict[str, Any] = {"connect_timeout": CONNECT_TIMEOUT, "application_name": "zart"}
    if is_pooled(database_url):
        # a transaction pooler hands each transaction to any server connection: a statement prepared on one
        # is unknown on the next, and startup options are refused (PgBouncer); the session settings below
        # belong on the database then (ALTER DATABASE ... SET, or the pooler's connect_query)
        return {**common, "prepare_threshold": None}
    # zart's transactions never wait on user code: one idle this long belongs to a frozen or partitioned
    # process, and its locks (the sweeper's, say) must not outlive it; the URL's own options (ZART_SCHEMA's
    # search_path) are kept. JIT is off: every zart query reads few rows, and on a big table the planner's cost
    # estimate for the liveness count alone triggered ~0.1-1 s of JIT compilation to run a ~5 ms scan
    options = f"-c idle_in_transaction_session_timeout={IDLE_IN_TRANSACTION_MS} -c jit=off "
    return {**common, "options": options + _url_options(database_url)}


def _url_options(database_url: str) -> str:
    value = make_url(database_url).query.get("options", "")
    return " ".join(value) if isinstance(value, tuple) else value


@contextlib.contextmanager
def zart_names(conn: Connection, database_url: str) -> Iterator[None]:
    """On a connection that is not zart's own (the app's, inside its transaction), find zart's tables in
    ZART_SCHEMA for the statements inside, and give the app its own search_path back afterwards."""
    schema = schema_of(database_url)
    if schema is None:
        yield
        return
    previous = conn.execute(_CURRENT_PATH).scalar_one()
    conn.execute(_SET_PATH, {"path": f"{schema}, public"})
    try:
        yield
    except BaseException:
        with contextlib.suppress(Exception):  # an aborted transaction restores it by rolling back
            conn.execute(_SET_PATH, {"path": previous})
        raise
    conn.execute(_SET_PATH, {"path": previous})


_CURRENT_PATH = text("SELECT current_setting('search_path')")
_SET_PATH = text("SELECT set_config('search_path', :path, false)")


def _note_checkin(dbapi_connection: Any, record: Any) -> None:
    record.info["checked_in"] = time.monotonic()


def _ping_if_idle(dialect: Any, dbapi_connection: Any, record: Any, proxy: Any) -> None:
    """Ping before use (the server may have restarted); in workers, only connections that sat idle.

    A stale connection raises DisconnectionError, which makes the pool replace it transparently. A connection
    just opened is not pinged: its first statement tells as much, and a failure there is reported as the database
    being unavailable, whereas a failed ping of the replacement too (a pooler accepts the connection while
    Postgres is down) ended the pool's retries with an error that is none of the driver's.
    """
    checked_in = record.info.get("checked_in")
    if checked_in is None or time.monotonic() - checked_in < _ping_after_idle_seconds:
        return
    try:
        dialect.do_ping(dbapi_connection)
    except Exception as exc:
        raise DisconnectionError(str(exc)) from exc


def _forget_engines_after_fork() -> None:
    """A forked child must not use its parent's sockets: drop the pools without closing them."""
    for engine in _engines.values():
        engine.dispose(close=False)
    _engines.clear()


os.register_at_fork(after_in_child=_forget_engines_after_fork)


def dispose_all() -> None:
    with _lock:
        for engine in _engines.values():
            engine.dispose()
        _engines.clear()


@contextlib.contextmanager
def translated_errors() -> Iterator[None]:
    """Turn a lost or refused database connection, or a missing or outdated schema, into StoreUnavailable."""
    try:
        yield
    except OperationalError as exc:
        raise StoreUnavailable(_unavailable(f"database unavailable: {_first_line(exc)}{_pooler_hint(exc)}")) from exc
    except PoolTimeout as exc:  # every connection of the pool is held by a statement the database is slow to answer
        raise StoreUnavailable("database unavailable: every connection of this process's pool is in use") from exc
    except psycopg.errors.InvalidSqlStatementName as exc:  # raised outside SQLAlchemy by the per-step path
        raise StoreUnavailable(f"database error: {_first_line(exc)}{_pooler_hint(exc)}") from exc
    except DBAPIError as exc:
        if isinstance(exc.orig, PREPARED_ELSEWHERE):
            raise StoreUnavailable(f"database error: {_first_line(exc)}{_pooler_hint(exc)}") from exc
        if exc.connection_invalidated:
            raise StoreUnavailable(_unavailable(f"database connection lost: {_first_line(exc)}")) from exc
        if isinstance(exc.orig, (psycopg.errors.UndefinedTable, psycopg.errors.UndefinedColumn)):
            raise StoreUnavailable(
                f"the database lacks zart's schema ({_first_line(exc)}); run `zart migrate`"
            ) from exc
        raise


def _unavailable(message: str) -> str:
    """The message, unless the connection was lost because the deadline shut it down: then say so."""
    bound = deadline.cut_in_this_scope()
    return message if bound is None else f"database unavailable: no answer within {bound:g}s"


@contextlib.contextmanager
def transaction(database_url: str) -> Iterator[Connection]:
    """A short transaction: commit on success, roll back on error."""
    with translated_errors(), get_engine(database_url).begin() as conn:
        yield conn


@contextlib.contextmanager
def autocommit(database_url: str) -> Iterator[Connection]:
    """A connection in autocommit mode: each single statement is its own transaction (one round trip)."""
    engine = get_engine(database_url)
    with translated_errors(), engine.connect() as conn:
        conn = conn.execution_options(isolation_level="AUTOCOMMIT")
        yield conn


# what a statement prepared on one server connection and used on another (a transaction pooler) raises
PREPARED_ELSEWHERE = (psycopg.errors.InvalidSqlStatementName, psycopg.errors.DuplicatePreparedStatement)
POOLER_HINT = (
    "; the database URL seems to go through a transaction pooler (PgBouncer): set ZART_POOLER=transaction and "
    "ZART_DIRECT_DATABASE_URL (a URL straight to PostgreSQL)"
)


def _pooler_hint(exc: BaseException) -> str:
    """A pooler's refusal of startup options, or a prepared statement lost between connections, says what to set."""
    orig = getattr(exc, "orig", None) or exc
    if isinstance(orig, PREPARED_ELSEWHERE) or "unsupported startup parameter" in str(orig):
        return POOLER_HINT
    return ""


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc)
    return text.strip().splitlines()[0] if text.strip() else type(exc).__name__
