"""Flow-control queries: admitting a limited execution, finding the next held ones, and the limits themselves.

The admission decision is `zart_flow_claim` (migrations 0013, 0016): one statement that locks the execution
and its limit row, counts the executions holding the limit's slots (and its key's), then claims or holds. A
holder is an execution with `flow_holds` set; a trigger clears it when the holder stops running, so a slot is
given back by the holder's own row, never by a write to a row shared by the limit. Nothing here reads a limit
in one transaction and acts on it in another.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, text

from zart.store import executions, pause
from zart.store.sql import CLAIM_UNSYNCED, hot_one, hot_rows, hot_statement, one, rows, scalar, to_json


def _holders(key_of: str | None = None) -> str:
    """How many executions hold a slot of limit `l` now (under the key of the execution aliased `key_of`), counted
    from the holders' partial index as admission counts them."""
    key = f" AND r.flow_key = {key_of}.flow_key" if key_of else ""
    return f"(SELECT count(*) FROM executions r WHERE r.flow_limit = l.name AND r.flow_holds{key})"


_RUNNING = _holders()


# What an admission returns: its verdict and, unless held, the claimed execution with its checkpoints.
_ADMITTED = f"{executions.ADMISSION_OUTCOME} WHERE {CLAIM_UNSYNCED}"

_CLAIM = hot_statement(
    "flow_claim",
    f"""
    WITH claimed AS (
        SELECT * FROM zart_flow_claim(:id, :token, :worker, :lease,
                                      coalesce((SELECT {pause.HOLDS_EXECUTION} FROM executions e WHERE e.id = :id),
                                               false))
    )
    {_ADMITTED}
    """
)


def claim(conn: Connection, execution_id: str, token: str, worker: str, lease: float) -> dict[str, Any] | None:
    """Admit and claim an execution under its limit. `verdict` is claimed, cancel or held; None when the
    execution is not claimable at all (finished, not due, already running)."""
    return hot_one(conn, _CLAIM, id=execution_id, token=token, worker=worker, lease=lease)


# How many held executions of each limit may start now (free slots, tokens in the bucket), and the best of
# them in priority order; a rate-limited limit with an empty bucket still names its head, with the delay
# until its token is due. Held executions whose key is busy, or that a pause rule holds, are passed over (a
# paused one is rung again when its rule lifts).
def _heads_of(limits: str) -> str:
    return f"""
    SELECT h.id, l.name AS limit_name, room.delay
    FROM flow_limits l
    CROSS JOIN LATERAL (
        SELECT CASE WHEN l.rate IS NULL THEN NULL
                    ELSE least(l.burst::double precision, coalesce(l.tokens, l.burst)
                               + greatest(EXTRACT(EPOCH FROM clock_timestamp() - coalesce(l.refilled_at, now())), 0)
                                 * l.rate / l.period_seconds) END AS tokens
    ) bucket
    CROSS JOIN LATERAL (
        SELECT least(CASE WHEN l.concurrency IS NULL THEN :cap
                          ELSE greatest(l.concurrency - {_RUNNING}, 0) END,
                     CASE WHEN bucket.tokens IS NULL THEN :cap ELSE greatest(floor(bucket.tokens)::int, 1) END,
                     :cap) AS n,
               CASE WHEN bucket.tokens IS NOT NULL AND bucket.tokens < 1
                    THEN (1 - bucket.tokens) * l.period_seconds / l.rate ELSE 0 END AS delay
    ) room
    CROSS JOIN LATERAL (
        SELECT h.id FROM executions h
        WHERE h.flow_limit = l.name AND h.status = 'pending' AND h.held_by IS NOT NULL
          AND (h.wake_at IS NULL OR h.wake_at <= now())
          AND (h.flow_key IS NULL OR l.key_concurrency IS NULL
               OR {_holders(key_of='h')} < l.key_concurrency)
          AND NOT {pause.holds('h')}
        ORDER BY h.priority DESC, h.created_at, h.id
        LIMIT room.n
    ) h
    WHERE NOT l.paused AND {limits}
    """


_HEADS = text(_heads_of("(CAST(:names AS text[]) IS NULL OR l.name = ANY(CAST(:names AS text[])))"))
# a worker hands on one limit's capacity after runs under it: a statement naming one limit, whose generic plan is
# as good as one made for the name, so Postgres keeps its plan instead of planning every call (as a server-side
# function, also behind a transaction pooler)
_HEADS_OF_ONE = hot_statement("flow_heads_of_one", _heads_of("l.name = :name"))

