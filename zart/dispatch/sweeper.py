"""The sweeper: the loop in every worker that turns Postgres state back into doorbells.

Due timers, expired leases, lifted pause rules, lost messages and overdue executions are all found in the
store; an advisory lock lets one worker of the fleet sweep at a time.
"""

from __future__ import annotations

import logging
import threading

from zart.config import Settings
from zart.dispatch.broker import BrokerProbe, BrokerState, Publisher
from zart.engine.runner import finish_with_parent
from zart.flow.handoff import dispatch_held
from zart.retention import prune
from zart.schedules import firing
from zart.store import counts, db, pause, sweeps

log = logging.getLogger(__name__)

SWEEP_BATCH = 500


class Sweeper:
    """Runs in a worker's main process, in its own thread."""

    def __init__(self, settings: Settings, publisher: Publisher, probe: BrokerProbe) -> None:
        self._settings = settings
        self._publisher = publisher
        self._probe = probe
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="zart-sweeper", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._probe.close()

    def _loop(self) -> None:
        while not self._stop.wait(self._settings.sweep_interval):
            try:
                self.sweep_once()
            except Exception:
                log.warning("sweep failed; trying again in %ss", self._settings.sweep_interval, exc_info=True)
            self.fire_schedules()

    def sweep_once(self) -> list[str]:
        """Wake due timers, recover expired leases, re-publish lost messages, fail overdue executions."""
        url = self._settings.database_url
        # asked before the transaction opens, so a slow broker never holds row locks or the sweep lock
        with db.autocommit(url) as conn:
            now = sweeps.database_now(conn)
        broker = self._probe.inspect(now)
        with db.transaction(url) as conn:
            if not sweeps.try_lock(conn):
                return []
            unclaimed = sweeps.count_ready_pending(conn)
            ready = sweeps.wake_due(conn, SWEEP_BATCH)
            ready += sweeps.recover_expired_leases(conn, SWEEP_BATCH)
            ready += pause.release_lifted(conn, SWEEP_BATCH) + pause.release_orphaned(conn)
            budget = redispatch_budget(unclaimed, broker)
            if broker is not None and budget:
                ready += sweeps.redispatch_stale(conn, self._settings.redispatch_after, budget, broker.forgotten_before)
            overdue = sweeps.overdue(conn, SWEEP_BATCH)
        self._fold_counts(url)
        ready += self._held_ready(url)
        self._apply_retention(url)
        timed_out = {"type": "ExecutionTimeout", "message": "execution exceeded its timeout"}
        for execution_id in overdue:
            _, parent = finish_with_parent(
                url, execution_id, status="failed", token=None, error=timed_out, overdue_only=True
            )
            if parent is not None:
                ready.append(parent)
        for execution_id in ready:
            self._publisher.publish(execution_id)
        return ready

    def _held_ready(self, url: str) -> list[str]:
        """The safety net for limits: held executions that may start now but got no doorbell (the run that
        freed their slot died before ringing, or a limit was raised). One query over the limits, not a scan
        of held rows; a rate-limited head is rung only once its token is due."""
        published: list[str] = []
        with db.transaction(url) as conn:
            if sweeps.try_lock(conn):
                dispatch_held(conn, None, lambda execution_id, _: published.append(execution_id), 0.0)
        return published

    def fire_schedules(self) -> None:
        """Leader-free, outside the sweep lock: sweepers share due schedules row by row, and a tick's derived
        execution id makes it fire once whatever the race."""
        try:
            firing.fire_due(self._settings.database_url, self._publisher.publish, self._settings.schedule_grace)
        except Exception:
            log.warning("firing schedules failed; trying again next sweep", exc_info=True)

    @staticmethod
    def _fold_counts(url: str) -> None:
        """Housekeeping in its own transaction: a failure here must never hold up recovery."""
        try:
            with db.transaction(url) as conn:
                if sweeps.try_lock(conn):
                    counts.fold_deltas(conn)
        except Exception:
            log.warning("could not fold execution counts; trying again next sweep", exc_info=True)

    def _apply_retention(self, url: str) -> None:
        """Delete a few batches of executions past their retention; never holds up recovery."""
        if not self._settings.retention:
            return
        try:
            prune.sweep(url, self._settings.retention)
        except Exception:
            log.warning("retention pass failed; trying again next sweep", exc_info=True)


def redispatch_budget(unclaimed: int, broker: BrokerState | None) -> int:
    """How many stale pending rows to re-publish: none while the broker is unreachable (the publication would
    fail and only lengthen the row's back-off), and no more than have no message in the queue.

    When the queue holds at least as many messages as there are unclaimed rows, every row is probably
    queued behind a busy fleet; re-publishing would only bury the real messages under duplicates.
    """
    if broker is None:
        return 0
    return max(0, min(SWEEP_BATCH, unclaimed - broker.queued))
