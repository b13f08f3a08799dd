"""Operator controls: run start times, pause-rule release tracking, the admin audit trail; task timeouts.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.add_column("runs", sa.Column("started_at", TS))
    op.add_column("pause_rules", sa.Column("released_at", TS))
    op.add_column("task_catalog", sa.Column("timeout_seconds", sa.Float()))
    op.create_table(
        "admin_actions",
        sa.Column("id", sa.BigInteger(), primary_key=True, autoincrement=True),
        sa.Column("execution_id", sa.Text()),
        sa.Column("rule_id", sa.Text()),
        sa.Column("action", sa.Text(), nullable=False),
        sa.Column("triggered_by", sa.Text(), nullable=False),
        sa.Column("details", JSONB()),
        sa.Column("created_at", TS, nullable=False),
    )
    op.create_index("admin_actions_execution_idx", "admin_actions", ["execution_id"])
    op.create_index(
        "executions_paused_idx",
        "executions",
        [sa.text("(waiting_for ->> 'rule')")],
        postgresql_where=sa.text("status = 'waiting' AND (waiting_for ->> 'kind') = 'pause'"),
    )


def downgrade() -> None:
    op.drop_index("executions_paused_idx", table_name="executions")
    op.drop_table("admin_actions")
    op.drop_column("task_catalog", "timeout_seconds")
    op.drop_column("pause_rules", "released_at")
    op.drop_column("runs", "started_at")
