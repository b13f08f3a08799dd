"""Room on a run's page for its final update: `runs` pages are filled to 80%, as `executions` pages are.

A run row is inserted when its execution is scheduled and rewritten once when it ends (status, output,
times). Packed full, its page has no room left by then, so the new version goes wherever the free space map
points: on a table with a million rows (or one that retention prunes) that is a cold page anywhere in the
table, read back, dirtied and written whole to the WAL after each checkpoint, about two pages per execution.
With room on the page the update stays there and is heap-only (only the primary key indexes `runs`). Pages
written before this migration keep their packing; new ones get the room.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-02
"""

from __future__ import annotations

from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE runs SET (fillfactor = 80)")


def downgrade() -> None:
    op.execute("ALTER TABLE runs RESET (fillfactor)")
