"""The executions waiting for a worker that registers their task, by task.

A worker that takes an execution of a task it does not register gives it back, waiting for a worker that does
(`waiting_for = {"kind": "worker", "task": …}`), and looks at it again less often the longer it has waited. A
worker that starts with the task wakes those executions at once; this small partial index lets its start-up find
them without reading every waiting execution.

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None

INDEX = "executions_waiting_for_worker_idx"


def upgrade() -> None:
    op.create_index(
        INDEX,
        "executions",
        ["task"],
        postgresql_where=sa.text("status = 'waiting' AND (waiting_for ->> 'kind') = 'worker'"),
    )


def downgrade() -> None:
    op.drop_index(INDEX, table_name="executions")
