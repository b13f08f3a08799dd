"""The seam between the engine and Celery: the app, the one worker task, publishing, and the sweeper.

A Celery message carries only an execution id; the worker claims the row in Postgres before doing anything.
Publishing happens after commit and may fail: the sweeper re-publishes whatever the messages missed.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from dataclasses import replace
from typing import Any

from celery import Celery, signals

from zart.config import Settings
from zart.engine.runner import RunnerConfig, finish_with_parent, run_execution
from zart.registry import default_registry, import_modules
from zart.store import catalog, counts, db, pause, sweeps

log = logging.getLogger(__name__)

RUN_TASK = "zart.run_execution"
SWEEP_BATCH = 500
WORKER_PING_AFTER_IDLE = 2.0


def create_celery_app(settings: Settings, main: str = "zart") -> Celery:
    """A Celery app configured for durability; the worker task closes over `settings`."""
    app = Celery(main, broker=settings.broker_url, set_as_current=False)
    app.conf.update(
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_ignore_result=True,
        task_serializer="json",
        accept_content=["json"],
        task_default_queue=settings.queue,
        task_routes={RUN_TASK: {"queue": settings.queue}},
        broker_connection_retry_on_startup=True,
        broker_connection_timeout=2,
        broker_transport_options={"visibility_timeout": 3600, "socket_connect_timeout": 2},
        broker_pool_limit=10,
        worker_send_task_events=False,
        imports=list(settings.imports),
        worker_hijack_root_logger=False,
        # steps wait on commits more than on the CPU: two processes per core keep the cores busy
        worker_concurrency=2 * (os.cpu_count() or 1),
    )
    app.zart_settings = settings  # type: ignore[attr-defined]
    runner_config = RunnerConfig(
        database_url=settings.database_url,
        lease_seconds=settings.lease_seconds,
        short_wait_hint=settings.short_wait_hint,
        worker_name=socket.gethostname(),
    )
    publisher = Publisher(app)

    @app.task(name=RUN_TASK, ignore_result=True)
    def run(execution_id: str) -> str:
        # named per call: a prefork pool child has its own pid
        config = replace(runner_config, worker_name=f"{socket.gethostname()}:{os.getpid()}")
        return run_execution(execution_id, config, publisher.publish)

    _connect_worker_signals(app, settings, publisher)
    return app


class Publisher:
    """Sends the doorbell for an execution; never raises (a lost message is the sweeper's job)."""

    def __init__(self, app: Celery) -> None:
        self._app = app
        self._queue: str = app.conf.task_default_queue
        self._inspection: Any = None

    def publish(self, execution_id: str, countdown: float | None = None) -> bool:
        try:
            with self._app.producer_or_acquire() as producer:
                # One connection attempt, no back-off: kombu would otherwise sleep and retry for seconds
                # before `send_task` gives up, and a caller (the CLI, a request) would hang with it.
                producer.connection.ensure_connection(max_retries=0)
                self._app.send_task(
                    RUN_TASK,
                    args=[execution_id],
                    countdown=countdown if countdown and countdown > 0 else None,
                    retry=False,
                    producer=producer,
                )
            return True
        except Exception as exc:  # the broker is down or unreachable: the row is still the truth
            log.warning("could not publish %s: %s", execution_id, exc)
            return False


    def queued(self) -> int | None:
        """Messages waiting in the broker queue, or None when the broker cannot tell (or is down).

        Asked every sweep, so the connection is kept between calls and replaced only when it fails.
        """
        try:
            if self._inspection is None:
                self._inspection = self._app.connection_for_read()
                self._inspection.ensure_connection(max_retries=0)
            declared = self._inspection.default_channel.queue_declare(queue=self._queue, passive=True)
            return int(declared.message_count)
        except Exception:
            if self._inspection is not None:
                self._inspection.release()
                self._inspection = None
            return None


class Sweeper:
    """Runs in every worker's main process; an advisory lock lets one of them sweep at a time."""

    def __init__(self, settings: Settings, publisher: Publisher) -> None:
        self._settings = settings
        self._publisher = publisher
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="zart-sweeper", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _loop(self) -> None:
        while not self._stop.wait(self._settings.sweep_interval):
            try:
                self.sweep_once()
            except Exception:
                log.warning("sweep failed; trying again in %ss", self._settings.sweep_interval, exc_info=True)

    def sweep_once(self) -> list[str]:
        """Wake due timers, recover expired leases, re-publish lost messages, fail overdue executions."""
        url = self._settings.database_url
        with db.transaction(url) as conn:
            if not sweeps.try_lock(conn):
                return []
            unclaimed = sweeps.count_ready_pending(conn)
            ready = sweeps.wake_due(conn, SWEEP_BATCH)
            ready += sweeps.recover_expired_leases(conn, SWEEP_BATCH)
            ready += pause.release_lifted(conn, SWEEP_BATCH) + pause.release_orphaned(conn)
            budget = self._redispatch_budget(unclaimed)
            if budget:
                ready += sweeps.redispatch_stale(conn, self._settings.redispatch_after, budget)
            overdue = sweeps.overdue(conn, SWEEP_BATCH)
        self._fold_counts(url)
        timed_out = {"type": "ExecutionTimeout", "message": "execution exceeded its timeout"}
        for execution_id in overdue:
            _, parent = finish_with_parent(url, execution_id, status="failed", token=None, error=timed_out)
            if parent is not None:
                ready.append(parent)
        for execution_id in ready:
            self._publisher.publish(execution_id)
        return ready


    @staticmethod
    def _fold_counts(url: str) -> None:
        """Housekeeping in its own transaction: a failure here must never hold up recovery."""
        try:
            with db.transaction(url) as conn:
                if sweeps.try_lock(conn):
                    counts.fold_deltas(conn)
        except Exception:
            log.warning("could not fold execution counts; trying again next sweep", exc_info=True)

    def _redispatch_budget(self, unclaimed: int) -> int:
        """How many stale pending rows to re-publish: no more than have no message in the broker queue.

        When the queue holds at least as many messages as there are unclaimed rows, every row is probably
        queued behind a busy fleet; re-publishing would only bury the real messages under duplicates.
        """
        queued = self._publisher.queued()
        if queued is None:
            return SWEEP_BATCH
        return max(0, min(SWEEP_BATCH, unclaimed - queued))


def record_catalog(settings: Settings) -> None:
    """Tell the store which task names this process can run, so others can refuse unknown ones."""
    with db.transaction(settings.database_url) as conn:
        catalog.record_tasks(
            conn,
            [
                {"name": task.name, "schema": task.schema, "timeout_seconds": task.timeout}
                for task in default_registry.tasks()
            ],
            f"{socket.gethostname()}:{os.getpid()}",
        )


def _connect_worker_signals(app: Celery, settings: Settings, publisher: Publisher) -> None:
    state: dict[str, Any] = {}

    def on_ready(sender: Any = None, **_: Any) -> None:
        if getattr(sender, "app", None) is not app:
            return
        import_modules(settings.imports)
        record_catalog(settings)
        sweeper = Sweeper(settings, publisher)
        sweeper.start()
        state["sweeper"] = sweeper

    def on_shutdown(sender: Any = None, **_: Any) -> None:
        sweeper = state.pop("sweeper", None)
        if sweeper is not None:
            sweeper.stop()

    def on_init(sender: Any = None, **_: Any) -> None:
        db.ping_only_after_idle(WORKER_PING_AFTER_IDLE)

    signals.worker_init.connect(on_init, weak=False)
    signals.worker_ready.connect(on_ready, weak=False)
    signals.worker_shutdown.connect(on_shutdown, weak=False)
