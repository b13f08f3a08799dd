"""Step checkpoints and attempts without foreign keys to executions.

Every step write is already fenced on the execution's lease in the same statement (the row must exist and
be held by the writer), so the foreign-key check only repeated that lookup and locked the parent row again
on the hottest path. Executions are never deleted by zart.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22
"""

from __future__ import annotations

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_constraint("steps_execution_fkey", "steps", type_="foreignkey")
    op.drop_constraint("step_attempts_execution_fkey", "step_attempts", type_="foreignkey")


def downgrade() -> None:
    op.create_foreign_key(
        "step_attempts_execution_fkey", "step_attempts", "executions", ["execution_id"], ["id"], ondelete="CASCADE"
    )
    op.create_foreign_key("steps_execution_fkey", "steps", "executions", ["execution_id"], ["id"], ondelete="CASCADE")
