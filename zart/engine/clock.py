"""The engine's clock: the database's, as read from this process's wall clock, moved ahead by zart.testing.

Deadlines, back-offs and timers are compared with times the database wrote (`now()`), so a worker whose wall
clock is off (a VM resumed from suspend, broken NTP) must not judge them by its own: the skew between the two
is measured at most once a minute, when a run is claimed. zart.testing moves `offset` so that sleeps,
back-offs and event timeouts pass instantly in a test.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

SYNC_SECONDS = 60.0

offset = timedelta(0)
skew = timedelta(0)  # how far the database's clock runs ahead of this process's wall clock
_synced_at: float | None = None


def utcnow() -> datetime:
    """The engine's clock: the database's time, moved ahead only by zart.testing's controllable clock."""
    return datetime.now(UTC) + skew + offset


def keep_in_step(read_database_now: Callable[[], datetime]) -> None:
    """Measure the database's clock against this process's wall clock, at most once every SYNC_SECONDS."""
    global skew, _synced_at
    started = time.monotonic()
    if _synced_at is not None and started - _synced_at < SYNC_SECONDS:
        return
    before = datetime.now(UTC)
    database = read_database_now()
    after = datetime.now(UTC)
    skew = database - (before + (after - before) / 2)
    _synced_at = started


def advance(delta: timedelta) -> None:
    global offset
    if delta > timedelta(0):
        offset += delta


def reset() -> None:
    global offset
    offset = timedelta(0)
