"""The liveness invariant as one query: every non-terminal execution has a live reason to progress.

An execution that is pending, running or waiting and has none of the reasons below is *stranded*: nothing
will ever move it again. A new kind of wait adds its reason to LIVE_REASONS (and, when a stranded row of
that kind can be repaired, a cause to CAUSES and a repair beside the others).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, text

from zart.store.pause import ACTIVE as RULE_ACTIVE
from zart.store.sql import rows, scalar

# The waits a parked execution is woken from, by name: each a condition on execution row `e`.
LIVE_REASONS: dict[str, str] = {
    # pending rows are published, or re-published by the sweeper when their message was lost
    "dispatchable": "e.status = 'pending' AND e.held_by IS NULL",
    # held back by a limit: dispatched by whoever frees its capacity, or by the sweeper's held duty
    "held": """e.status = 'pending' AND e.held_by IS NOT NULL
        AND EXISTS (SELECT 1 FROM flow_limits l WHERE l.name = e.flow_limit)""",
    "leased": "e.status = 'running' AND e.lease_expires_at > now()",
    # sleeps, retry back-offs, event timeouts and pause-rule expiries: the sweeper wakes them when due
    "timer": "e.status = 'waiting' AND e.wake_at IS NOT NULL",
    "event": "e.status = 'waiting' AND e.waiting_for_event IS NOT NULL",
    # children (in a wait that may also hold remote steps) still running: each reports to its parent
    "children": """e.status = 'waiting' AND e.waiting_for ->> 'kind' IN ('children', 'remote') AND EXISTS (
        SELECT 1 FROM steps s JOIN executions c ON c.id = s.child_id
        WHERE s.execution_id = e.id AND s.run_index = e.run_index
          AND s.name IN (SELECT jsonb_array_elements_text(e.waiting_for -> 'steps'))
          AND s.status NOT IN ('completed', 'failed') AND c.status IN ('pending', 'running', 'waiting'))""",
    # a Celery task dispatched as a remote step and still in flight: its worker (or the fallback callback)
    # records the outcome, and the sweeper wakes the workflow once nobody has reported on it in time
    "remote": """e.status = 'waiting' AND e.waiting_for ->> 'kind' = 'remote' AND EXISTS (
        SELECT 1 FROM remote_steps r
        WHERE r.execution_id = e.id AND r.run_index = e.run_index
          AND r.step_name IN (SELECT jsonb_array_elements_text(e.waiting_for -> 'steps'))
          AND r.state IN ('sent', 'started', 'retry'))""",
    "pause": f"""e.status = 'waiting' AND e.waiting_for ->> 'kind' = 'pause' AND EXISTS (
        SELECT 1 FROM pause_rules r WHERE r.id = e.waiting_for ->> 'rule' AND {RULE_ACTIVE})""",
}

# Why a stranded row is stranded, when the shape of the row says so; anything else is `no_wake_up`.
CAUSES: dict[str, str] = {
    "lease_expired": "e.status = 'running'",
    "children_finished": "e.waiting_for ->> 'kind' = 'children'",
    "remote_finished": "e.waiting_for ->> 'kind' = 'remote'",
    "pause_rule_inactive": "e.waiting_for ->> 'kind' = 'pause'",
    "limit_gone": "e.status = 'pending' AND e.held_by IS NOT NULL",
}

_ACTIVE = "e.status IN ('pending', 'running', 'waiting')"
_LIVE = " OR ".join(f"({condition})" for condition in LIVE_REASONS.values())
_CAUSE = "CASE " + " ".join(f"WHEN {c} THEN '{name}'" for name, c in CAUSES.items()) + " ELSE 'no_wake_up' END"
STRANDED_CONDITION = f"{_ACTIVE} AND NOT ({_LIVE})"

# Where a stranded row can be: index ranges that leave out the active rows with a plain live reason (a pending
# row no limit holds is dispatchable, a waiting row with a timer is live), so the check reads the few rows that
# may be stranded, never a deep backlog or a million sleepers. Together they hold every stranded row; a new
# status would need its own.
CANDIDATES = (
    "e.status = 'running'",
    "e.status = 'pending' AND e.held_by IS NOT NULL",
    "e.status = 'waiting' AND e.wake_at IS NULL AND e.waiting_for_event IS NULL",
)


def _stranded_rows(columns: str) -> str:
    """The stranded rows among the candidates, each read by its key (OFFSET 0 keeps the planner from joining a
    handful of candidates to the whole table: it cannot know how few rows a candidate range holds)."""
    candidates = " UNION ALL ".join(f"SELECT e.id FROM executions e WHERE {c}" for c in CANDIDATES)
    return f"""
        SELECT stranded.* FROM ({candidates}) candidate
        CROSS JOIN LATERAL (SELECT {columns} FROM executions e
                            WHERE e.id = candidate.id AND {STRANDED_CONDITION} OFFSET 0) stranded
    """


_STRANDED_COLUMNS = f"""
    e.id AS execution_id, e.task, e.status, {_CAUSE} AS cause, e.run_index, e.waiting_for, e.waiting_for_event,
    e.wake_at, e.lease_expires_at, e.parent_id, e.created_at, e.updated_at
