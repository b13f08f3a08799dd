"""A cap on concurrent long-polls, so waiters can never occupy every server thread.

Each `/wait` holds a WSGI thread (not a database connection) until the execution finishes or its timeout
passes. Past the cap a new waiter is refused with 503 and Retry-After instead of queueing behind the others,
so probes and ordinary requests are always answered.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

from zart.errors import ZartError


class TooManyWaiters(ZartError):
    code = "service_unavailable"
    http_status = 503
    headers = {"Retry-After": "1"}


class WaitSlots:
    def __init__(self, limit: int | None) -> None:
        self.limit = limit
        self._semaphore = threading.BoundedSemaphore(limit) if limit else None
        self._lock = threading.Lock()
        self._in_flight = 0

    @property
    def in_flight(self) -> int:
        return self._in_flight

    @contextlib.contextmanager
    def slot(self) -> Iterator[None]:
        if self._semaphore is not None and not self._semaphore.acquire(blocking=False):
            raise TooManyWaiters(f"{self.limit} requests are already waiting; retry shortly.")
        with self._lock:
            self._in_flight += 1
        try:
            yield
        finally:
            with self._lock:
                self._in_flight -= 1
            if self._semaphore is not None:
                self._semaphore.release()
