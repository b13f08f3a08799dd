"""The one line a team's Celery worker needs: `zart.celery.integrate(app)` in its Celery app module.

It connects Celery's task signals so that, for every task zart dispatched as a remote step (its task id
starts with `zart-`), the worker reports to zart's Postgres directly: retrying, and the final result or
exception (from the pool process that ran it, on the task's path); and, from the worker's main process on a
thread of its own (off the task's path), that it holds the task once it has held it for a moment (a quick
task is done by then and never reported), whether or not a pool process is free to start it; then that it
started, then that it is alive every third of a lease. So a killed worker is noticed within about a lease
whatever its tasks were doing. Other tasks are untouched.
The worker needs zart's settings (DATABASE_URL, ZART_BROKER_URL, ZART_QUEUE) in its environment, or passed
as `settings=`.

Because it reports the outcome itself, it drops the fallback callbacks zart attached to the message, so a
result is not reported twice (the second report would change nothing anyway). A message the task sends on under
its own id (its retry, its replacement) gets them back: the worker that takes it may lack the integration.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from celery import Celery, signals, states
from celery.exceptions import Ignore
from celery.worker import state as worker_state

from zart.celery import results
from zart.celery.calls import FAILURE_TASK, RESULT_TASK, is_dispatch_token
from zart.celery.doorbell import Publisher, doorbell_app
from zart.config import Settings, load_settings
from zart.errors import StoreUnavailable
from zart.store import db

log = logging.getLogger(__name__)

_FALLBACK_TASKS = (RESULT_TASK, FAILURE_TASK)
# the message of the Ignore that Celery's Task.replace raises (the replacement reports under the same task id)
REPLACED_BY_NEW_TASK = "Replaced by new task"
TICK_SECONDS = 0.05
# A task is first reported once the worker has held it this long: a quick task is done by then and costs no
# report at all. A worker killed within this moment of taking a task leaves it to the dispatch timeout.
FIRST_REPORT_AFTER = 0.05
# How long a pool process keeps trying to record its task's outcome while zart's database is unreachable.
REPORT_RETRY_SECONDS = 60.0
# How many tasks' fallback callbacks the worker's main process keeps to put back on a message it sends again
REMEMBERED_FALLBACKS = 10_000


@dataclass
class _Held:
    """A zart task this worker's main process received: what was last reported about it."""

    request: Any
    worker: str
    received_at: float
    reported_at: float | None = None
    reported_running: bool = False
    seen_reserved: bool = False


