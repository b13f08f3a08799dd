"""The one line a team's Celery worker needs: `zart.celery.integrate(app)` in its Celery app module.

It connects Celery's task signals so that, for every task zart dispatched as a remote step (its task id
starts with `zart-`), the worker reports to zart's Postgres directly: started, then alive every third of a
lease (so a killed worker is noticed within about a lease), retrying, and the final result or exception.
Other tasks are untouched. The worker needs zart's settings (DATABASE_URL, ZART_BROKER_URL, ZART_QUEUE) in
its environment, or passed as `settings=`.

Because it reports the outcome itself, it drops the fallback callbacks zart attached to the message, so a
result is not reported twice (the second report would change nothing anyway).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from celery import Celery, signals

from zart.celery import results
from zart.celery.calls import FAILURE_TASK, RESULT_TASK, is_dispatch_token
from zart.celery.doorbell import Publisher, doorbell_app
from zart.config import Settings, load_settings

log = logging.getLogger(__name__)

_FALLBACK_TASKS = (RESULT_TASK, FAILURE_TASK)
TICK_SECONDS = 0.1


@dataclass
class _Running:
    worker: str
    last_report: float


class Integration:
    """What one fleet process needs to report: the store, a doorbell, and the heartbeat of running tasks."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.silence = settings.lease_seconds
        self._publishers: dict[int, Publisher] = {}
        self._running: dict[str, _Running] = {}
        self._lock = threading.Lock()
        self._beats: dict[int, threading.Thread] = {}

    # --------------------------------------------------------------- signals

    def on_prerun(self, task_id: str | None = None, task: Any = None, **_: Any) -> None:
        if not is_dispatch_token(task_id) or task is None:
            return
        request = task.request
        for attribute in ("callbacks", "errbacks"):
            attached = getattr(request, attribute, None)
            if attached:
                kept = [c for c in attached if _task_of(c) not in _FALLBACK_TASKS]
                setattr(request, attribute, kept or None)
        worker = str(getattr(request, "hostname", None) or f"pid-{os.getpid()}")
        # reported at once, so a worker killed right after it took the task is noticed within about a lease
        if results.started(self.settings.database_url, task_id, worker, self.silence):
            now = time.monotonic()
            with self._lock:
                self._running[task_id] = _Running(worker, now)
            self._ensure_heartbeat()

    def on_postrun(self, task_id: str | None = None, **_: Any) -> None:
        if is_dispatch_token(task_id):
            with self._lock:
                self._running.pop(task_id, None)

    def on_success(self, sender: Any = None, result: Any = None, **_: Any) -> None:
        token = getattr(getattr(sender, "request", None), "id", None)
        if is_dispatch_token(token):
            self._ring(results.succeeded(self.settings.database_url, token, result, _host(sender)))

    def on_failure(self, sender: Any = None, task_id: str | None = None, exception: Any = None, **_: Any) -> None:
        if is_dispatch_token(task_id):
            error = results.error_of(exception) if exception is not None else {"type": "TaskFailed", "message": ""}
            self._ring(results.failed(self.settings.database_url, task_id, error, _host(sender)))

    def on_retry(self, request: Any = None, reason: Any = None, **_: Any) -> None:
        token = getattr(request, "id", None)
        if is_dispatch_token(token):
            results.retrying(self.settings.database_url, token, _eta(getattr(reason, "when", None)))

    def on_unknown(self, name: str | None = None, id: str | None = None, **_: Any) -> None:  # noqa: A002
        if is_dispatch_token(id):
            error = {"type": "NotRegistered", "message": f"celery task {name!r} is not registered on this worker"}
            self._ring(results.failed(self.settings.database_url, id, error))

    def on_revoked(self, request: Any = None, terminated: bool = False, expired: bool = False, **_: Any) -> None:
        token = getattr(request, "id", None)
        if is_dispatch_token(token):
            why = "expired" if expired else "terminated" if terminated else "revoked"
            error = {"type": "TaskRevokedError", "message": f"the celery task was {why}"}
            self._ring(results.failed(self.settings.database_url, token, error))

    # --------------------------------------------------------------- machinery

    def _ring(self, execution_id: str | None) -> None:
        if execution_id is None:
            return
        pid = os.getpid()
        publisher = self._publishers.get(pid)
        if publisher is None:
            app = doorbell_app(self.settings.broker_url, self.settings.queue, self.settings.database_url)
            publisher = self._publishers.setdefault(pid, Publisher(app))
        publisher.publish(execution_id)

    def _ensure_heartbeat(self) -> None:
        """One thread per process (a forked pool child starts its own) tells zart its tasks are alive."""
        pid = os.getpid()
        thread = self._beats.get(pid)
        if thread is not None and thread.is_alive():
            return
        thread = threading.Thread(target=self._beat, name="zart-remote-heartbeat", daemon=True)
        self._beats[pid] = thread
        thread.start()

    def _beat(self) -> None:
        while True:
            time.sleep(TICK_SECONDS)
            try:
                self._report(time.monotonic())
            except Exception:  # the next tick tries again; a long outage makes zart re-dispatch, as it should
                log.warning("could not report running remote steps", exc_info=True)

    def _report(self, now: float) -> None:
        """Tell zart the tasks this process is running are still alive, every third of a lease."""
        url = self.settings.database_url
        with self._lock:
            running = list(self._running.items())
        due = [token for token, task in running if now - task.last_report >= self.silence / 3]
        if due:
            results.alive(url, due, self.silence)
            for token, task in running:
                if token in due:
                    task.last_report = now


_integration: Integration | None = None


def integrate(app: Celery | None = None, settings: Settings | None = None) -> Integration:
    """Make this Celery worker report the remote steps it runs to zart. Safe to call more than once."""
    global _integration
    if _integration is None:
        _integration = Integration(settings or load_settings())
        signals.task_prerun.connect(_integration.on_prerun, weak=False)
        signals.task_postrun.connect(_integration.on_postrun, weak=False)
        signals.task_success.connect(_integration.on_success, weak=False)
        signals.task_failure.connect(_integration.on_failure, weak=False)
        signals.task_retry.connect(_integration.on_retry, weak=False)
        signals.task_unknown.connect(_integration.on_unknown, weak=False)
        signals.task_revoked.connect(_integration.on_revoked, weak=False)
    return _integration


def _task_of(callback: Any) -> Any:
    try:
        return callback["task"]
    except (TypeError, KeyError):
        return getattr(callback, "task", None)


def _host(task: Any) -> str | None:
    hostname = getattr(getattr(task, "request", None), "hostname", None)
    return str(hostname) if hostname else None


def _eta(when: Any) -> datetime | None:
    if isinstance(when, datetime):
        return when if when.tzinfo else when.replace(tzinfo=UTC)
    if isinstance(when, (int, float)):
        return datetime.now(UTC) + timedelta(seconds=when)
    return None
