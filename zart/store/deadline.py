"""A client-side bound on how long a request may hold a database connection.

psycopg has no read timeout: a statement sent to a server that stopped answering without closing its
connections (a stopped process or VM, a partition nobody has noticed yet) waits forever. Nothing on the
server bounds that (`statement_timeout` is enforced by the process that is stopped), and the kernel keeps
acknowledging data and keepalive probes for a process that is merely stopped, so libpq's keepalives and
`tcp_user_timeout` do not either. So a request handler opens a scope (`enter(seconds)`, then `leave`): every
connection it checks out of a zart pool is watched, and one still out when its time is up has its socket shut
down. The statement waiting on it then fails as on a lost connection (StoreUnavailable: the API's 503), and the
pool replaces the connection.

`watching` bounds one call on a connection no pool hands out: the LISTEN connection's set-up and its check that it
is alive.
A CLI command that talks to the database opens a scope too (zart.cli.connect). Workers open none, and nothing of
theirs is watched.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import math
import os
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)


@dataclass
class Scope:
    seconds: float
    cut: bool = False  # set when one of the scope's connections was shut down


@dataclass
class _Watch:
    until: float
    fd: int  # our own descriptor of the connection's socket
    scope: Scope = field(repr=False)


_current: contextvars.ContextVar[Scope | None] = contextvars.ContextVar("zart_database_deadline", default=None)
_condition = threading.Condition()
_watched: dict[int, _Watch] = {}  # id(connection record) -> its watch
_watcher: threading.Thread | None = None
_wakes_at = math.inf  # when the watcher looks next: a watch due later needs no wake-up (most are)


def enter(seconds: float) -> contextvars.Token[Scope | None]:
    """Bound each connection checked out from now on, in this context, to `seconds`; `leave` ends it."""
    return _current.set(Scope(seconds))


def leave(token: contextvars.Token[Scope | None]) -> None:
    _current.reset(token)


def cut_in_this_scope() -> float | None:
    """The bound, if the current scope had a connection shut down for outliving it (else None)."""
    scope = _current.get()
    return scope.seconds if scope is not None and scope.cut else None


def arm(dbapi_connection: Any, record: Any, proxy: Any) -> None:
    """Pool checkout: watch the connection if a scope is open."""
    scope = _current.get()
    if scope is not None:
        _watch_connection(dbapi_connection, record, scope)


@contextlib.contextmanager
def watching(connection: Any, seconds: float) -> Iterator[None]:
    """Watch one connection that no pool hands out (the LISTEN connection's check) for `seconds`."""
    key = object()
    _watch_connection(connection, key, Scope(seconds))
    try:
        yield
    finally:
        disarm(connection, key)


def _watch_connection(connection: Any, key: object, scope: Scope) -> None:
    """Watch `connection` under `key` until the scope's time is up. Its socket is duplicated, so that the watcher
    shuts down this very socket even if libpq has closed (and the process reused) its descriptor since."""
    try:
        fd = os.dup(connection.fileno())
    except Exception:  # a connection closed on our side: its next use fails at once, unwatched
        return
    watch = _Watch(time.monotonic() + scope.seconds, fd, scope)
    with _condition:
        previous = _watched.pop(id(key), None)
        _watched[id(key)] = watch
        _start_watcher()
        if watch.until < _wakes_at:
            _condition.notify()
    if previous is not None:
        os.close(previous.fd)


def disarm(dbapi_connection: Any, record: Any, *_: Any) -> None:
    """Pool checkin or invalidation: the connection is no longer the request's."""
    with _condition:
        watch = _watched.pop(id(record), None)
    if watch is not None:
        os.close(watch.fd)


def _start_watcher() -> None:
    global _watcher
    if _watcher is None or not _watcher.is_alive():
        _watcher = threading.Thread(target=_watch, name="zart-db-deadline", daemon=True)
        _watcher.start()


def _watch() -> None:
    global _wakes_at
    while True:
        with _condition:
            now = time.monotonic()
            expired = [key for key, watch in _watched.items() if watch.until <= now]
            if not expired:
                _wakes_at = min((watch.until for watch in _watched.values()), default=math.inf)
                _condition.wait(None if _wakes_at == math.inf else _wakes_at - now)
                _wakes_at = -math.inf  # awake: anything armed meanwhile is seen on the next pass
                continue
            due = [_watched.pop(key) for key in expired]
        for watch in due:
            watch.scope.cut = True
            log.warning("the database did not answer within %gs: closing the connection", watch.scope.seconds)
            with socket.socket(fileno=watch.fd) as sock, contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


def _forget_after_fork() -> None:
    """The watcher thread does not survive a fork; the parent's watches are not the child's business."""
    global _condition, _watcher, _wakes_at
    _condition = threading.Condition()
    _wakes_at = math.inf
    for watch in _watched.values():
        with contextlib.suppress(OSError):
            os.close(watch.fd)
    _watched.clear()
    _watcher = None


os.register_at_fork(after_in_child=_forget_after_fork)
