"""Queries on schedules: definitions, the sweepers' due batch (row-locked, skipping rows another sweeper holds),
firing progress, and the figures /metrics and `zart schedules list` show."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, text

from zart.store.sql import one, rows, scalar, to_json

DEFINITION_COLUMNS = (
    "task",
    "target_kind",
    "data",
    "args",
    "kwargs",
    "cron",
    "interval_seconds",
    "timezone",
    "start_at",
    "end_at",
    "overlap",
    "catch_up",
    "catch_up_window",
    "jitter",
    "description",
)
_JSON_COLUMNS = ("data", "args", "kwargs")

_COLUMNS = """
    s.id, s.task, s.target_kind, s.data, s.args, s.kwargs, s.cron, s.interval_seconds, s.timezone, s.start_at,
    s.end_at, s.overlap, s.catch_up, s.catch_up_window, s.jitter, s.description, s.paused, s.enabled, s.source,
    s.declared_in, s.next_tick, s.next_fire_at, s.buffered_tick, s.last_tick, s.last_fired_at, s.last_execution_id,
    s.last_lag_seconds, s.last_skip, s.created_at, s.updated_at
"""
# whether some execution of the schedule is still active (the partial index makes this a probe)
_ACTIVE = """
    EXISTS (SELECT 1 FROM executions e WHERE e.schedule_id = s.id AND e.status IN ('pending', 'running', 'waiting'))
"""
_LAST_STATUS = "(SELECT e.status FROM executions e WHERE e.id = s.last_execution_id)"


def _values(definition: dict[str, Any]) -> dict[str, Any]:
    return {k: to_json(v) if k in _JSON_COLUMNS else v for k, v in definition.items() if k in DEFINITION_COLUMNS}


_INSERT = text(
    f"""
    INSERT INTO schedules AS s (id, {", ".join(DEFINITION_COLUMNS)}, paused, source, declared_in, next_tick,
                               next_fire_at, created_at, updated_at)
    VALUES (:id, :task, :target_kind, CAST(:data AS jsonb), CAST(:args AS jsonb), CAST(:kwargs AS jsonb), :cron,
            :interval_seconds, :timezone, :start_at, :end_at, :overlap, :catch_up, :catch_up_window, :jitter,
            :description, :paused, :source, :declared_in, :next_tick, :next_fire_at, now(), now())
    ON CONFLICT (id) DO NOTHING
    RETURNING {_COLUMNS}
    """
)


def insert(
    conn: Connection,
    schedule_id: str,
    definition: dict[str, Any],
    *,
    source: str,
    declared_in: str | None,
    paused: bool,
    next_tick: datetime | None,
    next_fire_at: datetime | None,
) -> dict[str, Any] | None:
    """A new schedule; None when the id is taken."""
    return one(
        conn,
        _INSERT,
        id=schedule_id,
        **_values(definition),
        paused=paused,
        source=source,
        declared_in=declared_in,
        next_tick=next_tick,
        next_fire_at=next_fire_at,
    )


def insert_many(conn: Connection, new: list[dict[str, Any]]) -> None:
    """Many new schedules in one pipelined statement (bulk creation); each item as `insert` takes it, with `id`,
    the definition's columns, `source`, `declared_in`, `paused`, `next_tick` and `next_fire_at`. Taken ids are
    skipped."""
    if new:
        conn.execute(_INSERT, [{**item, **_values(item)} for item in new])


_REDEFINE = text(
    f"""
    UPDATE schedules s SET task = :task, target_kind = :target_kind, data = CAST(:data AS jsonb),
           args = CAST(:args AS jsonb), kwargs = CAST(:kwargs AS jsonb), cron = :cron,
           interval_seconds = :interval_seconds, timezone = :timezone, start_at = :start_at, end_at = :end_at,
           overlap = :overlap, catch_up = :catch_up, catch_up_window = :catch_up_window, jitter = :jitter,
           description = :description, enabled = true, declared_in = coalesce(:declared_in, declared_in),
           next_tick = :next_tick, next_fire_at = :next_fire_at, updated_at = now()
    WHERE s.id = :id
    RETURNING {_COLUMNS}
    """
)


def redefine(
    conn: Connection,
    schedule_id: str,
    definition: dict[str, Any],
    *,
    next_tick: datetime | None,
    next_fire_at: datetime | None,
    declared_in: str | None = None,
) -> dict[str, Any] | None:
    """Replace a schedule's definition (enabling it again) and where it goes on from."""
    return one(
        conn,
        _REDEFINE,
        id=schedule_id,
        **_values(definition),
        declared_in=declared_in,
        next_tick=next_tick,
        next_fire_at=next_fire_at,
    )