# A finish that may skip handing its slot on holds this lock of its limit, shared, from its look for held
# executions until its commit (`zart_flow_held`, migration 0020). The look after a refused admission first takes
# it exclusively, in a statement of its own: it returns once every such finish in flight has committed, so the
# look that follows sees their slots free (the refusal may have counted them, and they may not have seen it).
RELEASES_LOCK_CLASS = 2053206644
_AWAIT_RELEASES = text(f"SELECT pg_advisory_xact_lock({RELEASES_LOCK_CLASS}, hashtext(:name))")


def heads(conn: Connection, names: list[str] | None, cap: int, wait_for_releases: bool = False) -> list[dict[str, Any]]:
    """Held executions that may start now ({id, limit_name, delay}); `names` None means every limit.
    `wait_for_releases` (one limit, after a refused admission): first wait for the finishes of its holders that
    are committing now."""
    if wait_for_releases:
        assert names is not None and len(names) == 1, "a look that waits for releases names one limit"
        hot_one(conn, _AWAIT_RELEASES, name=names[0])
    if names is not None and len(names) == 1:
        return hot_rows(conn, _HEADS_OF_ONE, name=names[0], cap=cap)
    return hot_rows(conn, _HEADS, names=names, cap=cap)


# ------------------------------------------------------------------ declaring and changing limits

_SPEC_COLUMNS = ("concurrency", "rate", "period_seconds", "burst", "key_path", "key_concurrency", "key_strategy")

_DECLARE = text(
    """
    INSERT INTO flow_limits AS f (name, concurrency, rate, period_seconds, burst, key_path, key_concurrency,
                                  key_strategy, source, updated_by, updated_at, declared_generation)
    VALUES (:name, :concurrency, :rate, :period_seconds, :burst, :key_path, :key_concurrency, :key_strategy,
            'code', :by, now(), :generation)
    ON CONFLICT (name) DO UPDATE
        SET concurrency = EXCLUDED.concurrency, rate = EXCLUDED.rate, period_seconds = EXCLUDED.period_seconds,
            burst = EXCLUDED.burst, key_path = EXCLUDED.key_path, key_concurrency = EXCLUDED.key_concurrency,
            key_strategy = EXCLUDED.key_strategy, updated_by = EXCLUDED.updated_by, updated_at = now(),
            declared_generation = coalesce(EXCLUDED.declared_generation, f.declared_generation)
        -- a limit a newer declaration set wrote (declared in another module now) is left as it is
        WHERE f.source = 'code'
          AND (EXCLUDED.declared_generation IS NULL OR f.declared_generation IS NULL
               OR f.declared_generation <= EXCLUDED.declared_generation)
          AND (f.concurrency, f.rate, f.period_seconds, f.burst, f.key_path, f.key_concurrency, f.key_strategy,
               f.declared_generation)
              IS DISTINCT FROM (EXCLUDED.concurrency, EXCLUDED.rate, EXCLUDED.period_seconds, EXCLUDED.burst,
                                EXCLUDED.key_path, EXCLUDED.key_concurrency, EXCLUDED.key_strategy,
                                coalesce(EXCLUDED.declared_generation, f.declared_generation))
    """
)


def declare(conn: Connection, limits: list[dict[str, Any]], declared_by: str) -> None:
    """Limits declared in code: created, or updated unless an operator has set them at runtime or a newer
    declaration set (its `generation`, when given) wrote them."""
    for columns in limits:
        conn.execute(_DECLARE, {"generation": None, **columns, "by": declared_by})


_COLUMNS = f"""
    l.name, l.concurrency, l.rate, l.period_seconds, l.burst, l.key_path, l.key_concurrency, l.key_strategy,
    l.paused, {_RUNNING} AS running, l.source, l.updated_by, l.updated_at,
    CASE WHEN l.rate IS NULL THEN NULL
         ELSE least(l.burst::double precision, coalesce(l.tokens, l.burst)
                    + greatest(EXTRACT(EPOCH FROM clock_timestamp() - coalesce(l.refilled_at, now())), 0)
                      * l.rate / l.period_seconds) END AS tokens,
    (SELECT count(*) FROM executions h
     WHERE h.flow_limit = l.name AND h.status = 'pending' AND h.held_by IS NOT NULL) AS held
"""

