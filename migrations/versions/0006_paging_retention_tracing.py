"""Keyset paging, retention and trace context.

- The list indexes end in `id` as well as `created_at`, so a cursor page (`(created_at, id) < (…)`) starts at
  its key and reads only its rows, however deep it is and however many executions share a timestamp.
- A partial index finds finished top-level executions by completion time: what retention deletes.
- `trace_context` keeps the W3C trace context of the schedule, so every run of an execution, on any worker and
  after any restart, joins the trace that scheduled it.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_KEYSET = {
    "executions_created_idx": ("executions_created_id_idx", ["created_at", "id"], ["created_at"]),
    "executions_status_created_idx": (
        "executions_status_created_id_idx",
        ["status", "created_at", "id"],
        ["status", "created_at"],
    ),
    "executions_task_created_idx": (
        "executions_task_created_id_idx",
        ["task", "created_at", "id"],
        ["task", "created_at"],
    ),
}

FINISHED_ROOTS = "parent_id IS NULL AND status IN ('completed', 'failed', 'cancelled')"


def upgrade() -> None:
    for old, (new, columns, _) in _KEYSET.items():
        op.create_index(new, "executions", columns)
        op.drop_index(old, table_name="executions")
    op.create_index(
        "executions_finished_root_idx", "executions", ["completed_at"], postgresql_where=sa.text(FINISHED_ROOTS)
    )
    op.add_column("executions", sa.Column("trace_context", JSONB(), nullable=True))


def downgrade() -> None:
    op.drop_column("executions", "trace_context")
    op.drop_index("executions_finished_root_idx", table_name="executions")
    for old, (new, _, columns) in _KEYSET.items():
        op.create_index(old, "executions", columns)
        op.drop_index(new, table_name="executions")
