"""The schema as SQLAlchemy Core tables: the declaration that the migrations must produce."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    Float,
    ForeignKeyConstraint,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    SmallInteger,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB

from zart.limits import ACTIVE_STATUSES, EXECUTION_STATUSES, TERMINAL_STATUSES  # noqa: F401  (re-exported)

metadata = MetaData()


def _ts(name: str, nullable: bool = True) -> Column:
    return Column(name, DateTime(timezone=True), nullable=nullable)


executions = Table(
    "executions",
    metadata,
    Column("id", Text, primary_key=True),
    Column("task", Text, nullable=False),
    Column("status", Text, nullable=False),
    Column("input", JSONB, nullable=False),
    Column("output", JSONB),
    Column("error", JSONB),
    Column("idempotency_key", Text),
    Column("run_index", Integer, nullable=False, server_default=text("0")),
    Column("attempt", Integer, nullable=False, server_default=text("1")),
    # times the current run was taken back from a dead owner since its last checkpoint (poison detection)
    Column("recoveries", Integer, nullable=False, server_default=text("0")),
    Column("current_step", Text),
    Column("lease_token", Text),
    _ts("lease_expires_at"),
    Column("leased_by", Text),
    _ts("wake_at"),
    Column("waiting_for", JSONB),
    Column("waiting_for_event", Text),
    Column("parent_id", Text),
    Column("parent_run", Integer),
    Column("parent_step", Text),
    Column("function_ref", Text),
    Column("queue", Text),
    _ts("deadline_at"),
    _ts("dispatched_at"),
    _ts("created_at", nullable=False),
    _ts("updated_at", nullable=False),
    _ts("started_at"),
    _ts("completed_at"),
    Column("trace_context", JSONB),
    Column("schedule_id", Text),
    _ts("scheduled_for"),
    # flow control (migration 0013): the limit governing this execution, its concurrency key, whether it holds
    # a slot now, why a pending one is held back, its priority, and its deduplication key while active
    Column("flow_limit", Text),
    Column("flow_key", Text),
    Column("flow_holds", Boolean, nullable=False, server_default=text("false")),
    Column("held_by", Text),
    Column("priority", Integer, nullable=False, server_default=text("0")),
    Column("dedup_key", Text),
    CheckConstraint(
        "status IN ('pending', 'running', 'waiting', 'completed', 'failed', 'cancelled')",
        name="executions_status_check",
    ),
    UniqueConstraint("idempotency_key", name="executions_idempotency_key_key"),
    Index("executions_created_id_idx", "created_at", "id"),
    Index("executions_status_created_id_idx", "status", "created_at", "id"),
    Index("executions_task_created_id_idx", "task", "created_at", "id"),
    Index(
        "executions_finished_root_status_idx",
        "status",
        "completed_at",
        postgresql_where=text("parent_id IS NULL AND status IN ('completed', 'failed', 'cancelled')"),
    ),
    Index("executions_parent_idx", "parent_id", postgresql_where=text("parent_id IS NOT NULL")),
    Index("executions_due_idx", "wake_at", postgresql_where=text("status = 'waiting'")),
    Index("executions_pending_idx", "dispatched_at", postgresql_where=text("status = 'pending'")),
    Index(
        "executions_ready_idx", "dispatched_at", postgresql_where=text("status = 'pending' AND held_by IS NULL")
    ),
    # the ready ones under no limit (migration 0017): a worker's look for one never walks past a limited backlog
    Index(
        "executions_ready_unlimited_idx",
        "dispatched_at",
        postgresql_where=text("status = 'pending' AND held_by IS NULL AND flow_limit IS NULL"),
    ),
    Index("executions_pending_task_idx", "task", "created_at", postgresql_where=text("status = 'pending'")),
    Index(
        "executions_active_idx",
        "status",
        postgresql_where=text("status IN ('pending', 'running', 'waiting')"),
    ),
    Index(
        "executions_deadline_idx",
        "deadline_at",
        postgresql_where=text("status IN ('pending', 'running', 'waiting') AND deadline_at IS NOT NULL"),
    ),
    Index(
        "executions_schedule_active_idx",
        "schedule_id",
        postgresql_where=text("schedule_id IS NOT NULL AND status IN ('pending', 'running', 'waiting')"),
    ),
    Index(
        "executions_paused_idx",
        text("(waiting_for ->> 'rule')"),
        postgresql_where=text("status = 'waiting' AND (waiting_for ->> 'kind') = 'pause'"),
    ),
    # the executions given back by a worker that lacks their task (migration 0022): a worker with it wakes them
    Index(
        "executions_waiting_for_worker_idx",
        "task",
        postgresql_where=text("status = 'waiting' AND (waiting_for ->> 'kind') = 'worker'"),
    ),
    Index(
        "executions_held_idx",
        "flow_limit",
        text("priority DESC"),
        "created_at",
        "id",
        postgresql_where=text("status = 'pending' AND held_by IS NOT NULL"),
    ),
    Index(
        "executions_flow_key_idx",
        "flow_limit",
        "flow_key",
        "created_at",
        postgresql_where=text("flow_key IS NOT NULL AND status IN ('pending', 'running', 'waiting')"),
    ),
    # the executions holding a slot of their limit now (migration 0016): admission counts them, per key too
    Index("executions_flow_holders_idx", "flow_limit", "flow_key", postgresql_where=text("flow_holds")),
    Index(
        "executions_dedup_key_idx",
        "dedup_key",
        unique=True,
        postgresql_where=text("dedup_key IS NOT NULL AND status IN ('pending', 'running', 'waiting')"),
    ),
    postgresql_with={"fillfactor": "80"},
)

runs = Table(
    "runs",
    metadata,
    Column("execution_id", Text, nullable=False),
    Column("run_index", Integer, nullable=False),
    Column("trigger", Text, nullable=False),
    Column("status", Text, nullable=False),
    Column("input", JSONB, nullable=False),
    Column("output", JSONB),
    Column("error", JSONB),
    Column("triggered_by", Text),
    _ts("created_at", nullable=False),
    _ts("started_at"),
    _ts("completed_at"),
    PrimaryKeyConstraint("execution_id", "run_index", name="runs_pkey"),
    ForeignKeyConstraint(["execution_id"], ["executions.id"], ondelete="CASCADE", name="runs_execution_fkey"),
    # room for the run's final update on its own page (migration 0019): it stays heap-only
    postgresql_with={"fillfactor": "80"},
)

# Steps and attempts carry no foreign key: every write is fenced on the execution's lease (migration 0004).
steps = Table(
    "steps",
    metadata,
    Column("execution_id", Text, nullable=False),
    Column("run_index", Integer, nullable=False),
    Column("name", Text, nullable=False),
    Column("position", Integer, nullable=False),
    Column("kind", Text, nullable=False),
    Column("status", Text, nullable=False),
    Column("output", JSONB),
    Column("error", JSONB),
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    Column("failures", Integer, nullable=False, server_default=text("0")),
    Column("exec_attempt", Integer, nullable=False, server_default=text("1")),
    _ts("wake_at"),
    Column("child_id", Text),
    _ts("started_at"),
    _ts("completed_at"),
    _ts("updated_at", nullable=False),
    PrimaryKeyConstraint("execution_id", "run_index", "name", name="steps_pkey"),
    UniqueConstraint("execution_id", "run_index", "position", name="steps_position_key"),
)

step_attempts = Table(
    "step_attempts",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("execution_id", Text, nullable=False),
    Column("run_index", Integer, nullable=False),
    Column("step_name", Text, nullable=False),
    Column("attempt", Integer, nullable=False),
    _ts("started_at", nullable=False),
    _ts("ended_at"),
    Column("outcome", Text, nullable=False),
    Column("error", JSONB),
    UniqueConstraint("execution_id", "run_index", "step_name", "attempt", name="step_attempts_key"),
)

# A step run by a team's own Celery worker: the current dispatch (migration 0013).
remote_steps = Table(
    "remote_steps",
    metadata,
    Column("execution_id", Text, nullable=False),
    Column("run_index", Integer, nullable=False),
    Column("step_name", Text, nullable=False),
    Column("token", Text, nullable=False),
    Column("task_name", Text, nullable=False),
    Column("queue", Text, nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("sends", Integer, nullable=False, server_default=text("1")),
    Column("losses", Integer, nullable=False, server_default=text("0")),
    Column("state", Text, nullable=False),
    Column("worker", Text),
    Column("error", JSONB),
    Column("dispatch_timeout", Float, nullable=False),
    _ts("attempt_started_at", nullable=False),
    _ts("dispatched_at", nullable=False),
    _ts("started_at"),
    _ts("heartbeat_at"),
    _ts("finished_at"),
    _ts("alive_until", nullable=False),
    CheckConstraint(
        "state IN ('sent', 'started', 'retry', 'succeeded', 'failed', 'closed', 'abandoned')",
        name="remote_steps_state_check",
    ),
    PrimaryKeyConstraint("execution_id", "run_index", "step_name", name="remote_steps_pkey"),
    UniqueConstraint("token", name="remote_steps_token_key"),
    Index("remote_steps_in_flight_idx", "alive_until", postgresql_where=text("state IN ('sent', 'started', 'retry')")),
)

events = Table(
    "events",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("execution_id", Text, nullable=False),
    Column("run_index", Integer, nullable=False),
    Column("event_name", Text, nullable=False),
    Column("payload", JSONB),
    _ts("delivered_at", nullable=False),
    ForeignKeyConstraint(["execution_id"], ["executions.id"], ondelete="CASCADE", name="events_execution_fkey"),
    Index("events_execution_idx", "execution_id"),
)

pause_rules = Table(
    "pause_rules",
    metadata,
    Column("id", Text, primary_key=True),
    Column("execution_id", Text),
    Column("task", Text),
    Column("step_pattern", Text),
    Column("applies_to_all", Boolean, nullable=False, server_default=text("false")),
    Column("reason", Text),
    _ts("expires_at"),
    _ts("created_at", nullable=False),
    Column("created_by", Text),
    _ts("resumed_at"),
    Column("resumed_by", Text),
    _ts("released_at"),
)

admin_actions = Table(
    "admin_actions",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("execution_id", Text),
    Column("rule_id", Text),
    Column("action", Text, nullable=False),
    Column("triggered_by", Text, nullable=False),
    Column("details", JSONB),
    _ts("created_at", nullable=False),
    Index("admin_actions_execution_idx", "execution_id"),
)

task_catalog = Table(
    "task_catalog",
    metadata,
    Column("name", Text, primary_key=True),
    Column("schema", JSONB),
    Column("timeout_seconds", Float),
    Column("queue", Text),
    Column("registered_by", Text),
    _ts("first_seen_at", nullable=False),
    _ts("last_seen_at", nullable=False),
    Column("flow_limit", Text),
    Column("priority", Integer),
    Column("declared_generation", BigInteger),  # of the declaration set that wrote it (migration 0024)
)

execution_counts = Table(
    "execution_counts",
    metadata,
    Column("task", Text, nullable=False),
    Column("status", Text, nullable=False),
    Column("n", BigInteger, nullable=False),
    PrimaryKeyConstraint("task", "status", name="execution_counts_pkey"),
)

# Appended by triggers on `executions` (see migration 0003); folded into execution_counts by the sweeper.
execution_count_deltas = Table(
    "execution_count_deltas",
    metadata,
    Column("task", Text, nullable=False),
    Column("status", Text, nullable=False),
    Column("delta", Integer, nullable=False),
)

# Fired by the sweepers (see zart.schedules); a fired execution's id is `<schedule id>@<tick>` (migration 0007).
schedules = Table(
    "schedules",
    metadata,
    Column("id", Text, primary_key=True),
    Column("task", Text, nullable=False),
    Column("target_kind", Text, nullable=False, server_default=text("'zart'")),
    Column("data", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    Column("args", JSONB, nullable=False, server_default=text("'[]'::jsonb")),
    Column("kwargs", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    Column("cron", Text),
    Column("interval_seconds", Integer),
    Column("timezone", Text, nullable=False, server_default=text("'UTC'")),
    _ts("start_at"),
    _ts("end_at"),
    Column("overlap", Text, nullable=False),
    Column("catch_up", Text, nullable=False),
    Column("catch_up_window", Float, nullable=False),
    Column("jitter", Float, nullable=False, server_default=text("0")),
    Column("description", Text),
    Column("paused", Boolean, nullable=False, server_default=text("false")),
    Column("enabled", Boolean, nullable=False, server_default=text("true")),
    Column("source", Text, nullable=False),
    Column("declared_in", Text),
    _ts("next_tick"),
    _ts("next_fire_at"),
    _ts("buffered_tick"),
    _ts("last_tick"),
    _ts("last_fired_at"),
    Column("last_execution_id", Text),
    Column("last_lag_seconds", Float),
    Column("last_skip", JSONB),
    _ts("created_at", nullable=False),
    _ts("updated_at", nullable=False),
    CheckConstraint("(cron IS NULL) <> (interval_seconds IS NULL)", name="schedules_timing_check"),
    CheckConstraint(
        "overlap IN ('skip', 'buffer_one', 'allow_all', 'cancel_previous')", name="schedules_overlap_check"
    ),
    CheckConstraint("catch_up IN ('latest', 'all', 'none')", name="schedules_catch_up_check"),
    Index(
        "schedules_due_idx",
        "next_fire_at",
        postgresql_where=text("enabled AND NOT paused AND next_fire_at IS NOT NULL"),
    ),
    Index(
        "schedules_buffered_idx", "id", postgresql_where=text("enabled AND NOT paused AND buffered_tick IS NOT NULL")
    ),
)

# Each module's declaration sets in the order first seen: a worker whose set was superseded leaves the module's
# schedules alone (migration 0023, zart.schedules.reconcile).
schedule_declarations = Table(
    "schedule_declarations",
    metadata,
    Column("module", Text, nullable=False),
    Column("fingerprint", Text, nullable=False),
    Column("generation", BigInteger, nullable=False),
    Column("code_version", Text),
    _ts("first_seen_at", nullable=False),
    PrimaryKeyConstraint("module", "fingerprint", name="schedule_declarations_pkey"),
    Index("schedule_declarations_latest_idx", "module", "generation"),
)

# A limit (a zart queue, or a named token bucket for steps): declared by tasks, changed at runtime.
flow_limits = Table(
    "flow_limits",
    metadata,
    Column("name", Text, primary_key=True),
    Column("concurrency", Integer),
    Column("rate", Integer),
    Column("period_seconds", Float),
    Column("burst", Integer),
    Column("key_path", Text),
    Column("key_concurrency", Integer),
    Column("key_strategy", Text, nullable=False, server_default=text("'wait'")),
    Column("paused", Boolean, nullable=False, server_default=text("false")),
    Column("tokens", Float),
    _ts("refilled_at"),
    Column("source", Text, nullable=False, server_default=text("'code'")),
    Column("updated_by", Text),
    _ts("updated_at", nullable=False),
    Column("declared_generation", BigInteger),  # of the declaration set that wrote it (migration 0024)
    CheckConstraint(
        "key_strategy IN ('wait', 'cancel_newest', 'cancel_in_progress')", name="flow_limits_key_strategy_check"
    ),
    CheckConstraint("source IN ('code', 'runtime')", name="flow_limits_source_check"),
)

# When the fleet's last sweep began: one row, taken by the first sweeper to wake after the interval (migration
# 0015), so a fleet of many workers sweeps once per interval, not once per worker.
sweep_turns = Table(
    "sweep_turns",
    metadata,
    Column("id", SmallInteger, primary_key=True),
    _ts("started_at", nullable=False),
    CheckConstraint("id = 1", name="sweep_turns_single_row"),
)
