"""The sets of schedules each module's code has declared, in the order they were first seen.

A worker reconciles the schedules its code declares when it starts. In a rolling deploy an older worker can
start after a newer one; recording each module's declaration set (a fingerprint of the code's version, the
module's source and its declarations) with a generation taken from one counter under the reconciliation lock
lets it tell that its set was superseded, without comparing the clocks of different hosts.

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "schedule_declarations",
        sa.Column("module", sa.Text(), nullable=False),
        sa.Column("fingerprint", sa.Text(), nullable=False),
        sa.Column("generation", sa.BigInteger(), nullable=False),
        sa.Column("code_version", sa.Text()),
        sa.Column("first_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("module", "fingerprint", name="schedule_declarations_pkey"),
    )
    op.create_index("schedule_declarations_latest_idx", "schedule_declarations", ["module", "generation"])


def downgrade() -> None:
    op.drop_index("schedule_declarations_latest_idx", table_name="schedule_declarations")
    op.drop_table("schedule_declarations")
