"""The sweeper's queries: due timers, expired leases, lost messages, overdue executions.

Each runs under a transaction-scoped advisory lock so that many workers sweeping at once do the work once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, text

from zart.store.sql import rows, scalar

SWEEP_LOCK_KEY = 0x7A617274  # "zart"

_TRY_LOCK = text("SELECT pg_try_advisory_xact_lock(:key)")

_WAKE_DUE = text(
    """
    UPDATE executions SET status = 'pending', waiting_for = NULL, waiting_for_event = NULL,
           dispatched_at = now(), updated_at = now()
    WHERE id IN (SELECT id FROM executions WHERE status = 'waiting' AND wake_at <= now()
                 ORDER BY wake_at LIMIT :limit FOR UPDATE SKIP LOCKED)
    RETURNING id
    """
)

_RECOVER_EXPIRED = text(
    """
    UPDATE executions SET status = 'pending', lease_token = NULL, lease_expires_at = NULL, leased_by = NULL,
           recoveries = recoveries + 1, dispatched_at = now(), updated_at = now()
    WHERE id IN (SELECT id FROM executions WHERE status = 'running' AND lease_expires_at < now()
                 LIMIT :limit FOR UPDATE SKIP LOCKED)
    RETURNING id
    """
)

# Rows whose doorbells go to `queues` (`with_default`: also the default queue's, stored as no queue), or with
# `others` every row but those; no restriction when `queues` is NULL.
_OF_QUEUES = """(CAST(:queues AS text[]) IS NULL
                   OR (coalesce(queue = ANY(CAST(:queues AS text[])), false) OR (queue IS NULL AND :with_default))
                      <> :others)"""

# The interval between re-publications doubles (from `older_than`, up to five minutes): `updated_at` marks
# when the row became pending and only the first publication moves both, so `dispatched_at - updated_at` is
# how long it has already gone unclaimed. A row last published before the broker lost its data skips the wait.
_REDISPATCH = text(
    f"""
    UPDATE executions SET dispatched_at = now()
    WHERE id IN (SELECT id FROM executions
                 WHERE status = 'pending' AND (wake_at IS NULL OR wake_at <= now()) AND held_by IS NULL
                   AND {_OF_QUEUES}
                   AND (dispatched_at < now() - greatest(make_interval(secs => :older_than),
                                                         least(dispatched_at - updated_at, interval '5 minutes'))
                        OR dispatched_at < CAST(:forgotten_before AS timestamptz))
                 ORDER BY dispatched_at LIMIT :limit FOR UPDATE SKIP LOCKED)
    RETURNING id
    """
)

_NOW = text("SELECT now()")

# the fleet's sweep turn: taken when the last one began at least `interval` seconds ago; a sweeper that finds
# the row being taken skips it (no queue of workers on one row lock), and the row is recreated if missing.
# Workers tick independently, so the first to tick after the interval sweeps.
_TAKE_TURN = text(
    """
    WITH taken AS (
        UPDATE sweep_turns SET started_at = now()
        WHERE id IN (SELECT id FROM sweep_turns WHERE started_at <= now() - make_interval(secs => :interval)
                     FOR UPDATE SKIP LOCKED)
        RETURNING started_at
    ), made AS (
        INSERT INTO sweep_turns (id, started_at) SELECT 1, now() WHERE NOT EXISTS (SELECT 1 FROM sweep_turns)
        ON CONFLICT (id) DO NOTHING
        RETURNING started_at
    )
    SELECT started_at FROM taken UNION ALL SELECT started_at FROM made
    """
)

# counted up to a cap: the sweeper only needs to know whether more rows are unclaimed than the queue holds
_READY_PENDING = text(
    f"""
    SELECT count(*) FROM (SELECT 1 FROM executions WHERE status = 'pending' AND (wake_at IS NULL OR wake_at <= now())
                          AND held_by IS NULL AND {_OF_QUEUES} LIMIT :cap) ready
    """
)

_OVERDUE = text(
    """
    SELECT id FROM executions
    WHERE status IN ('pending', 'running', 'waiting') AND deadline_at IS NOT NULL AND deadline_at <= now()
    ORDER BY deadline_at LIMIT :limit
    """
)


def try_lock(conn: Connection) -> bool:
    return bool(scalar(conn, _TRY_LOCK, key=SWEEP_LOCK_KEY))


def wake_due(conn: Connection, limit: int) -> list[str]:
    return [r["id"] for r in rows(conn, _WAKE_DUE, limit=limit)]


def recover_expired_leases(conn: Connection, limit: int) -> list[str]:
    return [r["id"] for r in rows(conn, _RECOVER_EXPIRED, limit=limit)]


@dataclass(frozen=True)
class QueueSet:
    """Rows whose doorbells go to `queues` (`with_default`: also those of the default queue, stored as no
    queue); `others`: every row but those."""

    queues: tuple[str, ...]
    with_default: bool = False
    others: bool = False

    def params(self) -> dict[str, Any]:
        return {"queues": list(self.queues), "with_default": self.with_default, "others": self.others}


EVERY_QUEUE: dict[str, Any] = {"queues": None, "with_default": True, "others": False}


def redispatch_stale(
    conn: Connection,
    older_than: float,
    limit: int,
    forgotten_before: datetime | None = None,
    of: QueueSet | None = None,
) -> list[str]:
    statement_rows = rows(
        conn, _REDISPATCH, older_than=older_than, limit=limit, forgotten_before=forgotten_before,
        **(of.params() if of is not None else EVERY_QUEUE),
    )
    return [r["id"] for r in statement_rows]


def database_now(conn: Connection) -> datetime:
    """The transaction's clock, the one every `dispatched_at` is written with."""
    return scalar(conn, _NOW)


def take_turn(conn: Connection, interval: float) -> datetime | None:
    """The database's clock when this sweeper takes the fleet's turn to sweep, or None when another sweeper
    took it less than `interval` seconds ago."""
    return scalar(conn, _TAKE_TURN, interval=interval)


def count_ready_pending(conn: Connection, cap: int, of: QueueSet | None = None) -> int:
    """Ready pending rows (of those queues), counted up to `cap` (so a large backlog costs no more than a small
    one)."""
    return int(scalar(conn, _READY_PENDING, cap=cap, **(of.params() if of is not None else EVERY_QUEUE)))


def overdue(conn: Connection, limit: int) -> list[str]:
    return [r["id"] for r in rows(conn, _OVERDUE, limit=limit)]
