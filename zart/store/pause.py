"""Pause rules: stored, listed, resumed (soft delete), deleted, matched at claim and at step start."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, text

from zart.store.sql import one, rows, scalar

# A rule holds while it is neither resumed nor expired.
ACTIVE = "r.resumed_at IS NULL AND (r.expires_at IS NULL OR r.expires_at > now())"



def matches_execution(alias: str) -> str:
    """Does rule r apply to the execution aliased `alias` as a whole (not to particular steps)?"""
    return f"""
    (r.applies_to_all OR ((r.execution_id IS NULL OR r.execution_id = {alias}.id)
                          AND (r.task IS NULL OR r.task = {alias}.task)))
"""


def holds(alias: str) -> str:
    """Claim-time hold of the execution aliased `alias`: an active rule without a step pattern matches it."""
    return f"""
    EXISTS (SELECT 1 FROM pause_rules r WHERE {ACTIVE} AND r.step_pattern IS NULL AND {matches_execution(alias)})
"""


MATCHES_EXECUTION = matches_execution("e")

# The active rules as one value that changes whenever one is created, lifted, deleted or expires; NULL when none.
# Checkpoints report it, so a running execution re-reads its matching rules only when they may have changed.
RULES_VERSION = (
    f"(SELECT nullif(count(*), 0)::text || ':' || max(r.created_at)::text FROM pause_rules r WHERE {ACTIVE})"
)

HOLDS_EXECUTION = holds("e")

def rules_version(conn: Connection) -> str | None:
    return scalar(conn, text(f"SELECT {RULES_VERSION}"))  # type: ignore[no-any-return]


_COLUMNS = """
    r.id AS rule_id, r.execution_id, r.task, r.step_pattern, r.applies_to_all AS "all", r.reason, r.expires_at,
    r.created_at, r.created_by, r.resumed_at, r.resumed_by,
