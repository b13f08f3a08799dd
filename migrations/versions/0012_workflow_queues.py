"""Workflows routed to queues: a task's queue in the catalog, and each execution's queue, set when it is created.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("task_catalog", sa.Column("queue", sa.Text()))
    op.add_column("executions", sa.Column("queue", sa.Text()))


def downgrade() -> None:
    op.drop_column("executions", "queue")
    op.drop_column("task_catalog", "queue")
