"""One sweep per interval for the whole fleet: the row that says when the last sweep began.

Every worker's sweeper wakes at its interval, but the duties are the fleet's, not the worker's: with many
workers sweeping, Postgres paid several transactions per worker per interval for work done once. A sweeper
now first takes the turn (one statement on this one row) and only the taker sweeps.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sweep_turns",
        sa.Column("id", sa.SmallInteger, primary_key=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("id = 1", name="sweep_turns_single_row"),
    )
    op.execute("INSERT INTO sweep_turns (id, started_at) VALUES (1, '-infinity')")


def downgrade() -> None:
    op.drop_table("sweep_turns")