"""

_INSERT = text(
    f"""
    INSERT INTO pause_rules AS r (id, execution_id, task, step_pattern, applies_to_all, reason, expires_at,
                                  created_at, created_by)
    VALUES (:id, :execution_id, :task, :step_pattern, :all, :reason, :expires_at, now(), :by)
    RETURNING {_COLUMNS} {ACTIVE} AS active
    """
)


def create_rule(
    conn: Connection,
    *,
    rule_id: str,
    execution_id: str | None,
    task: str | None,
    step_pattern: str | None,
    applies_to_all: bool,
    reason: str | None,
    expires_at: datetime | None,
    created_by: str,
) -> dict[str, Any]:
    row = one(
        conn,
        _INSERT,
        id=rule_id,
        execution_id=execution_id,
        task=task,
        step_pattern=step_pattern,
        all=applies_to_all,
        reason=reason,
        expires_at=expires_at,
        by=created_by,
    )
    assert row is not None
    return row


def list_rules(
    conn: Connection, include_inactive: bool, limit: int | None = None, offset: int = 0
) -> list[dict[str, Any]]:
    condition = "TRUE" if include_inactive else ACTIVE
    statement = text(
        f"SELECT {_COLUMNS} {ACTIVE} AS active FROM pause_rules r WHERE {condition} "
        "ORDER BY r.created_at, r.id LIMIT :limit OFFSET :offset"
    )
    return rows(conn, statement, limit=limit, offset=offset)


def count_rules(conn: Connection, include_inactive: bool) -> int:
    condition = "TRUE" if include_inactive else ACTIVE
    return int(scalar(conn, text(f"SELECT count(*) FROM pause_rules r WHERE {condition}")))


_LOCK_AND_COUNT_ACTIVE = text(
    f"""
    SELECT count(*) FROM pause_rules r, (SELECT pg_advisory_xact_lock(hashtext('zart.pause_rules'))) AS locked
    WHERE {ACTIVE}
    """
)


def lock_and_count_active(conn: Connection) -> int:
    """Serialise rule creation for the rest of the transaction, and count the active rules."""
    return int(scalar(conn, _LOCK_AND_COUNT_ACTIVE))


_GET = text(f"SELECT {_COLUMNS} {ACTIVE} AS active FROM pause_rules r WHERE r.id = :id")


def get_rule(conn: Connection, rule_id: str) -> dict[str, Any] | None:
    return one(conn, _GET, id=rule_id)


_RESUME = text(
    f"""
    UPDATE pause_rules AS r SET resumed_at = now(), resumed_by = :by
    WHERE r.id = :id AND r.resumed_at IS NULL
    RETURNING {_COLUMNS} FALSE AS active
    """
)


def resume_rule(conn: Connection, rule_id: str, resumed_by: str) -> dict[str, Any] | None:
    """Soft delete; None when the rule is missing or already resumed."""
    return one(conn, _RESUME, id=rule_id, by=resumed_by)


_DELETE = text("DELETE FROM pause_rules WHERE id = :id RETURNING id")


def delete_rule(conn: Connection, rule_id: str) -> bool:
    return one(conn, _DELETE, id=rule_id) is not None


_FOR_EXECUTION = text(
    f"""
    SELECT r.id, r.step_pattern, r.expires_at FROM pause_rules r, executions e
    WHERE e.id = :id AND {ACTIVE} AND {MATCHES_EXECUTION}
    ORDER BY r.created_at
    """
)


def active_rules_for(conn: Connection, execution_id: str) -> list[dict[str, Any]]:
    """The active rules that may hold some step of this execution (step patterns are matched by the caller)."""
    return rows(conn, _FOR_EXECUTION, id=execution_id)


_HELD_BY = text(
    f"""
    SELECT r.id AS rule_id, r.reason, r.step_pattern FROM pause_rules r, executions e
    WHERE e.id = :id AND {ACTIVE} AND {MATCHES_EXECUTION}
      AND (r.step_pattern IS NULL OR r.id = e.waiting_for ->> 'rule')
    ORDER BY r.created_at LIMIT 1
    """
)


def holding_rule(conn: Connection, execution_id: str) -> dict[str, Any] | None:
    """The rule that holds this execution now (at claim, or parked at a step), if any."""
    return one(conn, _HELD_BY, id=execution_id)


# Rules that stopped holding (resumed, expired, or deleted while holding) and whose held executions have
# not been released yet: mark them released, make the parked executions pending, and return every execution
# that needs a doorbell (parked ones and pending ones the claim turned away).
_RELEASE = text(
    f"""
    WITH lifted AS (
        UPDATE pause_rules r SET released_at = now()
        WHERE r.released_at IS NULL AND NOT ({ACTIVE})
        RETURNING r.id, r.execution_id, r.task, r.applies_to_all
    ), parked AS (
        UPDATE executions e SET status = 'pending', waiting_for = NULL, wake_at = NULL, dispatched_at = now(),
               updated_at = now()
        FROM lifted
        WHERE e.status = 'waiting' AND e.waiting_for ->> 'kind' = 'pause' AND e.waiting_for ->> 'rule' = lifted.id
        RETURNING e.id
    ), turned_away AS (
        -- only when a rule was lifted: a join the planner drives from the pending rows would walk the whole
        -- backlog every sweep to find none
        SELECT e.id FROM executions e, lifted r
        WHERE e.status = 'pending' AND {MATCHES_EXECUTION} AND EXISTS (SELECT 1 FROM lifted)
        LIMIT :limit
    )
    SELECT id FROM parked UNION SELECT id FROM turned_away
    """
)


def release_lifted(conn: Connection, limit: int) -> list[str]:
    return [row["id"] for row in rows(conn, _RELEASE, limit=limit)]


_ORPHANED = text(
    """
    UPDATE executions e SET status = 'pending', waiting_for = NULL, wake_at = NULL, dispatched_at = now(),
           updated_at = now()
    WHERE e.status = 'waiting' AND e.waiting_for ->> 'kind' = 'pause'
      AND NOT EXISTS (SELECT 1 FROM pause_rules r WHERE r.id = e.waiting_for ->> 'rule')
    RETURNING e.id
    """
)


def release_orphaned(conn: Connection) -> list[str]:
    """Executions parked on a rule that was deleted outright."""
    return [row["id"] for row in rows(conn, _ORPHANED)]
