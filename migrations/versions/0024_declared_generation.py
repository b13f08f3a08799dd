"""The generation of the declaration set that last wrote each task's catalog entry and each limit declared in code.

A release can move a task (or a limit) to another module: no newer set of the old module is ever recorded, since
the new workers no longer import it, so an old worker restarting during the deploy finds its set of the old
module still the latest. Each entry now keeps the generation of the set that wrote it, and a set of an older
generation leaves it alone.

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0024"
down_revision = "0023"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("task_catalog", sa.Column("declared_generation", sa.BigInteger()))
    op.add_column("flow_limits", sa.Column("declared_generation", sa.BigInteger()))


def downgrade() -> None:
    op.drop_column("flow_limits", "declared_generation")
    op.drop_column("task_catalog", "declared_generation")