"""

_STRANDED = text(
    f"""
    SELECT * FROM ({_stranded_rows(_STRANDED_COLUMNS)}) found
    ORDER BY updated_at, execution_id
    LIMIT :limit
    """
)

_COUNT = text(f"SELECT count(*) FROM ({_stranded_rows('1 AS one')}) found")


def stranded(conn: Connection, limit: int) -> list[dict[str, Any]]:
    """Non-terminal executions with no live reason to progress, oldest first, each with its likely cause."""
    return rows(conn, _STRANDED, limit=limit)


def count_stranded(conn: Connection) -> int:
    return int(scalar(conn, _COUNT))


# Repairs for the known causes. Each re-checks the stranded condition in its own statement, so a row that
# moved on meanwhile is left alone.

_REPORT_FINISHED_CHILDREN = text(
    f"""
    UPDATE steps s SET status = CASE WHEN c.status = 'completed' THEN 'completed' ELSE 'failed' END,
           output = c.output,
           error = CASE WHEN c.status = 'cancelled'
                        THEN jsonb_build_object('type', 'Cancelled',
                                                'message', 'child execution ' || c.id || ' was cancelled')
                        ELSE c.error END,
           completed_at = now(), updated_at = now()
    FROM executions e, executions c
    WHERE e.id = :id AND {STRANDED_CONDITION} AND s.execution_id = e.id AND s.run_index = e.run_index
      AND s.kind = 'child' AND s.status = 'waiting' AND c.id = s.child_id
      AND c.status IN ('completed', 'failed', 'cancelled')
    RETURNING s.name
    """
)

_RELEASE_FROM_INACTIVE_RULE = text(
    f"""
    UPDATE executions e SET status = 'pending', waiting_for = NULL, wake_at = NULL, dispatched_at = now(),
           updated_at = now()
    WHERE e.id = :id AND {STRANDED_CONDITION} AND e.waiting_for ->> 'kind' = 'pause'
    RETURNING e.id
    """
)


def report_finished_children(conn: Connection, execution_id: str) -> int:
    """Record in a stranded parent the results of its children that ended without reporting."""
    return len(rows(conn, _REPORT_FINISHED_CHILDREN, id=execution_id))


def release_from_inactive_rule(conn: Connection, execution_id: str) -> bool:
    """Make an execution parked on a rule that no longer holds pending again."""
    return bool(rows(conn, _RELEASE_FROM_INACTIVE_RULE, id=execution_id))


_RELEASE_FROM_MISSING_LIMIT = text(
    f"""
    UPDATE executions e SET held_by = NULL, flow_limit = NULL, dispatched_at = now(), updated_at = now()
    WHERE e.id = :id AND {STRANDED_CONDITION} AND e.held_by IS NOT NULL
    RETURNING e.id
    """
)


def release_from_missing_limit(conn: Connection, execution_id: str) -> bool:
    """An execution held by a limit that no longer exists runs unlimited (nothing else would ever admit it)."""
    return bool(rows(conn, _RELEASE_FROM_MISSING_LIMIT, id=execution_id))
