"""Ready executions without the held ones: workers that take ready executions themselves look here.

Rows held by a flow-control limit stay pending, sometimes by the thousand; the pending index would make every
look for the next ready execution walk past all of them. This index leaves them out. Its columns are ones
already indexed (a step's checkpoint writes none of them), so checkpoint updates stay heap-only.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "executions_ready_idx",
        "executions",
        ["dispatched_at"],
        postgresql_where=sa.text("status = 'pending' AND held_by IS NULL"),
    )


def downgrade() -> None:
    op.drop_index("executions_ready_idx", table_name="executions")
