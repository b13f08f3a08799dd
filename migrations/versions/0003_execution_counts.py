"""Execution counts by task and status, kept exact by triggers, so stats and list totals stay fast at scale.

Each status change appends a delta row (no row locks, no contention between workers); the sweeper folds the
deltas into `execution_counts`. Counts plus pending deltas are exact in any transaction's snapshot.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

TRIGGER_FUNCTION = """
CREATE FUNCTION zart_count_executions() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO execution_count_deltas (task, status, delta) VALUES (NEW.task, NEW.status, 1);
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO execution_count_deltas (task, status, delta) VALUES (OLD.task, OLD.status, -1);
    ELSE
        INSERT INTO execution_count_deltas (task, status, delta)
        VALUES (OLD.task, OLD.status, -1), (NEW.task, NEW.status, 1);
    END IF;
    RETURN NULL;
END
$$
"""


def upgrade() -> None:
    op.create_table(
        "execution_counts",
        sa.Column("task", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("n", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("task", "status", name="execution_counts_pkey"),
    )
    op.create_table(
        "execution_count_deltas",
        sa.Column("task", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("delta", sa.Integer(), nullable=False),
    )
    op.execute("LOCK TABLE executions IN SHARE MODE")  # no status changes while the counts are seeded
    op.execute(
        "INSERT INTO execution_counts (task, status, n) SELECT task, status, count(*) FROM executions GROUP BY 1, 2"
    )
    op.execute(TRIGGER_FUNCTION)
    op.execute(
        "CREATE TRIGGER executions_counted_insert AFTER INSERT OR DELETE ON executions "
        "FOR EACH ROW EXECUTE FUNCTION zart_count_executions()"
    )
    op.execute(
        "CREATE TRIGGER executions_counted_update AFTER UPDATE OF status, task ON executions FOR EACH ROW "
        "WHEN (OLD.status IS DISTINCT FROM NEW.status OR OLD.task IS DISTINCT FROM NEW.task) "
        "EXECUTE FUNCTION zart_count_executions()"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER executions_counted_update ON executions")
    op.execute("DROP TRIGGER executions_counted_insert ON executions")
    op.execute("DROP FUNCTION zart_count_executions()")
    op.drop_table("execution_count_deltas")
    op.drop_table("execution_counts")
