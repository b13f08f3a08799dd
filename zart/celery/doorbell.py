"""Ringing zart's doorbell: the Celery message that tells a worker to claim an execution.

Used by zart's own processes (dispatch) and by a team's fleet worker reporting a remote step's result
(the integration). Nothing here is ever the truth about an execution; a failure is logged and left to the
sweeper.
"""

from __future__ import annotations

import logging
from contextlib import nullcontext

from celery import Celery

from zart.celery import standby
from zart.celery.names import RUN_TASK
from zart.celery.routing import QueueRouter

log = logging.getLogger(__name__)

# A broker that keeps its connections open but stops answering (a frozen process, a partition that drops packets)
# would otherwise hold a publish, and the request or command behind it, forever; a worker's BRPOP waits 1 s
BROKER_SOCKET_TIMEOUT = 5.0
# what a doorbell naming no execution carries (no execution has this id: its claim takes nothing)
ANY_READY = "any-ready"


def doorbell_app(broker_url: str, queue: str, database_url: str) -> Celery:
    """The smallest app that can ring zart's doorbells: for processes that are not zart workers (a team's own
    Celery worker reporting a remote step's result)."""
    app = Celery("zart-doorbell", broker=broker_url, set_as_current=False)
    app.zart_router = QueueRouter(database_url)  # type: ignore[attr-defined]
    app.conf.update(
        task_serializer="json",
        task_routes={RUN_TASK: {"queue": queue}},
        broker_connection_timeout=2,
        broker_transport_options={"socket_connect_timeout": 2, "socket_timeout": BROKER_SOCKET_TIMEOUT},
    )
    return app


def self_claim_marker(queue: str) -> str:
    """The Redis key a worker that takes ready executions itself keeps alive for each queue it consumes."""
    return f"zart:{queue}:self-claim"


class Publisher:
    """Sends the doorbell for an execution; never raises (a lost message is the sweeper's job)."""

    def __init__(self, app: Celery) -> None:
        self._app = app
        self._router: QueueRouter | None = getattr(app, "zart_router", None)

    def publish(self, execution_id: str, countdown: float | None = None) -> bool:
        return self.publish_many([execution_id], countdown)

    def ring_unless_queued(self, execution_id: str, task: str | None = None) -> bool:
        """The doorbell of a new, ready execution, left out when the queue's workers take ready executions
        themselves and one of them will look for it anyway: a running worker stands by (see zart.celery.standby),
        or a doorbell waits in the queue, whose taker claims every ready execution of the queue (this one
        included, committed before; one under a limit is admitted or held by flow control as its doorbell would
        have it) before it goes back to its doorbells. A second doorbell would only cost a claim that takes
        nothing. If that worker dies first, the sweeper re-publishes what is left, as for any lost message.
        Neither is relied on unless every kind of worker on the queue runs `task` (a worker lacking it, in a
        rolling deploy, would skip the execution and ring for it late or never)."""
        queue = (self._router.queue_for(execution_id) if self._router is not None else None) or str(
            self._app.conf.task_default_queue
        )
        try:
            if standby.take(self._app, queue, self_claim_marker(queue), execution_id, task) != "ring":
                return True
        except Exception as exc:  # the broker is down: one attempt, as a publish makes, is enough
            log.warning("could not publish %s: %s", execution_id, exc)
            return False
        return self.publish(execution_id)

    def publish_many(self, execution_ids: list[str], countdown: float | None = None) -> bool:
        """Ring several doorbells over one producer and one connection check (a sweep firing many ticks)."""
        return self._send(execution_ids, countdown)

    def ring_queue(self, queue: str) -> bool:
        """A doorbell that names no execution: the worker that takes it claims the queue's ready executions
        (for a standby found gone without a taker named, see zart.celery.standby)."""
        return self._send([ANY_READY], None, queue)

    def _send(self, execution_ids: list[str], countdown: float | None, queue: str | None = None) -> bool:
        try:
            with self._app.producer_or_acquire() as producer:
                # One connection attempt, no back-off: kombu would otherwise sleep and retry for seconds
                # before `send_task` gives up, and a caller (the CLI, a request) would hang with it.
                producer.connection.ensure_connection(max_retries=0)
                # kombu 5.7+ pipelines the messages of a batch (one round trip for many doorbells on Redis)
                batch = producer.batch() if len(execution_ids) > 1 and hasattr(producer, "batch") else nullcontext()
                with batch:
                    for execution_id in execution_ids:
                        self._app.send_task(
                            RUN_TASK,
                            args=[execution_id],
                            queue=queue or self._queue_of(execution_id),
                            countdown=countdown if countdown and countdown > 0 else None,
                            retry=False,
                            producer=producer,
                        )
            return True
        except Exception as exc:  # the broker is down or unreachable: the rows are still the truth
            log.warning("could not publish %s: %s", ", ".join(execution_ids[:3]), exc)
            return False

    def _queue_of(self, execution_id: str) -> str | None:
        return self._router.queue_for(execution_id) if self._router is not None else None
