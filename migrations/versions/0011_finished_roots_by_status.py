"""Retention finds finished top-level executions by status, then completion time.

Each final status has its own retention, so a batch asks for one status: with the status leading the index,
its first entry is the oldest root of that status, instead of a walk past every older root of the others.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

FINISHED_ROOTS = "parent_id IS NULL AND status IN ('completed', 'failed', 'cancelled')"


def upgrade() -> None:
    op.create_index(
        "executions_finished_root_status_idx",
        "executions",
        ["status", "completed_at"],
        postgresql_where=sa.text(FINISHED_ROOTS),
    )
    op.drop_index("executions_finished_root_idx", table_name="executions")


def downgrade() -> None:
    op.create_index(
        "executions_finished_root_idx", "executions", ["completed_at"], postgresql_where=sa.text(FINISHED_ROOTS)
    )
    op.drop_index("executions_finished_root_status_idx", table_name="executions")