_GET = text(f"SELECT {_COLUMNS}, {_LAST_STATUS} AS last_status FROM schedules s WHERE s.id = :id")
_LOCK = text("SELECT id FROM schedules WHERE id = :id FOR UPDATE")
_READ_ONE_LOCKED = text(f"SELECT {_COLUMNS}, {_ACTIVE} AS active FROM schedules s WHERE s.id = :id")


def get(conn: Connection, schedule_id: str) -> dict[str, Any] | None:
    return one(conn, _GET, id=schedule_id)


def lock(conn: Connection, schedule_id: str) -> dict[str, Any] | None:
    """The schedule, locked for this transaction, with whether a run of it is active.

    Locked first and read in a statement of its own (as `lock_due` does): a statement that waited for the lock
    sees the executions table as of its start, so it would miss the run a sweep committed meanwhile and a
    trigger would fire beside it."""
    if one(conn, _LOCK, id=schedule_id) is None:
        return None
    return one(conn, _READ_ONE_LOCKED, id=schedule_id)


def list_schedules(
    conn: Connection, *, task: str | None, source: str | None, include_disabled: bool, limit: int, offset: int
) -> tuple[list[dict[str, Any]], int]:
    where = ["TRUE"]
    params: dict[str, Any] = {"limit": limit, "offset": offset}
    if task is not None:
        where.append("s.task = :task")
        params["task"] = task
    if source is not None:
        where.append("s.source = :source")
        params["source"] = source
    if not include_disabled:
        where.append("s.enabled")
    condition = " AND ".join(where)
    page = rows(
        conn,
        text(
            f"SELECT {_COLUMNS}, {_LAST_STATUS} AS last_status FROM schedules s WHERE {condition} "
            "ORDER BY s.id LIMIT :limit OFFSET :offset"
        ),
        **params,
    )
    total = scalar(conn, text(f"SELECT count(*) FROM schedules s WHERE {condition}"), **params)
    return page, int(total)


_DELETE = text("DELETE FROM schedules WHERE id = :id RETURNING id")


def delete(conn: Connection, schedule_id: str) -> bool:
    return one(conn, _DELETE, id=schedule_id) is not None


_SET_PAUSED = text(
    f"""
    UPDATE schedules s SET paused = :paused, next_tick = :next_tick, next_fire_at = :next_fire_at,
           updated_at = now()
    WHERE s.id = :id
    RETURNING {_COLUMNS}
    """
)


def set_paused(
    conn: Connection, schedule_id: str, paused: bool, next_tick: datetime | None, next_fire_at: datetime | None
) -> dict[str, Any] | None:
    return one(conn, _SET_PAUSED, id=schedule_id, paused=paused, next_tick=next_tick, next_fire_at=next_fire_at)


# Due now, or holding a buffered tick: the sweepers split these between them, each skipping rows another holds.
# The rows are locked first and read in a statement of their own: a statement reads as of its start, so a row
# read by the statement that locks it could be the version from before a change committed as it ran (a
# manual trigger's run, an update of its task), and the sweep would fire the old definition, or beside that run.
_LOCK_DUE = text(
    """
    SELECT id FROM schedules WHERE enabled AND NOT paused AND next_fire_at IS NOT NULL AND next_fire_at <= now()
    ORDER BY next_fire_at LIMIT :limit FOR UPDATE SKIP LOCKED
    """
)
_LOCK_BUFFERED = text(
    """
    SELECT id FROM schedules WHERE enabled AND NOT paused AND buffered_tick IS NOT NULL
    LIMIT :limit FOR UPDATE SKIP LOCKED
    """
)
_READ_LOCKED = text(
    f"""
    SELECT {_COLUMNS}, {_ACTIVE} AS active FROM schedules s
    WHERE s.id = ANY(:ids) AND s.enabled AND NOT s.paused
      AND ((s.next_fire_at IS NOT NULL AND s.next_fire_at <= now()) OR s.buffered_tick IS NOT NULL)
    ORDER BY s.next_fire_at NULLS LAST, s.id
    """
)