_LIST = text(f"SELECT {_COLUMNS} FROM flow_limits l ORDER BY l.name")
_GET = text(f"SELECT {_COLUMNS} FROM flow_limits l WHERE l.name = :name")


def list_limits(conn: Connection) -> list[dict[str, Any]]:
    return rows(conn, _LIST)


def get_limit(conn: Connection, name: str) -> dict[str, Any] | None:
    return one(conn, _GET, name=name)


_SET = text(
    """
    INSERT INTO flow_limits AS f (name, concurrency, rate, period_seconds, burst, key_path, key_concurrency,
                                  key_strategy, source, updated_by, updated_at)
    VALUES (:name, :concurrency, :rate, :period_seconds, :burst, :key_path, :key_concurrency, :key_strategy,
            'runtime', :by, now())
    ON CONFLICT (name) DO UPDATE
        SET concurrency = EXCLUDED.concurrency, rate = EXCLUDED.rate, period_seconds = EXCLUDED.period_seconds,
            burst = EXCLUDED.burst, key_path = EXCLUDED.key_path, key_concurrency = EXCLUDED.key_concurrency,
            key_strategy = EXCLUDED.key_strategy, source = 'runtime', updated_by = EXCLUDED.updated_by,
            updated_at = now(),
            -- a new bucket size takes effect at once: tokens above it are dropped
            tokens = CASE WHEN EXCLUDED.rate IS NULL THEN NULL ELSE least(f.tokens, EXCLUDED.burst) END
    RETURNING name
    """
)


def set_limit(conn: Connection, columns: dict[str, Any], set_by: str) -> None:
    """Create or replace a limit at runtime (it then stays as set, whatever the code declares)."""
    conn.execute(_SET, {**columns, "by": set_by})


_LOCK = text("SELECT name FROM flow_limits WHERE name = :name FOR UPDATE")


def lock_limit(conn: Connection, name: str) -> bool:
    return one(conn, _LOCK, name=name) is not None


_PAUSE = text(
    """
    UPDATE flow_limits SET paused = :paused, updated_by = :by, updated_at = now()
    WHERE name = :name
    RETURNING name
    """
)


def set_paused(conn: Connection, name: str, paused: bool, set_by: str) -> bool:
    return one(conn, _PAUSE, name=name, paused=paused, by=set_by) is not None


_DELETE = text("DELETE FROM flow_limits WHERE name = :name RETURNING name")

# Executions held by a limit that no longer exists: nothing holds them any more. Newly ready, like a woken row:
# `updated_at` moves too, so the sweeper's re-publication back-off starts over (it measures from `updated_at`).
_UNHOLD = text(
    """
    UPDATE executions SET held_by = NULL, flow_limit = NULL, dispatched_at = now(), updated_at = now()
    WHERE id IN (SELECT id FROM executions WHERE flow_limit = :name AND status = 'pending' AND held_by IS NOT NULL
                 LIMIT :limit FOR UPDATE SKIP LOCKED)
    RETURNING id
    """
)


def delete_limit(conn: Connection, name: str, release_limit: int) -> list[str] | None:
    """Remove a limit; returns the held executions it let go (to be published), None when it did not exist."""
    if one(conn, _DELETE, name=name) is None:
        return None
    return [row["id"] for row in rows(conn, _UNHOLD, name=name, limit=release_limit)]


# ------------------------------------------------------------------ reading why an execution waits

_HOLDING = text(
    f"""
    SELECT e.held_by AS reason, l.name AS limit_name, l.concurrency, {_RUNNING} AS running, l.paused,
           l.key_concurrency, e.flow_key,
           {_holders(key_of='e')} AS key_running, l.rate, l.period_seconds
    FROM executions e JOIN flow_limits l ON l.name = e.flow_limit
    WHERE e.id = :id AND e.status = 'pending' AND e.held_by IS NOT NULL
    """
)


def holding_limit(conn: Connection, execution_id: str) -> dict[str, Any] | None:
    """The limit holding this pending execution back, and why, if any."""
    return one(conn, _HOLDING, id=execution_id)


_HELD_COUNT = text("SELECT count(*) FROM executions WHERE status = 'pending' AND held_by IS NOT NULL")


def count_held(conn: Connection) -> int:
    return int(scalar(conn, _HELD_COUNT))


