"""What the sweeper asks the broker about its queue (the doorbell itself is `zart.celery.doorbell`).

Nothing here is ever the truth about an execution; a failure is logged and the sweep goes on.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from celery import Celery

from zart.celery.doorbell import self_claim_marker
from zart.celery.standby import as_text, kind_digest, kind_key, kinds_key, standby_key

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BrokerState:
    """What the broker holds, as far as re-publication cares.

    `forgotten_before`: messages published before this instant went to a broker that has since lost its data
    (flushed, or restarted without persistence); None when the broker has kept everything or cannot tell.
    """

    queued: int
    forgotten_before: datetime | None
    # the queue's workers take ready executions themselves (so one queued doorbell drains many rows)
    self_claiming: bool = False
    # the messages of each queue tasks are routed to besides the default one (`queued`)
    routed: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class SweepLead:
    """The fleet's sweeping turn as its taker mirrors it in the broker: while it stands, the other sweepers
    know the fleet is being swept without asking Postgres (whose turn row stays the only arbiter)."""

    # one per database and sweep configuration (see `zart.dispatch.sweeper`): deployments sharing a Redis never
    # mix, and sweepers configured differently keep taking turns in Postgres
    key: str
    holder: str  # the sweeper that took the turn last
    seconds: float  # how long the mirror stands without being renewed



def broker_marker(queue: str) -> str:
    """The Redis key whose absence tells the sweeper that the broker lost every message published before."""
    return f"zart:{queue}:broker-since"


class BrokerProbe:
    """Asked at each of the sweeper's wakes; keeps one connection between calls and replaces it only when it
    fails.

    A Redis broker also keeps a marker key holding the instant the marker was first written: a flush or a
    restart without persistence removes it together with every queued message, so a missing marker means
    every earlier publication is gone and the sweeper may send those doorbells again at once.
    """

    def __init__(
        self,
        app: Celery,
        queues: tuple[str, ...] = (),
        self_claim: bool = False,
        announce_seconds: float = 10.0,
        tasks: tuple[str, ...] = (),
    ) -> None:
        self._app = app
        self._queue: str = app.conf.task_default_queue
        self._connection: Any = None
        self._queues = queues
        self._self_claim = self_claim
        self._announce_seconds = max(int(announce_seconds), 1)
        self._tasks = tuple(sorted(set(tasks)))  # what this worker runs: announced as its kind on its queues
        self._kind = kind_digest(self._tasks)

    @property
    def queue(self) -> str:
        """The queue whose state `inspect` reads: the worker's default queue."""
        return self._queue

    @property
    def marker_key(self) -> str:
        return broker_marker(self._queue)

    def inspect(self, now: datetime, routed: tuple[str, ...] = ()) -> BrokerState | None:
        """The broker's state, with the messages of each of the `routed` queues, or None when it is unreachable
        (so nothing could be published either)."""
        try:
            channel = self._channel()
            return BrokerState(
                self._queued(channel),
                self._forgotten_before(channel, now),
                self._self_claiming(channel)[0],
                {queue: self._queued(channel, queue) for queue in routed if queue != self._queue},
            )
        except Exception as exc:
            log.info("broker unreachable from the sweeper: %s", exc)
            self.close()
            return None

    def announce(self, lead: SweepLead | None = None) -> bool:
        """Renew this worker's self-claim markers (a sweeper that does not sweep still drains its queues, and
        says so); True when another sweeper holds the fleet's turn, as `lead` mirrors it in the broker. False
        whenever the broker cannot tell (not Redis, unreachable): the sweeper then asks Postgres."""
        try:
            _, holder = self._self_claiming(self._channel(), lead.key if lead is not None else None)
        except Exception as exc:
            log.info("broker unreachable from the sweeper: %s", exc)
            self.close()
            return False
        return lead is not None and holder is not None and as_text(holder) != lead.holder

    def hold_lead(self, lead: SweepLead) -> None:
        """Mirror a turn this sweeper has just taken in Postgres; it lapses unless the next turn renews it."""
        try:
            channel = self._channel()
            if self._connection.transport.driver_type == "redis":
                channel.client.set(lead.key, lead.holder, px=int(lead.seconds * 1000))
        except Exception as exc:  # the others ask Postgres, as they would without the mirror
            log.info("broker unreachable from the sweeper: %s", exc)
            self.close()

    def release_lead(self, lead: SweepLead) -> None:
        """A stopping sweeper gives up its mirror, so another takes the turn at its next wake."""
        if self._connection is None or self._connection.transport.driver_type != "redis":
            return
        try:
            client = self._connection.default_channel.client
            holder = client.get(lead.key)
            if holder is not None and as_text(holder) == lead.holder:
                client.delete(lead.key)
        except Exception as exc:  # it lapses by itself
            log.info("could not release the sweep lead: %s", exc)

    def withdraw(self) -> None:
        """A stopping worker no longer drains its queues: new executions get their doorbells again at once. Its
        pool processes may have been stopped in the middle of a run, standing by: every standby of its queues
        goes too (another worker's then looks once more before it leaves, as after a taken one)."""
        if not (self._self_claim and self._queues) or self._connection is None:
            return
        keys = [key for q in self._queues for key in (self_claim_marker(q), standby_key(q))]
        try:
            self._connection.default_channel.client.delete(*keys)
        except Exception as exc:  # the markers lapse by themselves
            log.info("could not withdraw the self-claim markers: %s", exc)

    def _channel(self) -> Any:
        if self._connection is None:
            self._connection = self._app.connection_for_read()
            self._connection.ensure_connection(max_retries=0)
        return self._connection.default_channel

    def close(self) -> None:
        if self._connection is not None:
            self._connection.release()
            self._connection = None

    def _queued(self, channel: Any, queue: str | None = None) -> int:
        try:
            return int(channel.queue_declare(queue=queue or self._queue, passive=True).message_count)
        except self._connection.channel_errors:  # no such queue: a Redis list disappears when emptied
            return 0

    def _self_claiming(self, channel: Any, read: str | None = None) -> tuple[bool, Any]:
        """Renew this worker's self-claim markers (they lapse soon after it stops sweeping), or remove them from
        its queues when it does not take ready executions itself (a fleet of both kinds leaves the doorbells
        on), and say whether the default queue's workers take ready executions themselves; with `read`, also
        that key's value, in the same round trip. (False, None) on a broker other than Redis.

        It also renews this worker's kind on its queues (the tasks it runs; see zart.celery.standby.kinds_key):
        a new execution is then left to a queued doorbell only if whoever takes it runs its task, and a worker
        lacking a task hands an execution on to a running worker that has it."""
        if self._connection.transport.driver_type != "redis":
            return False, None
        client = channel.client
        with client.pipeline(transaction=False) as pipe:
            for queue in self._queues:
                if self._self_claim:
                    pipe.set(self_claim_marker(queue), "1", ex=self._announce_seconds)
                else:
                    pipe.delete(self_claim_marker(queue))
            self._renew_kind(pipe)
            exists_at = len(pipe)
            pipe.exists(self_claim_marker(self._queue))
            if read is not None:
                pipe.get(read)
            replies = pipe.execute()
        return bool(replies[exists_at]), replies[-1] if read is not None else None

    def announce_kind(self) -> None:
        """Say at once which tasks this worker runs (each wake renews it with the markers): a worker starting
        does so before it wakes the executions waiting for its tasks, so a worker lacking one that takes such
        a doorbell hands it on to this one."""
        try:
            channel = self._channel()
            if self._connection.transport.driver_type != "redis":
                return
            with channel.client.pipeline(transaction=False) as pipe:
                self._renew_kind(pipe)
                pipe.execute()
        except Exception as exc:  # the first wake renews it
            log.info("broker unreachable from the sweeper: %s", exc)
            self.close()

    def _renew_kind(self, pipe: Any) -> None:
        """Queue the commands that renew this worker's kind on each of its queues (see kinds_key)."""
        if not self._tasks:
            return
        for queue in self._queues:
            pipe.sadd(kind_key(queue, self._kind), *self._tasks)
            pipe.expire(kind_key(queue, self._kind), self._announce_seconds)
            pipe.sadd(kinds_key(queue), self._kind)
            pipe.expire(kinds_key(queue), self._announce_seconds)

    def _forgotten_before(self, channel: Any, now: datetime) -> datetime | None:
        if self._connection.transport.driver_type != "redis":
            return None
        client = channel.client
        if client.set(self.marker_key, now.isoformat(), nx=True):
            return now
        value = client.get(self.marker_key)
        return datetime.fromisoformat(as_text(value)) if value else now
