"""What the sweeper asks the broker about its queue (the doorbell itself is `zart.celery.doorbell`).

Nothing here is ever the truth about an execution; a failure is logged and the sweep goes on.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from celery import Celery

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BrokerState:
    """What the broker holds, as far as re-publication cares.

    `forgotten_before`: messages published before this instant went to a broker that has since lost its data
    (flushed, or restarted without persistence); None when the broker has kept everything or cannot tell.
    """

    queued: int
    forgotten_before: datetime | None


class BrokerProbe:
    """Asked once per sweep; keeps one connection between calls and replaces it only when it fails.

    A Redis broker also keeps a marker key holding the instant the marker was first written: a flush or a
    restart without persistence removes it together with every queued message, so a missing marker means
    every earlier publication is gone and the sweeper may send those doorbells again at once.
    """

    def __init__(self, app: Celery) -> None:
        self._app = app
        self._queue: str = app.conf.task_default_queue
        self._connection: Any = None

    @property
    def marker_key(self) -> str:
        return f"zart:{self._queue}:broker-since"

    def inspect(self, now: datetime) -> BrokerState | None:
        """The broker's state, or None when it is unreachable (so nothing could be published either)."""
        try:
            if self._connection is None:
                self._connection = self._app.connection_for_read()
                self._connection.ensure_connection(max_retries=0)
            channel = self._connection.default_channel
            return BrokerState(self._queued(channel), self._forgotten_before(channel, now))
        except Exception as exc:
            log.info("broker unreachable from the sweeper: %s", exc)
            self.close()
            return None

    def close(self) -> None:
        if self._connection is not None:
            self._connection.release()
            self._connection = None

    def _queued(self, channel: Any) -> int:
        try:
            return int(channel.queue_declare(queue=self._queue, passive=True).message_count)
        except self._connection.channel_errors:  # no such queue: a Redis list disappears when emptied
            return 0

    def _forgotten_before(self, channel: Any, now: datetime) -> datetime | None:
        if self._connection.transport.driver_type != "redis":
            return None
        client = channel.client
        if client.set(self.marker_key, now.isoformat(), nx=True):
            return now
        value = client.get(self.marker_key)
        return datetime.fromisoformat(value.decode() if isinstance(value, bytes) else value) if value else now
