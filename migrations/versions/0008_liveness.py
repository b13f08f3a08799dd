"""Liveness: a recovery count per run, and indexes so every sweep reads only non-terminal rows.

`recoveries` counts how often the current run was taken back from a dead owner without a new checkpoint;
past the configured limit the execution fails instead of looping. The active-status index serves the lease
recovery and the stranded check; the deadline index serves the overdue sweep. Neither covers a column the
per-step fence writes (`lease_expires_at`), so step checkpoints stay HOT updates.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

ACTIVE = "status IN ('pending', 'running', 'waiting')"


def upgrade() -> None:
    op.add_column("executions", sa.Column("recoveries", sa.Integer(), nullable=False, server_default=sa.text("0")))
    op.create_index("executions_active_idx", "executions", ["status"], postgresql_where=sa.text(ACTIVE))
    op.create_index(
        "executions_deadline_idx",
        "executions",
        ["deadline_at"],
        postgresql_where=sa.text(f"{ACTIVE} AND deadline_at IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("executions_deadline_idx", table_name="executions")
    op.drop_index("executions_active_idx", table_name="executions")
    op.drop_column("executions", "recoveries")
