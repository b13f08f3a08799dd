"""Notifications: one LISTEN connection per process and channel fans out to any number of waiters.

Waiters hold a `threading.Event`, not a database connection. When the listening connection drops, every
waiter is woken so it re-reads the truth from the table; polling remains only as a fallback. Two channels use
it: an execution finished (for `wait`), and a remote step's outcome was recorded (for a run holding its claim).
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
import uuid
from collections import defaultdict
from datetime import datetime
from typing import Any

import psycopg

from zart.store import deadline
from zart.store.sql import FINISHED_CHANNEL, REMOTE_CHANNEL

log = logging.getLogger(__name__)


class Waiter:
    """One caller waiting for one execution: woken by its notification, which may carry the final state."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self.final: dict[str, Any] | None = None
        self.bodies: list[dict[str, Any]] = []  # every state received, oldest first (the waiter pops them)


def _parse(payload: str) -> tuple[str, dict[str, Any] | None]:
    """(execution id, final state or None): the payload is the final state as JSON, or just the id."""
    try:
        body = json.loads(payload)
    except ValueError:
        return payload, None
    if not isinstance(body, dict) or "execution_id" not in body:
        return payload, None
    if "status" not in body:
        return str(body["execution_id"]), None
    for key in ("created_at", "started_at", "completed_at"):
        if body.get(key):
            body[key] = datetime.fromisoformat(body[key])
    return str(body["execution_id"]), body


class FinishedNotifications:
    def __init__(self, libpq_url: str, channel: str = FINISHED_CHANNEL) -> None:
        self._url = libpq_url
        self.channel = channel
        self._deaf_until = 0.0  # after the probe heard nothing, waiters poll for a while without retrying
        self._lock = threading.Lock()
        self._waiters: dict[str, set[Waiter]] = defaultdict(set)
        self._listening = threading.Event()
        self._thread: threading.Thread | None = None

    def watch(self, execution_id: str, ready_timeout: float = 5.0) -> Waiter:
        """Register interest before reading the status, so no completion can slip between the two."""
        waiter = Waiter()
        with self._lock:
            self._waiters[execution_id].add(waiter)
            if time.monotonic() < self._deaf_until:
                return waiter
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="zart-listen", daemon=True)
                self._thread.start()
        self._listening.wait(ready_timeout)
        return waiter

    def unwatch(self, execution_id: str, waiter: Waiter) -> None:
        with self._lock:
            waiters = self._waiters.get(execution_id)
            if waiters is not None:
                waiters.discard(waiter)
                if not waiters:
                    del self._waiters[execution_id]

    @property
    def listening(self) -> bool:
        return self._listening.is_set()

    def waiter_count(self) -> int:
        with self._lock:
            return sum(len(w) for w in self._waiters.values())

    def _run(self) -> None:
        while True:
            try:
                with psycopg.connect(self._url, autocommit=True, connect_timeout=5) as conn:
                    # a database that stops answering now would hold the set-up, and so every waiter's wake-ups,
                    # for as long as the connection seems open: each round trip is bounded like the alive check
                    with deadline.watching(conn, ALIVE_BOUND_SECONDS):
                        conn.execute(f"LISTEN {self.channel}")
                    if not _hears_itself(conn, self._url, self.channel):
                        log.error(NOT_HEARD)
                        self._stop_listening()
                        return
                    self._listening.set()
                    self._wake_all()  # anything finished while we were not listening
                    while True:
                        heard = False
                        for note in conn.notifies(timeout=SILENCE_CHECK_SECONDS):
                            heard = True
                            self._wake(note.payload)
                        with self._lock:
                            if not self._waiters:
                                self._listening.clear()
                                self._thread = None
                                return
                        if not heard:
                            self._check_alive(conn)
            except Exception as exc:
                self._listening.clear()
                self._wake_all()
                with self._lock:
                    if not self._waiters:  # nobody to serve: stop rather than reconnect forever
                        self._thread = None
                        return
                log.warning("completion listener lost its connection: %s", exc)
                threading.Event().wait(1.0)

    def _check_alive(self, conn: psycopg.Connection[Any]) -> None:
        """A connection that died without a word (a NAT or load balancer dropping an idle connection, a failover, a
        stopped server) delivers no notification and reports no error: the listener would wait on it for hours,
        and every waiter would learn of a finish only from its slow re-read. A round trip that does not come back
        in time cuts it (zart.store.deadline), so the listener reconnects and wakes its waiters to re-read. A
        notification that arrives during the round trip reaches its waiters through the handler (older psycopg
        releases, 3.1 and 3.2.0 among them, hand such a notification to handlers only)."""

        def wake(note: psycopg.Notify) -> None:
            self._wake(note.payload)

        conn.add_notify_handler(wake)
        try:
            with deadline.watching(conn, ALIVE_BOUND_SECONDS):
                conn.execute("SELECT 1")
        finally:
            conn.remove_notify_handler(wake)

    def _stop_listening(self) -> None:
        """Waiters fall back to polling the table."""
        with self._lock:
            self._listening.clear()
            self._thread = None
            self._deaf_until = time.monotonic() + DEAF_RETRY_SECONDS
        self._wake_all()

    def _wake(self, payload: str) -> None:
        execution_id, final = _parse(payload)
        with self._lock:
            for waiter in self._waiters.get(execution_id, ()):
                waiter.final = final
                if final is not None:
                    waiter.bodies.append(final)
                waiter.event.set()

    def _wake_all(self) -> None:
        with self._lock:
            for waiters in self._waiters.values():
                for waiter in waiters:
                    waiter.event.set()


NOT_HEARD = (
    "the completion LISTEN hears nothing: its connection goes through a transaction pooler (PgBouncer), which "
    "drops a session's notifications; set ZART_DIRECT_DATABASE_URL to a URL straight to PostgreSQL. Waits poll "
    "the table meanwhile"
)
PROBE_SECONDS = 3.0
# a listening connection silent this long is asked for an answer, which must come within ALIVE_BOUND_SECONDS
SILENCE_CHECK_SECONDS = 5.0
ALIVE_BOUND_SECONDS = 5.0
DEAF_RETRY_SECONDS = 60.0


def _hears_itself(conn: psycopg.Connection[Any], url: str, channel: str) -> bool:
    """Notify our channel from another connection and wait for it. Through a transaction pooler the listening
    session is not ours between statements (the probe's own server connection may even be the one that
    listened), so the notification never reaches us."""
    probe = f"probe-{uuid.uuid4().hex}"
    with psycopg.connect(url, autocommit=True, connect_timeout=5, prepare_threshold=None) as other:
        with deadline.watching(other, ALIVE_BOUND_SECONDS):
            other.execute("SELECT pg_notify(%s, %s)", (channel, probe))
    return any(note.payload == probe for note in conn.notifies(timeout=PROBE_SECONDS))


_instances: dict[tuple[int, str, str], FinishedNotifications] = {}
_instances_lock = threading.Lock()


def for_url(libpq_url: str, channel: str = FINISHED_CHANNEL) -> FinishedNotifications:
    """This process's listener on `channel` (a forked pool child gets its own: threads do not survive a fork)."""
    key = (os.getpid(), libpq_url, channel)
    with _instances_lock:
        instance = _instances.get(key)
        if instance is None:
            instance = _instances[key] = FinishedNotifications(libpq_url, channel)
        return instance


def remote_outcomes(libpq_url: str) -> FinishedNotifications:
    """The listener a run holding its claim waits on for its remote steps' outcomes (payload: execution id)."""
    return for_url(libpq_url, REMOTE_CHANNEL)