def lock_due(conn: Connection, limit: int) -> list[dict[str, Any]]:
    """Schedules with a tick due (or a buffered tick waiting for its turn), locked; rows another sweeper holds
    are skipped, so sweepers share the work instead of queueing behind each other."""
    ids = [row["id"] for row in rows(conn, _LOCK_DUE, limit=limit)]
    ids += [row["id"] for row in rows(conn, _LOCK_BUFFERED, limit=limit) if row["id"] not in ids]
    return rows(conn, _READ_LOCKED, ids=ids) if ids else []


# Where each schedule of a sweep goes on from, in one statement for the whole batch.
_PROGRESS = text(
    """
    UPDATE schedules s SET next_tick = u.next_tick, next_fire_at = u.next_fire_at, buffered_tick = u.buffered_tick,
           last_tick = coalesce(u.last_tick, s.last_tick), last_fired_at = coalesce(u.last_fired_at, s.last_fired_at),
           last_execution_id = coalesce(u.last_execution_id, s.last_execution_id),
           last_lag_seconds = coalesce(u.last_lag, s.last_lag_seconds),
           last_skip = coalesce(CAST(u.last_skip AS jsonb), s.last_skip), updated_at = now()
    FROM unnest(CAST(:ids AS text[]), CAST(:next_ticks AS timestamptz[]), CAST(:next_fire_ats AS timestamptz[]),
                CAST(:buffered_ticks AS timestamptz[]), CAST(:last_ticks AS timestamptz[]),
                CAST(:last_fired_ats AS timestamptz[]), CAST(:last_execution_ids AS text[]),
                CAST(:last_lags AS double precision[]), CAST(:last_skips AS text[]))
         AS u(id, next_tick, next_fire_at, buffered_tick, last_tick, last_fired_at, last_execution_id, last_lag,
              last_skip)
    WHERE s.id = u.id
    """
)
PROGRESS_FIELDS = (
    "next_tick",
    "next_fire_at",
    "buffered_tick",
    "last_tick",
    "last_fired_at",
    "last_execution_id",
    "last_lag",
    "last_skip",
)


def record_progress(conn: Connection, progress: dict[str, dict[str, Any]]) -> None:
    """Schedule id → its PROGRESS_FIELDS (None keeps a `last_*` value as it was)."""
    if not progress:
        return
    ids = list(progress)
    columns = {
        f"{name}s": [to_json(progress[i][name]) if name == "last_skip" else progress[i][name] for i in ids]
        for name in PROGRESS_FIELDS
    }
    conn.execute(_PROGRESS, {"ids": ids, **columns})


_ACTIVE_RUNS = text(
    "SELECT id FROM executions WHERE schedule_id = :id AND status IN ('pending', 'running', 'waiting') ORDER BY id"
)


def active_runs(conn: Connection, schedule_id: str) -> list[str]:
    return [r["id"] for r in rows(conn, _ACTIVE_RUNS, id=schedule_id)]


_CODE_DECLARED = text(f"SELECT {_COLUMNS} FROM schedules s WHERE s.source = 'code' AND s.declared_in = ANY(:modules)")


def declared_in_modules(conn: Connection, modules: list[str]) -> list[dict[str, Any]]:
    return rows(conn, _CODE_DECLARED, modules=modules)


# Schedules an earlier `import-beat` of one Celery app (as named to `-A`) created under one id prefix.
_IMPORTED_FROM = text(
    f"""
    SELECT {_COLUMNS} FROM schedules s
    WHERE s.source = 'beat' AND s.declared_in = :app AND s.enabled AND left(s.id, length(:prefix)) = :prefix
    ORDER BY s.id
    """
)


