"""Queries on executions and runs: create, read, list, claim, park, finish, cancel."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, text

from zart.store import counts, pause
from zart.store.sql import (
    CLAIM_UNSYNCED,
    FINAL_STATE_SQL,
    NOTIFY_FINISHED_SQL,
    hot_one,
    hot_statement,
    one,
    rows,
    scalar,
    to_json,
)

# Once per execution from every client: a server-side function, so a client behind a transaction pooler does not
# have Postgres plan it at every call (it cannot prepare it there).
_INSERT = hot_statement(
    "insert_execution",
    """
    WITH lim AS (
        SELECT name, key_path, key_strategy FROM flow_limits WHERE name = :limit_name
    ), new AS (
        INSERT INTO executions (id, task, status, input, idempotency_key, deadline_at,
                                parent_id, parent_run, parent_step, function_ref, schedule_id, scheduled_for,
                                trace_context, queue, dispatched_at, created_at, updated_at, flow_limit, flow_key,
                                priority, dedup_key, wake_at)
        SELECT :id, :task, 'pending', CAST(:input AS jsonb), :idempotency_key,
               CASE WHEN CAST(:timeout AS double precision) IS NULL THEN NULL
                    ELSE now() + make_interval(secs => CAST(:timeout AS double precision)) END,
               :parent_id, :parent_run, :parent_step, :function_ref, :schedule_id,
               CAST(:scheduled_for AS timestamptz), CAST(:trace_context AS jsonb),
               -- a function child runs code of its parent's modules: its parent's queue (that pool imports them)
               CASE WHEN CAST(:function_ref AS text) IS NULL THEN (SELECT queue FROM task_catalog WHERE name = :task)
                    ELSE (SELECT p.queue FROM executions p WHERE p.id = :parent_id) END, now(), now(), now(),
               (SELECT name FROM lim), (SELECT CAST(:input AS jsonb) #>> string_to_array(key_path, '.') FROM lim),
               :priority, :dedup_key,
               CASE WHEN CAST(:delay AS double precision) IS NULL THEN NULL
                    ELSE now() + make_interval(secs => CAST(:delay AS double precision)) END
        ON CONFLICT DO NOTHING
        RETURNING id, task, status, created_at, input, flow_limit, flow_key
    ), run AS (
        INSERT INTO runs (execution_id, run_index, trigger, status, input, triggered_by, created_at)
        SELECT id, 0, 'initial', 'pending', input, :triggered_by, created_at FROM new
    )
    SELECT id, task, status, created_at, flow_limit, flow_key,
           (SELECT key_path FROM lim) AS key_path, (SELECT key_strategy FROM lim) AS key_strategy
    FROM new
    """
)


def insert_execution(
    conn: Connection,
    *,
    execution_id: str,
    task: str,
    data: Any,
    idempotency_key: str | None = None,
    timeout: float | None = None,
    parent_id: str | None = None,
    parent_run: int | None = None,
    parent_step: str | None = None,
    triggered_by: str | None = None,
    function_ref: str | None = None,
    schedule_id: str | None = None,
    scheduled_for: Any = None,
    trace_context: dict[str, str] | None = None,
    limit_name: str | None = None,
    priority: int = 0,
    dedup_key: str | None = None,
    delay: float | None = None,
) -> dict[str, Any] | None:
    """Insert a pending execution with its run 0; None when the id, idempotency key or active dedup key is
    taken. It comes under the limit named `limit_name` (default: the task's name) when that limit exists, with its
    concurrency key read from the input (`key_path` set and `flow_key` None: the input lacks the key).

    `function_ref` (a function child's `module:qualname`) is written here and nowhere else; `trace_context` is
    the W3C context every run of the execution continues."""
    return hot_one(
        conn,
        _INSERT,
        limit_name=limit_name or task,
        priority=priority,
        dedup_key=dedup_key,
        delay=delay,
        id=execution_id,
        task=task,
        input=to_json(data),
        idempotency_key=idempotency_key,
        timeout=timeout,
        parent_id=parent_id,
        parent_run=parent_run,
        parent_step=parent_step,
        triggered_by=triggered_by,
        function_ref=function_ref,
        schedule_id=schedule_id,
        scheduled_for=scheduled_for,
        trace_context=to_json(trace_context),
    )


# A sweep fires many ticks at once: one statement inserts them all (with their run 0), instead of one round trip
# per tick. Same rules as _INSERT: a taken id inserts nothing, so a tick fired twice makes one execution.
_INSERT_SCHEDULED = text(
    """
    WITH new AS (
        INSERT INTO executions (id, task, status, input, deadline_at, schedule_id, scheduled_for,
                                dispatched_at, created_at, updated_at, flow_limit, flow_key, priority, queue)
        SELECT x.id, x.task, 'pending', CAST(x.input AS jsonb),
               CASE WHEN x.timeout IS NULL THEN NULL ELSE now() + make_interval(secs => x.timeout) END,
               x.schedule_id, x.scheduled_for, now(), now(), now(),
               l.name, CAST(x.input AS jsonb) #>> string_to_array(l.key_path, '.'), x.priority, c.queue
        FROM unnest(CAST(:ids AS text[]), CAST(:tasks AS text[]), CAST(:inputs AS text[]),
                    CAST(:timeouts AS double precision[]), CAST(:schedule_ids AS text[]),
                    CAST(:ticks AS timestamptz[]), CAST(:limits AS text[]), CAST(:priorities AS integer[]))
             AS x(id, task, input, timeout, schedule_id, scheduled_for, limit_name, priority)
        LEFT JOIN flow_limits l ON l.name = x.limit_name
        LEFT JOIN task_catalog c ON c.name = x.task
        ON CONFLICT DO NOTHING
        RETURNING id, input, created_at, schedule_id
    ), run AS (
        INSERT INTO runs (execution_id, run_index, trigger, status, input, triggered_by, created_at)
        SELECT id, 0, 'initial', 'pending', input, 'schedule:' || schedule_id, created_at FROM new
    )
    SELECT id FROM new
    """
)


def insert_scheduled(conn: Connection, fired: list[dict[str, Any]]) -> set[str]:
    """Insert pending executions for schedule ticks ({id, task, data, timeout, schedule_id, tick, limit?,
    priority?} each), each under its limit when one exists;
    returns the ids that were new (a taken id was fired before and is left as it is)."""
    if not fired:
        return set()
    created = rows(
        conn,
        _INSERT_SCHEDULED,
        ids=[f["id"] for f in fired],
        tasks=[f["task"] for f in fired],
        inputs=[to_json(f["data"]) for f in fired],
        timeouts=[f["timeout"] for f in fired],
        schedule_ids=[f["schedule_id"] for f in fired],
        ticks=[f["tick"] for f in fired],
        limits=[f.get("limit") or f["task"] for f in fired],
        priorities=[f.get("priority") or 0 for f in fired],
    )
    return {row["id"] for row in created}


_TRACE_CONTEXT = text("SELECT trace_context FROM executions WHERE id = :id")
_ADOPT_TRACE_CONTEXT = text(
    "UPDATE executions SET trace_context = CAST(:carrier AS jsonb) WHERE id = :id AND trace_context IS NULL"
)


def trace_context(conn: Connection, execution_id: str) -> dict[str, str] | None:
    return scalar(conn, _TRACE_CONTEXT, id=execution_id)


def adopt_trace_context(conn: Connection, execution_id: str, carrier: dict[str, str]) -> None:
    """An execution scheduled without tracing joins the trace of its first traced run from then on."""
    conn.execute(_ADOPT_TRACE_CONTEXT, {"id": execution_id, "carrier": to_json(carrier)})


_SUMMARY_COLUMNS = """
    e.id AS execution_id, e.task, e.status, e.input, e.output, e.error, e.run_index, e.attempt,
    e.current_step, e.waiting_for, e.waiting_for_event, e.wake_at, e.parent_id,
    e.idempotency_key, e.created_at, e.started_at, e.completed_at, e.updated_at, e.schedule_id, e.scheduled_for
"""

# a list row needs no input, output or error: a page stays small however large those documents are
_LIST_COLUMNS = """
    e.id AS execution_id, e.task, e.status, e.run_index, e.current_step, e.parent_id,
    e.created_at, e.started_at, e.completed_at, e.updated_at
"""

_GET = text(f"SELECT {_SUMMARY_COLUMNS} FROM executions e WHERE e.id = :id")
_GET_BY_KEY = text(f"SELECT {_SUMMARY_COLUMNS} FROM executions e WHERE e.idempotency_key = :key")
_GET_BY_DEDUP_KEY = text(
    f"""
    SELECT {_SUMMARY_COLUMNS} FROM executions e
    WHERE e.dedup_key = :key AND e.status IN ('pending', 'running', 'waiting')
    """
)
_STATUS = text(
    f"""
    SELECT {_SUMMARY_COLUMNS},
           (SELECT count(*) FROM steps s WHERE s.execution_id = e.id AND s.run_index = e.run_index
              AND s.status = 'completed') AS steps_completed,
           (SELECT count(*) FROM steps s WHERE s.execution_id = e.id AND s.run_index = e.run_index
              AND s.status = 'running') AS steps_running
    FROM executions e WHERE e.id = :id
    """
)


def get_status(conn: Connection, execution_id: str) -> dict[str, Any] | None:
    """The execution with its current run's step counts, in one round trip."""
    return one(conn, _STATUS, id=execution_id)


def get_execution(conn: Connection, execution_id: str) -> dict[str, Any] | None:
    return one(conn, _GET, id=execution_id)


def get_by_idempotency_key(conn: Connection, key: str) -> dict[str, Any] | None:
    return one(conn, _GET_BY_KEY, key=key)


def get_active_by_dedup_key(conn: Connection, key: str) -> dict[str, Any] | None:
    return one(conn, _GET_BY_DEDUP_KEY, key=key)


# Debounce: a later schedule within the window replaces the input of the execution that has not started yet,
# and with it the concurrency key its limit reads from the input (an input without the key replaces nothing).
_REPLACE_INPUT = text(
    """
    WITH target AS (
        SELECT e.id, e.flow_limit, l.key_path,
               CASE WHEN l.key_path IS NULL THEN e.flow_key
                    ELSE CAST(:input AS jsonb) #>> string_to_array(l.key_path, '.') END AS new_key
        FROM executions e LEFT JOIN flow_limits l ON l.name = e.flow_limit
        WHERE e.id = :id AND e.dedup_key = :dedup_key AND e.status = 'pending' AND e.started_at IS NULL
        FOR UPDATE OF e
    ), replaced AS (
        UPDATE executions e SET input = CAST(:input AS jsonb), flow_key = t.new_key, updated_at = now()
        FROM target t WHERE e.id = t.id AND (t.key_path IS NULL OR t.new_key IS NOT NULL)
        RETURNING e.id, e.input
    ), run AS (
        UPDATE runs r SET input = replaced.input FROM replaced WHERE r.execution_id = replaced.id AND r.run_index = 0
    )
    SELECT t.id, t.flow_limit, t.key_path, t.new_key AS flow_key, EXISTS (SELECT 1 FROM replaced) AS replaced
    FROM target t
    """
)


def replace_unstarted_input(conn: Connection, execution_id: str, data: Any, dedup_key: str) -> dict[str, Any] | None:
    """Replace the input of an execution that holds `dedup_key` and has not started; None when it has started or
    holds another key (an execution found by its id or idempotency key is returned as it is, never changed). The
    row says whether it was `replaced` (not when the new input lacks the key its limit reads: see
    `flow.definitions.missing_key`)."""
    return one(conn, _REPLACE_INPUT, id=execution_id, input=to_json(data), dedup_key=dedup_key)


def list_executions(
    conn: Connection,
    *,
    status: str | None,
    task: str | None,
    limit: int,
    offset: int,
    descending: bool,
    after: tuple[datetime, str] | None = None,
    created_from: datetime | None = None,
    created_before: datetime | None = None,
    id_prefix: str | None = None,
) -> tuple[list[dict[str, Any]], bool, int | None]:
    """One page of executions, whether more follow it, and the total matching the filters (from the counts,
    which know status and task only: None when a time range or id prefix narrows the list).

    `after` is the (created_at, id) key of the previous page's last row: the page starts right after it, read
    from the (…, created_at, id) indexes, so a deep page costs what the first does.
    """
    where = ["TRUE"]
    params: dict[str, Any] = {"limit": limit + 1, "offset": offset}
    if status is not None:
        where.append("e.status = :status")
        params["status"] = status
    if task is not None:
        where.append("e.task = :task")
        params["task"] = task
    if created_from is not None:
        where.append("e.created_at >= :created_from")
        params["created_from"] = created_from
    if created_before is not None:
        where.append("e.created_at < :created_before")
        params["created_before"] = created_before
    if id_prefix:
        where.append("e.id LIKE :id_pattern")
        params["id_pattern"] = like_prefix(id_prefix)
    direction = "DESC" if descending else "ASC"
    if after is not None:
        where.append(f"(e.created_at, e.id) {'<' if descending else '>'} (:after_at, :after_id)")
        params["after_at"], params["after_id"] = after
    condition = " AND ".join(where)
    page = rows(
        conn,
        text(
            f"SELECT {_LIST_COLUMNS} FROM executions e WHERE {condition} "
            f"ORDER BY e.created_at {direction}, e.id {direction} LIMIT :limit OFFSET :offset"
        ),
        **params,
    )
    narrowed = created_from is not None or created_before is not None or bool(id_prefix)
    total = None if narrowed else counts.matching(conn, task=task, status=status)
    return page[:limit], len(page) > limit, total


def like_prefix(prefix: str) -> str:
    """A LIKE pattern matching ids that start with `prefix` literally (`%`, `_` and `\\` escaped)."""
    return prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def count_by_status(conn: Connection) -> dict[str, int]:
    return counts.by_status(conn)


_OLDEST_PENDING = text("SELECT EXTRACT(EPOCH FROM now() - min(created_at)) FROM executions WHERE status = 'pending'")


def oldest_pending_age(conn: Connection) -> float:
    value = scalar(conn, _OLDEST_PENDING)
    return float(value or 0.0)


# What a claim sets and returns, shared by the claim of a named execution and the claim of the next ready one.
_CLAIM_SET = """
    UPDATE executions e SET status = 'running', lease_token = :token, leased_by = :worker,
           lease_expires_at = now() + make_interval(secs => :lease),
           -- taking over from an owner whose lease ran out is a recovery (the sweeper counts its own)
           recoveries = recoveries + CASE WHEN status = 'running' THEN 1 ELSE 0 END,
           started_at = coalesce(started_at, now()), updated_at = now(),
           waiting_for = NULL, waiting_for_event = NULL, current_step = NULL
"""
_CLAIM_RETURNING = f"""
    RETURNING e.id, e.task, e.input, e.function_ref, e.run_index, e.attempt, e.recoveries, e.deadline_at,
              e.parent_id, e.trace_context,
              e.deadline_at IS NOT NULL AND e.deadline_at <= now() AS past_deadline,
              {pause.RULES_VERSION} AS pausing
"""
# The checkpoints of the claimed run `c`, as the replay reads them (flow control's admission returns them too)
CLAIMED_STEPS_JSON = """
    coalesce((
        SELECT json_agg(json_build_object(
            'name', s.name, 'position', s.position, 'kind', s.kind, 'status', s.status,
            'output', s.output, 'error', s.error, 'attempts', s.attempts, 'failures', s.failures,
            'exec_attempt', s.exec_attempt,
            'wake_at', s.wake_at, 'child_id', s.child_id, 'due', s.wake_at <= now()))
        FROM steps s WHERE s.execution_id = c.id AND s.run_index = c.run_index), '[]'::json)
"""
_CLAIMED_STEPS = f"{CLAIMED_STEPS_JSON} AS steps"

# What a claim that may be a limit's admission returns from its `claimed` rows: the verdict (None when under no
# limit) and, unless held, the claimed run with its checkpoints (flow control's own admission returns the same)
ADMISSION_OUTCOME = f"""
    SELECT c.*, c.deadline_at IS NOT NULL AND c.deadline_at <= now() AS past_deadline,
           {pause.RULES_VERSION} AS pausing,
           CASE WHEN c.verdict = 'held' THEN '[]'::json ELSE {CLAIMED_STEPS_JSON} END AS steps
    FROM claimed c
"""

# One row whenever the execution exists: its columns NULL when it was not claimable here, with `limited` saying
# whether flow control must decide instead (so a stale doorbell for a finished execution costs one statement).
# The named execution, taken if it is ready (or its owner's lease ran out) and under no limit.
_CLAIM_NAMED = f"""
        {_CLAIM_SET}
        WHERE id = :id AND flow_limit IS NULL AND (
               (status = 'pending' AND (wake_at IS NULL OR wake_at <= now()))
            OR (status = 'waiting' AND wake_at <= now())
            OR (status = 'running' AND lease_expires_at < now()))
          AND NOT {pause.HOLDS_EXECUTION}
          AND {CLAIM_UNSYNCED}
        {_CLAIM_RETURNING}
"""

_CLAIM = hot_statement(
    "claim",
    f"""
    WITH claimed AS ({_CLAIM_NAMED})
    SELECT c.*, {_CLAIMED_STEPS}, x.flow_limit IS NOT NULL AS limited
    FROM executions x LEFT JOIN claimed c ON TRUE
    WHERE x.id = :id
    """
)


def claim(conn: Connection, execution_id: str, token: str, worker: str, lease: float) -> dict[str, Any] | None:
    """Take the execution if it is ready (or its owner's lease expired); returns it with its checkpoints.

    Only executions under no limit are taken here (the fast path); a limited one is admitted by flow.claim."""
    return claim_or_route(conn, execution_id, token, worker, lease)[0]


def claim_or_route(
    conn: Connection, execution_id: str, token: str, worker: str, lease: float
) -> tuple[dict[str, Any] | None, bool]:
    """`claim`, and whether an execution it did not take is under a limit (then flow.claim decides): a
    doorbell for an execution that already ran costs this one statement."""
    return _claimed_or_routed(hot_one(conn, _CLAIM, id=execution_id, token=token, worker=worker, lease=lease))


def _claimed_or_routed(row: dict[str, Any] | None) -> tuple[dict[str, Any] | None, bool]:
    """A named claim's row as (the claimed execution or None, whether the named one is left to flow control)."""
    if row is None:
        return None, False
    limited = bool(row.pop("limited"))
    return (row if row["id"] is not None else None), limited


# Ready executions of a worker's selection: pending, due, not held by a limit, not paused, of the given queues
# (a NULL queue is the default one) and a task this worker runs, longest ready first; rows another worker is
# claiming are skipped, never waited for. Held rows are left out of the ready rows' partial index (migration
# 0014), so a look never walks past them.
_READY_OF_SELECTION = f"""
        SELECT e.id, e.flow_limit FROM executions e
        WHERE e.status = 'pending' AND e.held_by IS NULL AND (e.wake_at IS NULL OR e.wake_at <= now())
          AND e.task = ANY(CAST(:tasks AS text[]))
          AND (e.queue = ANY(CAST(:queues AS text[])) OR (e.queue IS NULL AND :default_queue))
          AND NOT {pause.HOLDS_EXECUTION} AND {CLAIM_UNSYNCED}
"""

# The next ready execution, taken in the same statement: one under no limit first (claimed as a doorbell's claim
# would), else one under a limit, admitted by it (`zart_flow_claim`: claimed, cancel or held; the second look
# runs only when the first finds nothing). The row stays locked from the look to the verdict, and a look is one
# round trip whatever it finds.
_LOOK_CTES = """
    next AS MATERIALIZED (
        SELECT * FROM ({ready} AND e.flow_limit IS NULL{gate}
                       ORDER BY e.dispatched_at LIMIT 1 FOR UPDATE SKIP LOCKED) unlimited
        UNION ALL
        SELECT * FROM ({ready} AND e.flow_limit IS NOT NULL{gate}
                       ORDER BY e.dispatched_at LIMIT 1 FOR UPDATE SKIP LOCKED) limited
        LIMIT 1
    ), plain AS (
        {claim_set}
        FROM next WHERE e.id = next.id AND next.flow_limit IS NULL
        {claim_returning}
    ), admitted AS (
        SELECT f.* FROM (SELECT id FROM next WHERE flow_limit IS NOT NULL) n
        CROSS JOIN LATERAL zart_flow_claim(n.id, :token, :worker, :lease, false) f
    )"""


def _look(gate: str = "") -> str:
    """The look's CTEs (`next`, then `plain` or `admitted`); `gate`, a condition the look runs only under."""
    return _LOOK_CTES.format(
        ready=_READY_OF_SELECTION, gate=gate, claim_set=_CLAIM_SET, claim_returning=_CLAIM_RETURNING
    )


def _as_admission(alias: str) -> str:
    """A claimed row of `plain` (or of the named claim) in the shape of an admission's."""
    columns = ("id", "task", "input", "function_ref", "run_index", "attempt", "recoveries", "deadline_at",
               "parent_id", "trace_context")
    return (
        "SELECT NULL::text AS verdict, NULL::text AS held_reason, NULL::double precision AS retry_in, "
        f"NULL::text AS limit_name, false AS rated, {', '.join(f'{alias}.{c}' for c in columns)}"
    )


_CLAIM_NEXT = hot_statement(
    "claim_next",
    f"""
    WITH {_look()}, claimed AS (
        {_as_admission("p")} FROM plain p
        UNION ALL
        SELECT * FROM admitted
    )
    {ADMISSION_OUTCOME}
    """
)

# A self-claiming worker's doorbell: its own execution as `_CLAIM` takes it, else, in the same statement, the
# look the doorbell's taker owes (as `_CLAIM_NEXT`); an execution of its own under a limit goes to flow control
# instead (`limited`), as with `_CLAIM`. In a fleet of idle workers most doorbells find their execution taken
# already by a worker that has just ended a run: their look then costs no second round trip.
_CLAIM_OR_NEXT = hot_statement(
    "claim_or_next",
    f"""
    WITH target AS (
        SELECT x.flow_limit IS NOT NULL AS limited FROM executions x WHERE x.id = :id
    ), own AS ({_CLAIM_NAMED}),
    {_look(" AND NOT EXISTS (SELECT 1 FROM own) AND NOT EXISTS (SELECT 1 FROM target WHERE limited)")},
    claimed AS (
        {_as_admission("o")} FROM own o
        UNION ALL
        {_as_admission("p")} FROM plain p
        UNION ALL
        SELECT * FROM admitted
    )
    SELECT o.*, coalesce(t.limited, false) AS limited FROM ({ADMISSION_OUTCOME}) o FULL JOIN target t ON TRUE
    """
)


def claim_next(
    conn: Connection,
    token: str,
    worker: str,
    lease: float,
    *,
    tasks: list[str],
    queues: list[str],
    default_queue: bool,
) -> dict[str, Any] | None:
    """Take the oldest ready execution of `queues` (`default_queue`: also those routed to the default queue)
    whose task is in `tasks`; None when there is none. `verdict` is None for one under no limit (claimed), else
    its limit's admission (claimed, cancel or held, with `limit_name`), as flow.claim returns it."""
    return hot_one(
        conn, _CLAIM_NEXT, token=token, worker=worker, lease=lease, tasks=tasks, queues=queues,
        default_queue=default_queue,
    )


def claim_or_next(
    conn: Connection,
    execution_id: str,
    token: str,
    worker: str,
    lease: float,
    *,
    tasks: list[str],
    queues: list[str],
    default_queue: bool,
) -> tuple[dict[str, Any] | None, bool]:
    """A doorbell's claim by a worker that looks for ready executions after it: `execution_id` if `claim` would
    take it, else the next ready execution as `claim_next` would take it (or None), in one statement. Also
    returns whether `execution_id`, not taken, is under a limit (then flow.claim decides, and nothing else was
    taken)."""
    row = hot_one(
        conn, _CLAIM_OR_NEXT, id=execution_id, token=token, worker=worker, lease=lease, tasks=tasks, queues=queues,
        default_queue=default_queue,
    )
    return _claimed_or_routed(row)


_FENCE = text(
    """
    UPDATE executions SET lease_expires_at = now() + make_interval(secs => :lease)
    WHERE id = :id AND lease_token = :token AND status = 'running'
    RETURNING id
    """
)


def extend_lease(conn: Connection, execution_id: str, token: str, lease: float) -> bool:
    """Heartbeat: False when the lease is no longer ours (taken over, or the execution was cancelled)."""
    return one(conn, _FENCE, id=execution_id, token=token, lease=lease) is not None


# A park keeps the run's count of recoveries: only a checkpoint is progress, so a step whose every run dies
# after a park (waiting for its rate limit's token, say) still reaches the limit instead of looping.
_PARK = text(
    """
    UPDATE executions SET status = :status, wake_at = :wake_at, waiting_for = CAST(:waiting_for AS jsonb),
           waiting_for_event = :event, lease_token = NULL, lease_expires_at = NULL, leased_by = NULL,
           attempt = :attempt, dispatched_at = now(), updated_at = now()
    WHERE id = :id AND lease_token = :token
    RETURNING id
    """
)


def park(
    conn: Connection,
    execution_id: str,
    token: str,
    *,
    wake_at: Any,
    waiting_for: dict[str, Any] | None,
    event: str | None = None,
    attempt: int,
    status: str = "waiting",
) -> bool:
    """Release the lease and wait durably (or go back to pending with a not-before time)."""
    return (
        one(
            conn,
            _PARK,
            id=execution_id,
            token=token,
            status=status,
            wake_at=wake_at,
            waiting_for=to_json(waiting_for),
            event=event,
            attempt=attempt,
        )
        is not None
    )


# Parking on a pause rule share-locks the rule's row in the same statement: a resume either lands first (the
# rule no longer holds, nothing is parked) or waits for this park to commit and then releases it.
_PARK_ON_RULE = text(
    f"""
    WITH rule AS (
        SELECT r.id FROM pause_rules r WHERE r.id = :rule AND {pause.ACTIVE} FOR SHARE
    ), parked AS (
        UPDATE executions SET status = 'waiting', wake_at = :wake_at, waiting_for = CAST(:waiting_for AS jsonb),
               waiting_for_event = NULL, lease_token = NULL, lease_expires_at = NULL, leased_by = NULL,
               attempt = :attempt, dispatched_at = now(), updated_at = now()
        WHERE id = :id AND lease_token = :token AND EXISTS (SELECT 1 FROM rule)
        RETURNING id
    )
    SELECT (SELECT count(*) FROM rule) AS holding, (SELECT count(*) FROM parked) AS parked
    """
)


def park_on_rule(
    conn: Connection, execution_id: str, token: str, *, rule_id: str, wake_at: Any, step: str, attempt: int
) -> str:
    """Park on a pause rule only while it holds: `parked`, `lifted` (the rule stopped holding; go on), or
    `lost` (the lease is gone)."""
    row = one(
        conn,
        _PARK_ON_RULE,
        id=execution_id,
        token=token,
        rule=rule_id,
        wake_at=wake_at,
        waiting_for=to_json({"kind": "pause", "rule": rule_id, "step": step}),
        attempt=attempt,
    )
    assert row is not None
    if not row["holding"]:
        return "lifted"
    return "parked" if row["parked"] else "lost"


_FINISH = hot_statement(
    "finish",
    f"""
    WITH done AS (
        UPDATE executions SET status = :status, output = CAST(:output AS jsonb), error = CAST(:error AS jsonb),
               completed_at = now(), updated_at = now(), lease_token = NULL, lease_expires_at = NULL,
               leased_by = NULL, wake_at = NULL, waiting_for = NULL, waiting_for_event = NULL, current_step = NULL
        WHERE id = :id AND (CAST(:token AS text) IS NULL OR lease_token = :token)
          AND status IN ('pending', 'running', 'waiting')
          -- the overdue sweep re-checks the deadline here: a restart committed meanwhile gave a new one
          AND (NOT :overdue_only OR deadline_at <= now())
        RETURNING id, task, status, output, error, run_index, attempt, created_at, started_at, completed_at,
                  parent_id, parent_run, parent_step, flow_limit
    ), run AS (
        UPDATE runs SET status = :status, output = CAST(:output AS jsonb), error = CAST(:error AS jsonb),
               started_at = done.started_at, completed_at = now()
        FROM done WHERE runs.execution_id = done.id AND runs.run_index = done.run_index
    )
    SELECT done.id, done.run_index, done.parent_id, done.parent_run, done.parent_step, {NOTIFY_FINISHED_SQL},
           -- under a limit: whether any execution of it is held, seen after this row gave its slot back (migration
           -- 0018); the finishing worker hands the slot on only then
           CASE WHEN done.flow_limit IS NULL THEN false ELSE zart_flow_held(done.flow_limit) END AS limit_holds_some
    FROM done, {FINAL_STATE_SQL}
    """
)


def finish(
    conn: Connection,
    execution_id: str,
    *,
    status: str,
    token: str | None,
    output: Any = None,
    error: dict[str, Any] | None = None,
    overdue_only: bool = False,
) -> dict[str, Any] | None:
    """Move an active execution to a terminal status (fenced on `token` when given) and notify waiters.
    `limit_holds_some`: it ran under a limit that holds executions back now (its slot should be handed on)."""
    return hot_one(
        conn,
        _FINISH,
        id=execution_id,
        status=status,
        token=token,
        output=to_json(output),
        error=to_json(error),
        overdue_only=overdue_only,
    )


_LOCK_FOR_CHILD = text("SELECT status, run_index, waiting_for FROM executions WHERE id = :id FOR UPDATE")

_WAKE_PARENT = text(
    """
    UPDATE executions SET status = 'pending', waiting_for = NULL, wake_at = NULL, dispatched_at = now(),
           updated_at = now()
    WHERE id = :id AND status = 'waiting' AND run_index = :run AND waiting_for ->> 'kind' IN ('children', 'remote')
      AND (NOT EXISTS (
              SELECT 1 FROM steps s
              WHERE s.execution_id = :id AND s.run_index = :run
                AND s.name IN (SELECT jsonb_array_elements_text(waiting_for -> 'steps'))
                AND s.status NOT IN ('completed', 'failed'))
           -- a remote step that failed wakes the workflow at once: its retry policy decides what comes next
           OR EXISTS (
              SELECT 1 FROM remote_steps r
              WHERE r.execution_id = :id AND r.run_index = :run AND r.state = 'failed'
                AND r.step_name IN (SELECT jsonb_array_elements_text(waiting_for -> 'steps'))))
    RETURNING id
    """
)


def lock_parent(conn: Connection, parent_id: str) -> dict[str, Any] | None:
    """Serialise sibling completions (and the parent's own park) on the parent row."""
    return one(conn, _LOCK_FOR_CHILD, id=parent_id)


def wake_parent_if_children_done(conn: Connection, parent_id: str, run_index: int) -> bool:
    """Wake an execution parked on children or remote steps once nothing it waits for is still running."""
    return one(conn, _WAKE_PARENT, id=parent_id, run=run_index) is not None


_PENDING_AMONG = text("SELECT id FROM executions WHERE id = ANY(:ids) AND status = 'pending'")


def pending_among(conn: Connection, execution_ids: list[str]) -> list[str]:
    """Those of `execution_ids` still waiting to be claimed (a standby's takers that nobody took yet)."""
    return [row["id"] for row in rows(conn, _PENDING_AMONG, ids=execution_ids)]


_QUEUE_OF = text("SELECT queue FROM executions WHERE id = :id")


def queue_of(conn: Connection, execution_id: str) -> str | None:
    """The queue the execution's workflow is routed to (None: the default queue)."""
    return scalar(conn, _QUEUE_OF, id=execution_id)  # type: ignore[no-any-return]
