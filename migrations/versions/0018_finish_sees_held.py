"""A finish under a limit says whether any execution of its limit is held, so the worker hands its slot on only
when one is.

Every run under a limit used to end with a look for held executions after its finish committed (a round trip the
unlimited run does not make), though most limits hold nothing most of the time. The finish now asks in its own
statement, once its row has given the slot back: `zart_flow_held` is volatile, so its query takes a snapshot of
its own at that moment and sees every held execution whose admission committed before. An admission refused later
than that, on a count that still saw this holder, looks for a free slot after its own commit, and that look waits
for a holder whose row is being changed (flow.heads with `wait_for_releases`), so it sees this slot freed: one of
the two always starts the held execution.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-02
"""

from __future__ import annotations

from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None

HELD_FUNCTION = """
CREATE OR REPLACE FUNCTION zart_flow_held(p_limit text) RETURNS boolean LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    RETURN EXISTS (SELECT 1 FROM executions h
                   WHERE h.flow_limit = p_limit AND h.status = 'pending' AND h.held_by IS NOT NULL);
END
$$
"""


def upgrade() -> None:
    op.execute(HELD_FUNCTION)


def downgrade() -> None:
    op.execute("DROP FUNCTION zart_flow_held(text)")