_OLDER_WITH_KEY = text(
    """
    SELECT e.id FROM executions e, executions n
    WHERE n.id = :newest AND e.flow_limit = :limit_name AND e.flow_key = :key
      AND e.status IN ('pending', 'running', 'waiting') AND e.id <> n.id
      AND (e.created_at, e.id) < (n.created_at, n.id)
    ORDER BY e.created_at
    """
)


# Schedules of one key take turns from here to their commit: the second one's look sees the first one committed.
_KEY_TURN = text("SELECT pg_advisory_xact_lock(hashtext(:limit_name), hashtext(:key))")


def older_with_key(conn: Connection, limit_name: str, key: str, newest: str) -> list[str]:
    """Active executions of the same limit and key created before `newest`. Two schedules of the key at once
    take turns here, so the later one sees (and supersedes) the earlier one instead of neither seeing the
    other's uncommitted row."""
    conn.execute(_KEY_TURN, {"limit_name": limit_name, "key": key})
    return [row["id"] for row in rows(conn, _OLDER_WITH_KEY, limit_name=limit_name, key=key, newest=newest)]


# ------------------------------------------------------------------ step rate limits

RATE_LIMITED = "RateLimited"  # the error type marking a step row that waits holding a reserved token

# A step takes a token before its body runs: always (the bucket may go into debt), so each waiter reserves its
# own token and wakes exactly when it is due, never to find it taken by another. Fenced on the lease; when the
# token is not due yet the step row records the wait (and that it holds its token) in the same statement.
_RESERVE = text(
    """
    WITH fence AS (
        UPDATE executions SET lease_expires_at = now() + make_interval(secs => :lease), current_step = NULL
        WHERE id = :id AND lease_token = :token AND status = 'running'
        RETURNING id
    ), bucket AS (
        UPDATE flow_limits l
        SET tokens = least(l.burst::double precision, coalesce(l.tokens, l.burst)
                           + greatest(EXTRACT(EPOCH FROM clock_timestamp() - coalesce(l.refilled_at, now())), 0)
                             * l.rate / l.period_seconds) - 1,
            refilled_at = greatest(clock_timestamp(), l.refilled_at)
        WHERE l.name = :limit_name AND l.rate IS NOT NULL AND EXISTS (SELECT 1 FROM fence)
        RETURNING CASE WHEN l.tokens >= 0 THEN 0 ELSE -l.tokens * l.period_seconds / l.rate END AS wait
    ), step AS (
        INSERT INTO steps (execution_id, run_index, name, position, kind, status, error, attempts, failures,
                           exec_attempt, wake_at, started_at, updated_at)
        SELECT :id, :run, :name, :position, 'step', 'waiting', CAST(:marker AS jsonb), :attempts, :failures,
               :exec_attempt, now() + make_interval(secs => bucket.wait), now(), now()
        FROM bucket WHERE bucket.wait > 0
        ON CONFLICT (execution_id, run_index, name) DO UPDATE
            SET status = 'waiting', error = EXCLUDED.error, wake_at = EXCLUDED.wake_at,
                exec_attempt = EXCLUDED.exec_attempt, updated_at = now()
            WHERE steps.status <> 'completed'
        RETURNING wake_at
    )
    SELECT (SELECT count(*) FROM fence) AS fenced, (SELECT count(*) FROM bucket) AS limited,
           (SELECT wake_at FROM step) AS wake_at
    """
)


def reserve_step_token(
    conn: Connection,
    *,
    execution_id: str,
    token: str,
    lease: float,
    run_index: int,
    name: str,
    position: int,
    attempts: int,
    failures: int,
    exec_attempt: int,
    limit_name: str,
) -> tuple[bool, bool, Any]:
    """Take a token of `limit_name` for the step's next attempt: (fenced, the bucket exists, when the token is
    due — None when it is due now)."""
    row = one(
        conn,
        _RESERVE,
        id=execution_id,
        token=token,
        lease=lease,
        run=run_index,
        name=name,
        position=position,
        attempts=attempts,
        failures=failures,
        exec_attempt=exec_attempt,
        limit_name=limit_name,
        marker=to_json({"type": RATE_LIMITED, "message": f"waiting for a token of '{limit_name}'"}),
    )
    assert row is not None
    return bool(row["fenced"]), bool(row["limited"]), row["wake_at"]
