"""The sweeper: the loop in every worker that turns Postgres state back into doorbells.

One loop calling one small function per duty (see `duties`): lost messages, due timers, expired leases,
lifted pause rules under one advisory lock (so one worker of the fleet does them at a time); then overdue
executions, the stranded check, count folding and retention, each in its own transaction; then schedules.
"""

from __future__ import annotations

import logging
import threading
import time

from zart.celery.doorbell import Publisher
from zart.config import Settings
from zart.dispatch.broker import BrokerProbe
from zart.dispatch.duties import LOCKED_DUTIES, OWN_TRANSACTION_DUTIES, SWEEP_BATCH, Round, redispatch_budget
from zart.observability import hooks
from zart.schedules import firing
from zart.store import db, sweeps

log = logging.getLogger(__name__)

__all__ = ["SWEEP_BATCH", "Sweeper", "redispatch_budget"]


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
        self._probe.withdraw()
        self._probe.close()

    def _loop(self) -> None:
        while not self._stop.wait(self._settings.sweep_interval):
            started = time.perf_counter()
            try:
                self.sweep_once()
                hooks.sweep_pass(time.perf_counter() - started)
            except Exception:
                log.warning("sweep failed; trying again in %ss", self._settings.sweep_interval, exc_info=True)
            self.fire_schedules()

    def sweep_once(self) -> list[str]:
        """Every duty once; returns the executions whose doorbells were rung."""
        url = self._settings.database_url
        # asked before the transaction opens, so a slow broker never holds row locks or the sweep lock
        with db.autocommit(url) as conn:
            now = sweeps.database_now(conn)
        round_ = Round(self._settings, self._probe.inspect(now))
        ready: list[str] = []
        with db.transaction(url) as conn:
            if not sweeps.try_lock(conn):
                return []
            for locked_duty in LOCKED_DUTIES:
                ready += locked_duty(conn, round_)
        for duty in OWN_TRANSACTION_DUTIES:
            try:
                ready += duty(url, round_)
            except Exception:
                log.warning("sweep duty %s failed; trying again next sweep", duty.__name__, exc_info=True)
        for execution_id in ready:
            self._publisher.publish(execution_id)
        return ready

    def fire_schedules(self) -> None:
        """Leader-free, outside the sweep lock: sweepers share due schedules row by row, and a tick's derived
        execution id makes it fire once whatever the race."""
        try:
            firing.fire_due(self._settings.database_url, self._publisher.publish_many, self._settings.schedule_grace)
        except Exception:
            log.warning("firing schedules failed; trying again next sweep", exc_info=True)
