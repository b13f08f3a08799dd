"""The sweeper: the loop in every worker that turns Postgres state back into doorbells.

Every worker's sweeper wakes at its interval, but the duties are the fleet's: the first to wake after the
interval takes the fleet's turn (one statement) and sweeps; the others only renew their self-claim markers.
The taker mirrors its turn in the broker for a few intervals, so while it keeps sweeping the others do not
ask Postgres at all: an idle fleet of any size costs Postgres one turn per interval, not one per worker. A
sweeper that cannot see the mirror (gone, lapsed, no Redis) asks Postgres as before.
A sweep is one loop calling one small function per duty (see `duties`): lost messages, due timers, expired
leases, lifted pause rules under one advisory lock (so two overlapping sweeps never do them twice); then
overdue executions, the stranded check, count folding and retention, each in its own transaction; then
schedules.
"""

from __future__ import annotations

import hashlib
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from datetime import datetime

from sqlalchemy import Connection

from zart.celery.doorbell import Publisher
from zart.config import Settings
from zart.dispatch.broker import BrokerProbe, SweepLead
from zart.dispatch.duties import LOCKED_DUTIES, OWN_TRANSACTION_DUTIES, SWEEP_BATCH, Round, redispatch_budget
from zart.observability import hooks
from zart.schedules import firing
from zart.store import catalog, db, sweeps
from zart.store.identity import database_identity

log = logging.getLogger(__name__)

__all__ = ["SWEEP_BATCH", "Sweeper", "redispatch_budget"]

# a lone sweeper's ticks fall a little more than its interval apart: the turn opens slightly sooner, so that
# sweeper never misses its own turn
TURN_SHARE = 0.9
# the broker's mirror of a turn stands this many intervals from the end of the sweep that renewed it; the taker
# renews it an interval plus its next sweep later, so a sweep longer than about one interval lets the others ask
# again, and a taker that stops is replaced up to this much later than with every sweeper asking Postgres
LEAD_INTERVALS = 2.0


class Sweeper:
    """Runs in a worker's main process, in its own thread."""

    def __init__(
        self,
        settings: Settings,
        publisher: Publisher,
        probe: BrokerProbe,
        pending_start: Callable[[], object] | None = None,
    ) -> None:
        self._settings = settings
        self._publisher = publisher
        self._probe = probe
        # the worker's start-up writes (its catalog, its declared schedules) when they failed as it became
        # ready (Postgres unreachable): tried again before each pass until they go through
        self._pending_start = pending_start
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="zart-sweeper", daemon=True)
        self._lead: SweepLead | None = None

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        if self._lead is not None:
            self._probe.release_lead(self._lead)
        self._probe.withdraw()
        self._probe.close()

    def _loop(self) -> None:
        interval = self._settings.sweep_interval
        while not self._stop.wait(interval):
            started = time.perf_counter()
            self._finish_start()
            try:
                if self._probe.announce(self._lead):  # another sweeper holds the fleet's turn
                    continue
                with db.autocommit(self._settings.database_url) as conn:
                    if self._lead is None:
                        self._lead = _lead_for(conn, self._settings, self._probe.queue)
                    turn = sweeps.take_turn(conn, interval * TURN_SHARE)
                if turn is None:
                    continue
                self.sweep_once(turn)
                # mirrored only once the sweep went through: a sweeper whose sweeps fail (a duty its own
                # connection refuses, say) never keeps the others from sweeping
                self._probe.hold_lead(self._lead)
                hooks.sweep_pass(time.perf_counter() - started)
            except Exception:
                log.warning("sweep failed; trying again in %ss", interval, exc_info=True)
            self.fire_schedules()

    def _finish_start(self) -> None:
        if self._pending_start is None:
            return
        try:
            self._pending_start()
        except Exception:
            log.warning("could not record this worker's tasks yet; trying again in %ss",
                        self._settings.sweep_interval, exc_info=True)
            return
        log.info("recorded this worker's tasks")
        self._pending_start = None

    def sweep_once(self, now: datetime | None = None) -> list[str]:
        """Every duty once (`now`: the database's clock as the sweep began, when the caller has it); returns
        the executions whose doorbells were rung."""
        url = self._settings.database_url
        with db.autocommit(url) as conn:
            if now is None:
                now = sweeps.database_now(conn)
            routed = tuple(catalog.routed_queues(conn))  # each queue's messages are weighed on their own
        # the broker is asked before the transaction opens, so a slow broker never holds row locks or the lock
        round_ = Round(self._settings, self._probe.inspect(now, routed))
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
        """Outside the sweep lock, by the turn's taker: sweepers whose turns overlap (a long sweep lets another
        take the next one once the mirror lapses) share due schedules row by row, and a tick's derived execution
        id makes it fire once whatever the race."""
        try:
            firing.fire_due(self._settings.database_url, self._publisher.publish_many, self._settings.schedule_grace)
        except Exception:
            log.warning("firing schedules failed; trying again next sweep", exc_info=True)


def _lead_for(conn: Connection, settings: Settings, queue: str) -> SweepLead:
    """This sweeper's mirror of the fleet's turn. It is keyed by the database swept (name, oid and the server's
    start, so deployments sharing one Redis never mix) and by what the sweep does here (the duties' settings
    and the queue whose broker state it reads): a sweeper defers only to a taker that sweeps as it would, and
    sweepers configured differently keep taking turns between them in Postgres."""
    identity = database_identity(conn)
    duties = (settings.retention, settings.redispatch_after, settings.schedule_grace, settings.sweep_interval, queue)
    digest = hashlib.sha1(repr((tuple(identity), duties)).encode(), usedforsecurity=False).hexdigest()[:16]
    holder = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
    return SweepLead(f"zart:sweep-lead:{identity.name}:{digest}", holder, LEAD_INTERVALS * settings.sweep_interval)
