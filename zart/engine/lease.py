"""Lease keeping: one thread per process watches every run it has claimed.

Fast steps never involve it. A step that runs longer than `visible_after` is written as `running` (with its
attempt start) so operators see it, and each lease is extended every third of its length. The thread is
started on first use and re-created after a fork, so prefork pool children each get their own.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from zart.store import db, executions, steps

log = logging.getLogger(__name__)

TICK_SECONDS = 0.1


@dataclass
class RunningAttempt:
    """The attempt the handler is inside right now."""

    name: str
    position: int
    kind: str
    attempt: int
    failures: int
    started_at: datetime
    started_monotonic: float
    marked: bool = False


class LeaseKeeper:
    """The per-run handle: what the watcher needs to know about one claimed run, and what it found out."""

    def __init__(
        self,
        database_url: str,
        execution_id: str,
        token: str,
        run_index: int,
        exec_attempt: int,
        lease_seconds: float,
        visible_after: float = 0.2,
    ) -> None:
        self.database_url = database_url
        self.execution_id = execution_id
        self.token = token
        self.run_index = run_index
        self.exec_attempt = exec_attempt
        self.lease_seconds = lease_seconds
        self.visible_after = visible_after
        self.lock = threading.Lock()
        self.current: RunningAttempt | None = None
        self.last_extended = time.monotonic()
        self.lost = threading.Event()
        self._on_stop: list[Callable[[], None]] = []

    def start(self) -> None:
        _watcher().add(self)

    def stop(self) -> None:
        _watcher().remove(self)
        while self._on_stop:
            self._on_stop.pop()()

    def when_stopped(self, release: Callable[[], None]) -> None:
        """Run `release` when the run ends, however it ends (something the run held for its whole length)."""
        self._on_stop.append(release)

    def entering(self, attempt: RunningAttempt) -> None:
        with self.lock:
            self.current = attempt

    def leaving(self) -> None:
        """Called before the attempt's outcome is written, so a late `running` mark cannot follow it."""
        with self.lock:
            self.current = None

    def tend(self, now: float) -> None:
        """One tick: surface a long attempt, extend the lease when a third of it has passed."""
        self._mark_long_attempt(now)
        if now - self.last_extended >= self.lease_seconds / 3:
            self.last_extended = now
            with db.autocommit(self.database_url) as conn:
                if not executions.extend_lease(conn, self.execution_id, self.token, self.lease_seconds):
                    self.lost.set()

    def _mark_long_attempt(self, now: float) -> None:
        with self.lock:
            current = self.current
            if current is None or current.marked or now - current.started_monotonic < self.visible_after:
                return
            current.marked = True
            with db.autocommit(self.database_url) as conn:
                steps.mark_running(
                    conn,
                    execution_id=self.execution_id,
                    token=self.token,
                    run_index=self.run_index,
                    name=current.name,
                    position=current.position,
                    kind=current.kind,
                    attempt=current.attempt,
                    failures=current.failures,
                    exec_attempt=self.exec_attempt,
                    started_at=current.started_at,
                )


class _Watcher:
    def __init__(self) -> None:
        self._runs: dict[str, LeaseKeeper] = {}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def add(self, keeper: LeaseKeeper) -> None:
        keeper.last_extended = time.monotonic()
        with self._lock:
            self._runs[keeper.token] = keeper
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._loop, name="zart-lease-keeper", daemon=True)
                self._thread.start()

    def remove(self, keeper: LeaseKeeper) -> None:
        with self._lock:
            self._runs.pop(keeper.token, None)

    def _loop(self) -> None:
        while True:
            time.sleep(TICK_SECONDS)
            with self._lock:
                runs = [keeper for keeper in self._runs.values() if not keeper.lost.is_set()]
            now = time.monotonic()
            for keeper in runs:
                try:
                    keeper.tend(now)
                except Exception:  # a database hiccup must not kill the keeper; the next tick tries again
                    log.warning("could not tend the lease of %s", keeper.execution_id, exc_info=True)


_watchers: dict[int, _Watcher] = {}


def _watcher() -> _Watcher:
    """This process's watcher (a forked child gets a fresh one: threads do not survive a fork)."""
    pid = os.getpid()
    watcher = _watchers.get(pid)
    if watcher is None:
        watcher = _watchers.setdefault(pid, _Watcher())
    return watcher
