"""Durable schedules: one row per schedule, fired by the workers' sweepers; executions record their tick.

A fired execution's id is derived from its schedule and tick, so the primary key of `executions` is what makes
a tick fire once however many sweepers race for it.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "schedules",
        sa.Column("id", sa.Text(), primary_key=True),
        sa.Column("task", sa.Text(), nullable=False),
        sa.Column("target_kind", sa.Text(), nullable=False, server_default=sa.text("'zart'")),
        sa.Column("data", JSONB(), nullable=False, server_default=sa.text("'{}'::jsonb")),
        sa.Column("args", JSONB(), nullable=False, server_default=sa.text("'[]'::jsonb")),
        sa.Column("kwargs", JSONB(), nullable=False, server_default=sa.text("'{}'::jsonb")),
        sa.Column("cron", sa.Text()),
        sa.Column("interval_seconds", sa.Integer()),
        sa.Column("timezone", sa.Text(), nullable=False, server_default=sa.text("'UTC'")),
        sa.Column("start_at", TS),
        sa.Column("end_at", TS),
        sa.Column("overlap", sa.Text(), nullable=False),
        sa.Column("catch_up", sa.Text(), nullable=False),
        sa.Column("catch_up_window", sa.Float(), nullable=False),
        sa.Column("jitter", sa.Float(), nullable=False, server_default=sa.text("0")),
        sa.Column("description", sa.Text()),
        sa.Column("paused", sa.Boolean(), nullable=False, server_default=sa.text("false")),
        sa.Column("enabled", sa.Boolean(), nullable=False, server_default=sa.text("true")),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("declared_in", sa.Text()),
        sa.Column("next_tick", TS),
        sa.Column("next_fire_at", TS),
        sa.Column("buffered_tick", TS),
        sa.Column("last_tick", TS),
        sa.Column("last_fired_at", TS),
        sa.Column("last_execution_id", sa.Text()),
        sa.Column("last_lag_seconds", sa.Float()),
        sa.Column("last_skip", JSONB()),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.CheckConstraint("(cron IS NULL) <> (interval_seconds IS NULL)", name="schedules_timing_check"),
        sa.CheckConstraint(
            "overlap IN ('skip', 'buffer_one', 'allow_all', 'cancel_previous')", name="schedules_overlap_check"
        ),
        sa.CheckConstraint("catch_up IN ('latest', 'all', 'none')", name="schedules_catch_up_check"),
    )
    op.create_index(
        "schedules_due_idx",
        "schedules",
        ["next_fire_at"],
        postgresql_where=sa.text("enabled AND NOT paused AND next_fire_at IS NOT NULL"),
    )
    op.create_index(
        "schedules_buffered_idx",
        "schedules",
        ["id"],
        postgresql_where=sa.text("enabled AND NOT paused AND buffered_tick IS NOT NULL"),
    )
    op.add_column("executions", sa.Column("schedule_id", sa.Text()))
    op.add_column("executions", sa.Column("scheduled_for", TS))
    op.create_index(
        "executions_schedule_active_idx",
        "executions",
        ["schedule_id"],
        postgresql_where=sa.text("schedule_id IS NOT NULL AND status IN ('pending', 'running', 'waiting')"),
    )


def downgrade() -> None:
    op.drop_index("executions_schedule_active_idx", table_name="executions")
    op.drop_column("executions", "scheduled_for")
    op.drop_column("executions", "schedule_id")
    op.drop_index("schedules_buffered_idx", table_name="schedules")
    op.drop_index("schedules_due_idx", table_name="schedules")
    op.drop_table("schedules")