class Integration:
    """What one fleet process needs to report: the store, a doorbell, and the tasks its worker holds."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.silence = settings.lease_seconds
        self._publishers: dict[int, Publisher] = {}
        self._held: dict[str, _Held] = {}
        self._lock = threading.Lock()
        self._reporters: dict[int, threading.Thread] = {}
        self._consumer: Any = None  # the worker's consumer, which holds rate-limited tasks in its buckets
        self._main_pid = os.getpid()  # integrate() runs as the worker loads its app, before the pool forks
        self._unrecorded: list[tuple[float, Callable[[], str | None]]] = []  # the main process's, to try again
        # the fallback callbacks and errbacks taken off the zart tasks this process received or is running
        self._taken: OrderedDict[str, tuple[list[Any], list[Any]]] = OrderedDict()
        # its own lock, never taken by the reporter thread: a pool process forked while that thread held
        # `_lock` would inherit it held
        self._taken_lock = threading.Lock()
        self._restoring = False

    # --------------------------------------------------------------- signals

    def on_received(self, request: Any = None, **_: Any) -> None:
        """The main process took a zart task off the broker: the reporter says so shortly, off this path."""
        token = getattr(request, "id", None)
        if not is_dispatch_token(token):
            return
        self._keep_taken(token, _drop_fallbacks(request))
        worker = str(getattr(request, "hostname", None) or f"pid-{os.getpid()}")
        with self._lock:
            self._held[token] = _Held(request, worker, time.monotonic())
        self._ensure_reporter()

    def on_worker_init(self, **_: Any) -> None:
        """A worker reuses its connections many times a second: like zart's own workers, it pings only those
        that sat idle (set before the pool forks, so its processes inherit it)."""
        db.ping_only_after_idle(db.WORKER_PING_AFTER_IDLE)

    def on_worker_ready(self, sender: Any = None, **_: Any) -> None:
        """Start reporting before the first task comes, so its first report does not wait for a connection."""
        self._consumer = sender
        self._ensure_reporter()

    def on_prerun(self, task_id: str | None = None, task: Any = None, **_: Any) -> None:
        """The pool process runs the callbacks of a task that returned or raised: it drops the fallback ones."""
        if not is_dispatch_token(task_id) or task is None:
            return
        request = task.request
        taken: list[list[Any]] = []
        for attribute in ("callbacks", "errbacks"):
            attached = getattr(request, attribute, None) or []
            taken.append([c for c in attached if _task_of(c) in _FALLBACK_TASKS])
            if attached:
                kept = [c for c in attached if _task_of(c) not in _FALLBACK_TASKS]
                setattr(request, attribute, kept or None)
        self._keep_taken(task_id, (taken[0], taken[1]))

    def on_publish(self, body: Any = None, headers: Any = None, **_: Any) -> None:
        """A message sent under a zart task's own id (its `self.retry()`, `autoretry_for` or `self.replace()`, or
        the main process's retry of a task whose pool process was lost), or a chain whose last task has it (a
        replacement by a chain), gets back the fallback callbacks taken off that task: Celery copies them from
        the request, and the worker that takes the message may lack the integration, which then reports
        nothing and leaves the step to wait out its dispatch timeout."""
        if not self._taken:
            return
        token = (headers or {}).get("id") or (body.get("id") if isinstance(body, dict) else None)
        embed = body if isinstance(body, dict) else body[2] if isinstance(body, tuple) and len(body) == 3 else None
        if not isinstance(embed, dict):
            return
        taken = self._taken.get(token) if is_dispatch_token(token) else None
        if taken is not None:
            _put_back(embed, ("callbacks", "errbacks"), taken)
        for later in embed.get("chain") or ():  # a chain replacing the task: its last task has the task's id
            options = later.get("options") if isinstance(later, dict) else None
            taken = self._taken.get(options.get("task_id")) if isinstance(options, dict) else None
            if taken is not None:
                _put_back(options, ("link", "link_error"), taken)

    def on_success(self, sender: Any = None, result: Any = None, **_: Any) -> None:
        token = getattr(getattr(sender, "request", None), "id", None)
        if is_dispatch_token(token):
            url, host = self.settings.database_url, _host(sender)
            self._ring(self._outcome(lambda: results.succeeded(url, token, result, host)))

    def on_failure(self, sender: Any = None, task_id: str | None = None, exception: Any = None, **_: Any) -> None:
        if is_dispatch_token(task_id):
            error = results.error_of(exception) if exception is not None else {"type": "TaskFailed", "message": ""}
            url, host = self.settings.database_url, _host(sender)
            self._ring(self._outcome(lambda: results.failed(url, task_id, error, host)))

    def on_postrun(
        self, sender: Any = None, task_id: str | None = None, retval: Any = None, state: str | None = None, **_: Any
    ) -> None:
        """A task that raised Ignore records no outcome: without this its dispatch would look lost, be sent again
        and end in a DispatchTimeout that blames the fleet. `self.replace()` raises Ignore too, but its
        replacement carries the same task id and reports for it later."""
        if not is_dispatch_token(task_id):
            return
        with self._taken_lock:
            self._taken.pop(task_id, None)
        if state != states.IGNORED:
            return
        if isinstance(retval, Ignore) and str(retval) == REPLACED_BY_NEW_TASK:
            return
        error = {"type": "Ignore", "message": f"the celery task raised Ignore and recorded no outcome ({retval})"}
        url, host = self.settings.database_url, _host(sender)
        self._ring(self._outcome(lambda: results.failed(url, task_id, error, host)))

    def on_retry(self, request: Any = None, reason: Any = None, **_: Any) -> None:
        """The task is to run again later: recorded like an outcome (waiting out a store outage), or a worker
        without the integration that takes the retry leaves the step looking silent and it is sent again."""
        token = getattr(request, "id", None)
        if is_dispatch_token(token):
            url, eta = self.settings.database_url, _eta(getattr(reason, "when", None))

            def mark() -> None:
                results.retrying(url, token, eta)

            self._outcome(mark)

    def on_unknown(self, name: str | None = None, id: str | None = None, **_: Any) -> None:  # noqa: A002
        if is_dispatch_token(id):
            error = {"type": "NotRegistered", "message": f"celery task {name!r} is not registered on this worker"}
            url = self.settings.database_url
            self._ring(self._outcome(lambda: results.failed(url, id, error)))

    def on_revoked(self, request: Any = None, terminated: bool = False, expired: bool = False, **_: Any) -> None:
        token = getattr(request, "id", None)
        if is_dispatch_token(token):
            why = "expired" if expired else "terminated" if terminated else "revoked"
            error = {"type": "TaskRevokedError", "message": f"the celery task was {why}"}
            url = self.settings.database_url
            self._ring(self._outcome(lambda: results.failed(url, token, error)))

    # --------------------------------------------------------------- machinery

    def _outcome(self, write: Callable[[], str | None]) -> str | None:
        """Write a task's outcome. A pool process waits out a store outage (its task stays active, so the main
        process reports it alive meanwhile): a lost outcome would have the task run again. The main process,
        whose loop must not block, leaves the write to its reporter thread, which tries it again each tick."""
        deadline = time.monotonic() + REPORT_RETRY_SECONDS
        delay = 0.1
        while True:
            try:
                return write()
            except StoreUnavailable as exc:
                if os.getpid() == self._main_pid:
                    log.warning("could not record a remote step's outcome (%s); trying again shortly", exc)
                    with self._lock:
                        self._unrecorded.append((deadline, write))
                    self._ensure_reporter()
                    return None
                if time.monotonic() + delay > deadline:
                    raise
                log.warning("could not record a remote step's outcome (%s); trying again", exc)
                time.sleep(delay)
                delay = min(delay * 2, 1.0)

    def _record_unrecorded(self, now: float) -> None:
        """The reporter thread's retry of the outcomes the main process could not write (oldest first)."""
        with self._lock:
            waiting, self._unrecorded = self._unrecorded, []
        for index, (_, write) in enumerate(waiting):
            try:
                woken = write()
            except StoreUnavailable:
                with self._lock:  # kept for the next tick, until their time is up
                    self._unrecorded[:0] = [(d, w) for d, w in waiting[index:] if d > now]
                return
            except Exception:  # noqa: BLE001  this one cannot be written: the others still can
                log.warning("could not record a remote step's outcome", exc_info=True)
                continue
            self._ring(woken)

    def _ring(self, execution_id: str | None) -> None:
        if execution_id is None:
            return
        pid = os.getpid()
        publisher = self._publishers.get(pid)
        if publisher is None:
            app = doorbell_app(self.settings.broker_url, self.settings.queue, self.settings.database_url)
            publisher = self._publishers.setdefault(pid, Publisher(app))
        publisher.publish(execution_id)

    def _keep_taken(self, token: str, taken: tuple[list[Any], list[Any]]) -> None:
        """Keep the fallback callbacks taken off task `token`, to put back on a message sent again under its id.
        Publishes are listened to only in a process that handles zart tasks: a receiver makes zart's own sends
        (in a zart worker that imports this app) take Celery's slower path (`zart.celery.wire`)."""
        if not any(taken):
            return
        with self._taken_lock:
            self._taken[token] = taken
            while len(self._taken) > REMEMBERED_FALLBACKS:  # the main process never learns when to let go
                self._taken.popitem(last=False)
        if not self._restoring:
            self._restoring = True
            signals.before_task_publish.connect(self.on_publish, weak=False)

    def _ensure_reporter(self) -> None:
        """One thread per process that receives tasks (the worker's main process)."""
        pid = os.getpid()
        thread = self._reporters.get(pid)
        if thread is not None and thread.is_alive():
            return
        thread = threading.Thread(target=self._run_reporter, name="zart-remote-reporter", daemon=True)
        self._reporters[pid] = thread
        thread.start()

    def _run_reporter(self) -> None:
        try:
            results.connect(self.settings.database_url)
        except Exception:
            log.warning("could not connect to zart's database yet", exc_info=True)
        while True:
            time.sleep(TICK_SECONDS)
            try:
                if self._unrecorded:
                    self._record_unrecorded(time.monotonic())
                self._report(time.monotonic())
            except Exception:  # the next tick tries again; a long outage makes zart re-dispatch, as it should
                log.warning("could not report the remote steps this worker holds", exc_info=True)

    def _report(self, now: float) -> None:
        """Report new tasks, tasks that started, and (every third of a lease) every task still held."""
        with self._lock:
            held = list(self._held.items())
        due: dict[str, list[str]] = {}
        running: list[str] = []
        for token, task in held:
            active = task.request in worker_state.active_requests
            young = now - task.received_at < FIRST_REPORT_AFTER
            if active or task.request in worker_state.reserved_requests:
                task.seen_reserved = True
            elif task.seen_reserved or not (
                young or _counting_down(task.request) or self._rate_limited(task.request)
            ):
                # finished (or lost with its pool process): no longer ours to vouch for. A task waiting for
                # its countdown, or for its Celery rate limit, is held without being reserved.
                self._forget(token, task)
                continue
            if young and task.reported_at is None:
                continue
            if task.reported_at is None or (active and not task.reported_running) or (
                now - task.reported_at >= self.silence / 3
            ):
                due.setdefault(task.worker, []).append(token)
                if active:
                    running.append(token)
        for worker, tokens in due.items():
            in_flight = results.held(self.settings.database_url, tokens, running, worker, self.silence)
            for token, task in held:
                if token in tokens:
                    task.reported_at = now
                    task.reported_running = task.reported_running or token in running
                    if token not in in_flight:
                        self._forget(token, task)

    def _rate_limited(self, request: Any) -> bool:
        """Whether the worker holds `request` back in its task's token bucket (Celery's `rate_limit`)."""
        buckets = getattr(self._consumer, "task_buckets", None)
        bucket = buckets.get(getattr(request, "name", None)) if buckets is not None else None
        if bucket is None:
            return False
        try:
            return any(waiting is request for waiting, _ in list(bucket.contents))
        except RuntimeError:  # the worker's loop changed the bucket as we looked: keep it until the next tick
            return True

    def _forget(self, token: str, task: _Held) -> None:
        with self._lock:
            if self._held.get(token) is task:  # a retry of the task may have been received meanwhile
                del self._held[token]


