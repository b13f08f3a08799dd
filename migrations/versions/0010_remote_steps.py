"""Remote steps: a step run by a team's own Celery worker, and the dispatch that is waiting for its result.

One row per step of a run, rewritten at each dispatch: `token` is the dispatch's fence (it is also the Celery
task id), so a result recorded for an earlier dispatch, or for a run that has moved on, matches nothing.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "remote_steps",
        sa.Column("execution_id", sa.Text(), nullable=False),
        sa.Column("run_index", sa.Integer(), nullable=False),
        sa.Column("step_name", sa.Text(), nullable=False),
        sa.Column("token", sa.Text(), nullable=False),
        sa.Column("task_name", sa.Text(), nullable=False),
        sa.Column("queue", sa.Text(), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("sends", sa.Integer(), nullable=False, server_default=sa.text("1")),
        sa.Column("losses", sa.Integer(), nullable=False, server_default=sa.text("0")),
        sa.Column("state", sa.Text(), nullable=False),
        sa.Column("worker", sa.Text()),
        sa.Column("error", JSONB()),
        sa.Column("dispatch_timeout", sa.Float(), nullable=False),
        sa.Column("attempt_started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("dispatched_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True)),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True)),
        sa.Column("finished_at", sa.DateTime(timezone=True)),
        sa.Column("alive_until", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "state IN ('sent', 'started', 'retry', 'succeeded', 'failed', 'closed', 'abandoned')",
            name="remote_steps_state_check",
        ),
        sa.PrimaryKeyConstraint("execution_id", "run_index", "step_name", name="remote_steps_pkey"),
        sa.UniqueConstraint("token", name="remote_steps_token_key"),
    )
    op.create_index(
        "remote_steps_in_flight_idx",
        "remote_steps",
        ["alive_until"],
        postgresql_where=sa.text("state IN ('sent', 'started', 'retry')"),
    )


def downgrade() -> None:
    op.drop_index("remote_steps_in_flight_idx", table_name="remote_steps")
    op.drop_table("remote_steps")
