"""Initial schema: executions, runs, steps, step attempts, events, pause rules, task catalog.

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "executions",
        sa.Column("id", sa.Text(), primary_key=True),
        sa.Column("task", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("input", JSONB(), nullable=False),
        sa.Column("output", JSONB()),
        sa.Column("error", JSONB()),
        sa.Column("idempotency_key", sa.Text()),
        sa.Column("run_index", sa.Integer(), nullable=False, server_default=sa.text("0")),
        sa.Column("attempt", sa.Integer(), nullable=False, server_default=sa.text("1")),
        sa.Column("current_step", sa.Text()),
        sa.Column("lease_token", sa.Text()),
        sa.Column("lease_expires_at", TS),
        sa.Column("leased_by", sa.Text()),
        sa.Column("wake_at", TS),
        sa.Column("waiting_for", JSONB()),
        sa.Column("waiting_for_event", sa.Text()),
        sa.Column("parent_id", sa.Text()),
        sa.Column("parent_run", sa.Integer()),
        sa.Column("parent_step", sa.Text()),
        sa.Column("deadline_at", TS),
        sa.Column("dispatched_at", TS),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("started_at", TS),
        sa.Column("completed_at", TS),
        sa.CheckConstraint(
            "status IN ('pending', 'running', 'waiting', 'completed', 'failed', 'cancelled')",
            name="executions_status_check",
        ),
        sa.UniqueConstraint("idempotency_key", name="executions_idempotency_key_key"),
        postgresql_with={"fillfactor": "80"},
    )
    op.create_index("executions_created_idx", "executions", ["created_at"])
    op.create_index("executions_status_created_idx", "executions", ["status", "created_at"])
    op.create_index("executions_task_created_idx", "executions", ["task", "created_at"])
    op.create_index(
        "executions_parent_idx", "executions", ["parent_id"], postgresql_where=sa.text("parent_id IS NOT NULL")
    )
    op.create_index("executions_due_idx", "executions", ["wake_at"], postgresql_where=sa.text("status = 'waiting'"))
    op.create_index(
        "executions_pending_idx", "executions", ["dispatched_at"], postgresql_where=sa.text("status = 'pending'")
    )

    op.create_table(
        "runs",
        sa.Column("execution_id", sa.Text(), nullable=False),
        sa.Column("run_index", sa.Integer(), nullable=False),
        sa.Column("trigger", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("input", JSONB(), nullable=False),
        sa.Column("output", JSONB()),
        sa.Column("error", JSONB()),
        sa.Column("triggered_by", sa.Text()),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("completed_at", TS),
        sa.PrimaryKeyConstraint("execution_id", "run_index", name="runs_pkey"),
        sa.ForeignKeyConstraint(["execution_id"], ["executions.id"], ondelete="CASCADE", name="runs_execution_fkey"),
    )

    op.create_table(
        "steps",
        sa.Column("execution_id", sa.Text(), nullable=False),
        sa.Column("run_index", sa.Integer(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("output", JSONB()),
        sa.Column("error", JSONB()),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default=sa.text("0")),
        sa.Column("failures", sa.Integer(), nullable=False, server_default=sa.text("0")),
        sa.Column("exec_attempt", sa.Integer(), nullable=False, server_default=sa.text("1")),
        sa.Column("wake_at", TS),
        sa.Column("child_id", sa.Text()),
        sa.Column("started_at", TS),
        sa.Column("completed_at", TS),
        sa.Column("updated_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("execution_id", "run_index", "name", name="steps_pkey"),
        sa.UniqueConstraint("execution_id", "run_index", "position", name="steps_position_key"),
        sa.ForeignKeyConstraint(["execution_id"], ["executions.id"], ondelete="CASCADE", name="steps_execution_fkey"),
    )

    op.create_table(
        "step_attempts",
        sa.Column("id", sa.BigInteger(), primary_key=True, autoincrement=True),
        sa.Column("execution_id", sa.Text(), nullable=False),
        sa.Column("run_index", sa.Integer(), nullable=False),
        sa.Column("step_name", sa.Text(), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("started_at", TS, nullable=False),
        sa.Column("ended_at", TS),
        sa.Column("outcome", sa.Text(), nullable=False),
        sa.Column("error", JSONB()),
        sa.UniqueConstraint("execution_id", "run_index", "step_name", "attempt", name="step_attempts_key"),
        sa.ForeignKeyConstraint(
            ["execution_id"], ["executions.id"], ondelete="CASCADE", name="step_attempts_execution_fkey"
        ),
    )

    op.create_table(
        "events",
        sa.Column("id", sa.BigInteger(), primary_key=True, autoincrement=True),
        sa.Column("execution_id", sa.Text(), nullable=False),
        sa.Column("run_index", sa.Integer(), nullable=False),
        sa.Column("event_name", sa.Text(), nullable=False),
        sa.Column("payload", JSONB()),
        sa.Column("delivered_at", TS, nullable=False),
        sa.ForeignKeyConstraint(["execution_id"], ["executions.id"], ondelete="CASCADE", name="events_execution_fkey"),
    )
    op.create_index("events_execution_idx", "events", ["execution_id"])

    op.create_table(
        "pause_rules",
        sa.Column("id", sa.Text(), primary_key=True),
        sa.Column("execution_id", sa.Text()),
        sa.Column("task", sa.Text()),
        sa.Column("step_pattern", sa.Text()),
        sa.Column("applies_to_all", sa.Boolean(), nullable=False, server_default=sa.text("false")),
        sa.Column("reason", sa.Text()),
        sa.Column("expires_at", TS),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("created_by", sa.Text()),
        sa.Column("resumed_at", TS),
        sa.Column("resumed_by", sa.Text()),
    )

    op.create_table(
        "task_catalog",
        sa.Column("name", sa.Text(), primary_key=True),
        sa.Column("schema", JSONB()),
        sa.Column("registered_by", sa.Text()),
        sa.Column("first_seen_at", TS, nullable=False),
        sa.Column("last_seen_at", TS, nullable=False),
    )


def downgrade() -> None:
    for table in ("task_catalog", "pause_rules", "events", "step_attempts", "steps", "runs", "executions"):
        op.drop_table(table)