_integration: Integration | None = None


def integrate(app: Celery | None = None, settings: Settings | None = None) -> Integration:
    """Make this Celery worker report the remote steps it runs to zart. Safe to call more than once."""
    global _integration
    if _integration is None:
        _integration = Integration(settings or load_settings())
        signals.worker_init.connect(_integration.on_worker_init, weak=False)
        signals.worker_ready.connect(_integration.on_worker_ready, weak=False)
        signals.task_received.connect(_integration.on_received, weak=False)
        signals.task_prerun.connect(_integration.on_prerun, weak=False)
        signals.task_success.connect(_integration.on_success, weak=False)
        signals.task_failure.connect(_integration.on_failure, weak=False)
        signals.task_retry.connect(_integration.on_retry, weak=False)
        signals.task_postrun.connect(_integration.on_postrun, weak=False)
        signals.task_unknown.connect(_integration.on_unknown, weak=False)
        signals.task_revoked.connect(_integration.on_revoked, weak=False)
    return _integration


def _drop_fallbacks(request: Any) -> tuple[list[Any], list[Any]]:
    """The worker's main process fails a task itself (a Reject, a hard time limit, a lost pool process) and then
    sends the message's error callbacks: drop the fallback ones from the message it decoded, or they race this
    worker's own report and may record the failure without its exception. Returns the callbacks and errbacks
    dropped."""
    taken: tuple[list[Any], list[Any]] = ([], [])
    try:
        _, _, embed = request._payload
    except (AttributeError, TypeError, ValueError):  # not a protocol 2 message: nothing of ours to drop
        return taken
    if not isinstance(embed, dict):
        return taken
    for key, dropped in zip(("callbacks", "errbacks"), taken, strict=True):
        attached = embed.get(key)
        if isinstance(attached, list):
            dropped.extend(c for c in attached if _task_of(c) in _FALLBACK_TASKS)
            attached[:] = [c for c in attached if _task_of(c) not in _FALLBACK_TASKS]
    return taken


def _put_back(options: dict[str, Any], keys: tuple[str, str], taken: tuple[list[Any], list[Any]]) -> None:
    """Add the fallback callbacks and errbacks `taken` to a message's (or a signature's) own, once."""
    for key, fallbacks in zip(keys, taken, strict=True):
        attached = list(options.get(key) or [])
        present = {_task_of(c) for c in attached}
        attached += [c for c in fallbacks if _task_of(c) not in present]
        if attached:
            options[key] = attached


def _counting_down(request: Any) -> bool:
    """Whether the worker holds `request` until its countdown (ETA). A quick one may run and finish between two
    looks of the reporter, never seen reserved or running: it was acknowledged when it started (or, acks_late,
    when it ended), and vouching for it ever after would keep alive a dispatch whose next message is elsewhere."""
    return bool(getattr(request, "eta", None)) and not getattr(request, "acknowledged", False)


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
