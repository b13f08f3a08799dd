"""The look after a refused admission waits for committing releases on an advisory lock, not on the holders' rows.

Revision 0018 made that look share-lock every holder of the limit, to wait for one whose finish was committing.
It also waited for every holder's step checkpoint in flight, and each of those checkpoints waited for the look's
locks in turn. Now a finish that may skip its hand-on holds a shared advisory lock of its limit from the moment
it looks for held executions until it commits, and the look first takes the same lock exclusively (flow.heads
with `wait_for_releases`): it waits for exactly the finishes that may not have seen the refusal, and for nothing
else. Steps and admissions never take it.

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-02
"""

from __future__ import annotations

from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None

# the advisory lock's first key (zart.store.flow.RELEASES_LOCK_CLASS); the second is hashtext(limit name)
BARRIER = "    PERFORM pg_advisory_xact_lock_shared(2053206644, hashtext(p_limit));\n"
HELD_FUNCTION = """
CREATE OR REPLACE FUNCTION zart_flow_held(p_limit text) RETURNS boolean LANGUAGE plpgsql VOLATILE AS $$
BEGIN
""" + BARRIER + """    RETURN EXISTS (SELECT 1 FROM executions h
                   WHERE h.flow_limit = p_limit AND h.status = 'pending' AND h.held_by IS NOT NULL);
END
$$
"""


def upgrade() -> None:
    op.execute(HELD_FUNCTION)


def downgrade() -> None:
    op.execute(HELD_FUNCTION.replace(BARRIER, ""))  # revision 0018's function
