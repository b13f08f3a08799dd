"""What a limited execution's run paid that an unlimited one did not: a look that walked past every limited ready
row, and an admission planned afresh on every call.

A self-claiming worker's look takes the oldest ready execution under no limit first. The ready index holds the
limited ready rows too, so under a backlog of limited executions that first arm walked the whole backlog (and read
each row from the heap to see its limit) before the second arm took one: about a millisecond a look with a
thousand waiting. A partial index of the ready rows under no limit ends that walk; the ready index stays for the
second arm and the sweeper, which take both kinds.

Inside `zart_flow_claim`, the look for a better-ranked held execution names the limit's key settings; a plan made
for their values drops a branch, so Postgres judged it cheaper than the generic plan and planned the statement
again on every admission (about 0.4 ms each). Every statement in the function reads a few rows by an index whatever
the values are, so the function keeps generic plans.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

READY_UNLIMITED_INDEX = "executions_ready_unlimited_idx"
CLAIM_FUNCTION = "zart_flow_claim(text, text, text, double precision, boolean)"


def upgrade() -> None:
    op.create_index(
        READY_UNLIMITED_INDEX,
        "executions",
        ["dispatched_at"],
        postgresql_where=sa.text("status = 'pending' AND held_by IS NULL AND flow_limit IS NULL"),
    )
    op.execute(f"ALTER FUNCTION {CLAIM_FUNCTION} SET plan_cache_mode = force_generic_plan")


def downgrade() -> None:
    op.execute(f"ALTER FUNCTION {CLAIM_FUNCTION} RESET plan_cache_mode")
    op.drop_index(READY_UNLIMITED_INDEX, table_name="executions")
