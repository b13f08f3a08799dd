"""Which Celery queue an execution's doorbell goes to: the queue its workflow was declared with
(`@zart.task(..., queue="etl")`), recorded on the execution when it is created; else the default queue.

A process asks the store only when some task in the catalog is routed at all (checked every few seconds), and
remembers each answer: an execution's queue never changes.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict

from zart.store import catalog, db, executions

log = logging.getLogger(__name__)

ROUTING_RECHECK_SECONDS = 5.0
REMEMBERED = 10_000


class QueueRouter:
    def __init__(self, database_url: str) -> None:
        self._url = database_url
        self._routed_until = 0.0
        self._routed = False
        self._known: OrderedDict[str, str | None] = OrderedDict()
        self._lock = threading.Lock()

    def queue_for(self, execution_id: str) -> str | None:
        """The execution's own queue, or None for the default one (also when the store cannot say)."""
        if not self._any_routed():
            return None
        with self._lock:
            if execution_id in self._known:
                return self._known[execution_id]
        try:
            with db.autocommit(self._url) as conn:
                queue = executions.queue_of(conn, execution_id)
        except Exception as exc:  # the sweeper publishes it again once the store answers
            log.warning("could not look up the queue of %s: %s", execution_id, exc)
            return None
        with self._lock:
            self._known[execution_id] = queue
            while len(self._known) > REMEMBERED:
                self._known.popitem(last=False)
        return queue

    def _any_routed(self) -> bool:
        now = time.monotonic()
        if now >= self._routed_until:
            try:
                with db.autocommit(self._url) as conn:
                    self._routed = catalog.any_routed(conn)
            except Exception as exc:
                log.warning("could not read the task catalog's queues: %s", exc)
            self._routed_until = now + ROUTING_RECHECK_SECONDS
        return self._routed