def imported_from(conn: Connection, app: str, prefix: str) -> list[dict[str, Any]]:
    """The enabled schedules imported from the beat_schedule of `app` with ids starting with `prefix`."""
    return rows(conn, _IMPORTED_FROM, app=app, prefix=prefix)


_ADOPT = text("UPDATE schedules SET declared_in = :app WHERE id = :id AND source = 'beat' AND declared_in IS NULL")


def adopt_import(conn: Connection, schedule_id: str, app: str) -> None:
    """Record which app a schedule imported before imports recorded it came from (its entry is still there)."""
    conn.execute(_ADOPT, {"id": schedule_id, "app": app})


_DISABLE = text("UPDATE schedules SET enabled = false, updated_at = now() WHERE id = ANY(:ids) AND enabled")


def disable(conn: Connection, schedule_ids: list[str]) -> None:
    conn.execute(_DISABLE, {"ids": schedule_ids})


_RECONCILE_LOCK = text("SELECT pg_advisory_xact_lock(:key)")
RECONCILE_LOCK_KEY = 0x7A617274_0005


def serialise_reconciliation(conn: Connection) -> None:
    """Workers starting together reconcile one after another, so none reads a half-written declaration set."""
    conn.execute(_RECONCILE_LOCK, {"key": RECONCILE_LOCK_KEY})


# The sets a worker sees for the first time take one generation, the next of one counter for all modules; the
# reconciliation lock (held by the caller) serialises the workers taking it, and no host's clock is consulted.
# A module's schedules are recorded under its name; its tasks and limits under "catalog:" and its name
# (zart.dispatch.worker.record_catalog), so both share the one counter (see zart.declarations).
_NEXT_GENERATION = text("SELECT coalesce(max(generation), 0) + 1 FROM schedule_declarations")
_RECORD_DECLARATIONS = text(
    """
    INSERT INTO schedule_declarations (module, fingerprint, generation, code_version, first_seen_at)
    VALUES (:module, :fingerprint, :generation, :code_version, now())
    ON CONFLICT (module, fingerprint) DO NOTHING
    """
)
_LATEST_DECLARATIONS = text(
    """
    SELECT fingerprint, generation, code_version, first_seen_at FROM schedule_declarations
    WHERE module = :module ORDER BY generation DESC LIMIT 1
    """
)


def next_declaration_generation(conn: Connection) -> int:
    """The generation of the declaration sets this reconciliation sees first. Call it, and `record_declarations`,
    under `serialise_reconciliation`."""
    return int(scalar(conn, _NEXT_GENERATION))


def record_declarations(
    conn: Connection, module: str, fingerprint: str, code_version: str | None, generation: int
) -> dict[str, Any]:
    """Record a module's declaration set if it was never seen, and return the module's latest set."""
    conn.execute(
        _RECORD_DECLARATIONS,
        {"module": module, "fingerprint": fingerprint, "code_version": code_version, "generation": generation},
    )
    latest = latest_declarations(conn, module)
    assert latest is not None
    return latest


def latest_declarations(conn: Connection, module: str) -> dict[str, Any] | None:
    """The newest declaration set recorded for a module (None when none was)."""
    return one(conn, _LATEST_DECLARATIONS, module=module)


_FIRING_FIGURES = text(
    """
    SELECT coalesce(EXTRACT(EPOCH FROM now() - min(next_fire_at)), 0) AS overdue,
           (SELECT coalesce(max(last_lag_seconds), 0) FROM schedules
             WHERE last_fired_at > now() - interval '5 minutes') AS recent_lag
    FROM schedules WHERE enabled AND NOT paused AND next_fire_at IS NOT NULL AND next_fire_at <= now()
    """
)


def firing_figures(conn: Connection) -> dict[str, float]:
    """How late the most overdue unfired tick is now, and the largest firing lag of the last five minutes."""
    row = one(conn, _FIRING_FIGURES) or {}
    return {"overdue": float(row.get("overdue") or 0.0), "recent_lag": float(row.get("recent_lag") or 0.0)}
