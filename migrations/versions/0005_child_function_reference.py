"""A function child's reference in a column of its own, written once when its parent schedules it.

The reference decides what a worker calls. It used to live in the child's input, which an operator's restart
may replace; a column that no API writes keeps it where only the parent's code put it.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("executions", sa.Column("function_ref", sa.Text()))
    # children scheduled before this revision: their first run's input is what the parent's code wrote
    op.execute(
        """
        UPDATE executions e SET function_ref = r.input ->> 'function'
        FROM runs r
        WHERE e.task = 'zart.child-function' AND r.execution_id = e.id AND r.run_index = 0
        """
    )


def downgrade() -> None:
    op.drop_column("executions", "function_ref")
