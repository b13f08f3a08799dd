"""The lease keeper: a thread per claimed run that extends the lease and surfaces long steps.

Fast steps never touch it; a step that runs longer than `visible_after` is written as `running` (with its
attempt start) so operators see it, and the lease is extended every third of its length.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from datetime import datetime

from zart.store import db, executions, steps

log = logging.getLogger(__name__)


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
    def __init__(
        self,
        database_url: str,
        execution_id: str,
        token: str,
        run_index: int,
        exec_attempt: int,
        lease_seconds: float,
        visible_after: float = 0.2,
        tick: float = 0.1,
    ) -> None:
        self._url = database_url
        self._execution_id = execution_id
        self._token = token
        self._run_index = run_index
        self._exec_attempt = exec_attempt
        self._lease = lease_seconds
        self._visible_after = visible_after
        self._tick = tick
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._current: RunningAttempt | None = None
        self.lost = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"zart-lease-{execution_id}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)

    def entering(self, attempt: RunningAttempt) -> None:
        with self._lock:
            self._current = attempt

    def leaving(self) -> None:
        """Called before the attempt's outcome is written, so a late `running` mark cannot follow it."""
        with self._lock:
            self._current = None

    def _loop(self) -> None:
        last_extend = time.monotonic()
        while not self._stop.wait(self._tick):
            try:
                self._mark_long_attempt()
                if time.monotonic() - last_extend >= self._lease / 3:
                    last_extend = time.monotonic()
                    self._extend()
            except Exception:  # a database hiccup must not kill the keeper; the next tick tries again
                log.warning("lease keeper for %s could not reach the database", self._execution_id, exc_info=True)

    def _extend(self) -> None:
        with db.autocommit(self._url) as conn:
            if not executions.extend_lease(conn, self._execution_id, self._token, self._lease):
                self.lost.set()
                self._stop.set()

    def _mark_long_attempt(self) -> None:
        with self._lock:
            current = self._current
            if current is None or current.marked:
                return
            if time.monotonic() - current.started_monotonic < self._visible_after:
                return
            current.marked = True
            with db.autocommit(self._url) as conn:
                steps.mark_running(
                    conn,
                    execution_id=self._execution_id,
                    token=self._token,
                    run_index=self._run_index,
                    name=current.name,
                    position=current.position,
                    kind=current.kind,
                    attempt=current.attempt,
                    failures=current.failures,
                    exec_attempt=self._exec_attempt,
                    started_at=current.started_at,
                )


