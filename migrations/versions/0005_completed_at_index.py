"""An index on when executions finished, for "finished in the last hour" (the dashboard's throughput).

Partial (only finished rows), so active executions cost nothing; a finish already rewrites the row's status
index entry, so the extra entry adds little to the write.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

from __future__ import annotations

from alembic import op
from sqlalchemy import text

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "executions_completed_idx", "executions", ["completed_at"], postgresql_where=text("completed_at IS NOT NULL")
    )


def downgrade() -> None:
    op.drop_index("executions_completed_idx", table_name="executions")
