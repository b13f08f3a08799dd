"""The sweeper: the loop in every worker that turns Postgres state back into doorbells.

Every worker's sweeper wakes at its interval, but the duties are the fleet's: the first to wake after the
interval takes the fleet's turn (one statement) and sweeps; the others only renew their self-claim markers.
A sweep is one loop calling one small function per duty (see `duties`): lost messages, due timers, expired
leases, lifted pause rules under one advisory lock (so two overlapping sweeps never do them twice); then
overdue executions, the stranded check, count folding and retention, each in its own transaction; then
schedules.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import datetime

from zart.celery.doorbell import Publisher
from zart.config import Settings
from zart.dispatch.broker import BrokerProbe
from zart.dispatch.duties import LOCKED_DUTIES, OWN_TRANSACTION_DUTIES, SWEEP_BATCH, Round, redispatch_budget
from zart.observability import hooks
from zart.schedules import firing
from zart.store import db, sweeps

log = logging.getLogger(__name__)

__all__ = ["SWEEP_BATCH", "Sweeper", "redispatch_budget"]

# a lone sweeper's ticks fall a little more than its interval apart: the turn opens slightly sooner, so that
# sweeper never misses its own turn
TURN_SHARE = 0.9


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
        interval = self._settings.sweep_interval
        while not self._stop.wait(interval):
            started = time.perf_counter()
            try:
                with db.autocommit(self._settings.database_url) as conn:
                    turn = sweeps.take_turn(conn, interval * TURN_SHARE)
                if turn is None:
                    self._probe.announce()
                    continue
                self.sweep_once(turn)
                hooks.sweep_pass(time.perf_counter() - started)
            except Exception:
                log.warning("sweep failed; trying again in %ss", interval, exc_info=True)
            self.fire_schedules()

    def sweep_once(self, now: datetime | None = None) -> list[str]:
        """Every duty once (`now`: the database's clock as the sweep began, when the caller has it); returns
        the executions whose doorbells were rung."""
        url = self._settings.database_url
        if now is None:
            with db.autocommit(url) as conn:
                now = sweeps.database_now(conn)
        # the broker is asked before the transaction opens, so a slow broker never holds row locks or the lock
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
