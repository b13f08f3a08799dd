"""Event delivery: only to an execution parked on that exact event name."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, text

from zart.store.sql import one, rows, to_json

_DELIVER = text(
    """
    WITH target AS (
        UPDATE executions SET status = 'pending', waiting_for = NULL, waiting_for_event = NULL, wake_at = NULL,
               dispatched_at = now(), updated_at = now()
        WHERE id = :id AND status = 'waiting' AND waiting_for_event = :event
        RETURNING id, run_index
    ), step AS (
        UPDATE steps SET status = 'completed', output = CAST(:payload AS jsonb), wake_at = NULL,
               completed_at = now(), updated_at = now()
        FROM target
        WHERE steps.execution_id = target.id AND steps.run_index = target.run_index
          AND steps.name = :event AND steps.kind = 'event' AND steps.status = 'waiting'
        RETURNING 1
    ), logged AS (
        INSERT INTO events (execution_id, run_index, event_name, payload, delivered_at)
        SELECT id, run_index, :event, CAST(:payload AS jsonb), now() FROM target
    )
    SELECT id FROM target
    """
)


def deliver(conn: Connection, execution_id: str, event_name: str, payload: Any) -> bool:
    """Resolve the waiting event step with `payload` and make the execution ready; False changes nothing."""
    return one(conn, _DELIVER, id=execution_id, event=event_name, payload=to_json(payload)) is not None


_DELIVERED = text(
    """
    SELECT run_index, event_name, payload, delivered_at FROM events
    WHERE execution_id = :id ORDER BY delivered_at, id
    """
)


def delivered_to(conn: Connection, execution_id: str) -> list[dict[str, Any]]:
    """Every event delivered to this execution, oldest first (served by the execution_id index)."""
    return rows(conn, _DELIVERED, id=execution_id)
