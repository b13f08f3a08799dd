"""Flow control: limits (global and per-key concurrency, token-bucket rates, pause), priority, deduplication.

A limited execution is admitted by `zart_flow_claim`, one statement that locks the execution, then its limit
row, then its key's counter, decides, and either claims it (taking a slot and a token) or leaves it pending
and marked as held. A slot is given back by a trigger the moment its holder stops running, whatever the path
(finish, park, cancel, lease recovered by the sweeper), so no slot outlives its lease.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB  # noqa: F401

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

RELEASE_FUNCTION = """
CREATE FUNCTION zart_flow_release() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE flow_limits SET running = greatest(running - 1, 0) WHERE name = OLD.flow_limit;
    IF OLD.flow_key IS NOT NULL THEN
        UPDATE flow_keys SET running = running - 1 WHERE limit_name = OLD.flow_limit AND key = OLD.flow_key;
        DELETE FROM flow_keys WHERE limit_name = OLD.flow_limit AND key = OLD.flow_key AND running <= 0;
    END IF;
    NEW.flow_holds := false;
    RETURN NEW;
END
$$
"""

# Verdicts: 'claimed' (running, holding a slot), 'cancel' (claimed without a slot, for the caller to finish
# as cancelled: the key was busy and its strategy cancels the newest), 'held' (left pending, `held_by` says
# why; `retry_in` is when a rate token is due). No row: not claimable (a duplicate or stale doorbell).
CLAIM_FUNCTION = """
CREATE FUNCTION zart_flow_claim(
    p_id text, p_token text, p_worker text, p_lease double precision, p_paused boolean)
RETURNS TABLE (verdict text, held_reason text, retry_in double precision, limit_name text, rated boolean,
               id text, task text, input jsonb, function_ref text, run_index integer, attempt integer,
               recoveries integer, deadline_at timestamptz, parent_id text, trace_context jsonb)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    e executions%ROWTYPE;
    l flow_limits%ROWTYPE;
    v_now timestamptz;
    v_reason text;
    v_tokens double precision;
    v_key_running integer;
    v_verdict text := 'claimed';
    v_retry double precision;
BEGIN
    SELECT * INTO e FROM executions x WHERE x.id = p_id FOR UPDATE;
    IF NOT FOUND OR NOT (
           (e.status = 'pending' AND (e.wake_at IS NULL OR e.wake_at <= now()))
        OR (e.status = 'waiting' AND e.wake_at <= now())
        OR (e.status = 'running' AND e.lease_expires_at < now())) OR p_paused THEN
        RETURN;
    END IF;
    IF NOT e.flow_holds THEN
        SELECT * INTO l FROM flow_limits f WHERE f.name = e.flow_limit FOR UPDATE;
    END IF;
    -- read the clock only once the limit row is ours: a clock read before waiting for the lock would be older
    -- than the holder's refill time, and writing it back would turn time back (and credit tokens twice)
    v_now := greatest(clock_timestamp(), l.refilled_at);
    IF NOT e.flow_holds AND l.name IS NOT NULL THEN
        IF l.paused THEN
            v_reason := 'paused';
        ELSIF EXISTS (
            SELECT 1 FROM executions h
            WHERE h.flow_limit = l.name AND h.status = 'pending' AND h.held_by IS NOT NULL AND h.id <> e.id
              AND (h.wake_at IS NULL OR h.wake_at <= now())
              AND (h.priority > e.priority
                   OR (h.priority = e.priority AND (h.created_at, h.id) < (e.created_at, e.id)))
              AND (h.flow_key IS NULL OR l.key_concurrency IS NULL OR NOT EXISTS (
                   SELECT 1 FROM flow_keys k
                   WHERE k.limit_name = l.name AND k.key = h.flow_key AND k.running >= l.key_concurrency))) THEN
            v_reason := 'queued';
        ELSIF l.concurrency IS NOT NULL AND l.running >= l.concurrency THEN
            v_reason := 'concurrency';
        END IF;
        IF v_reason IS NULL AND l.rate IS NOT NULL THEN
            v_tokens := least(l.burst::double precision, coalesce(l.tokens, l.burst)
                        + greatest(EXTRACT(EPOCH FROM v_now - coalesce(l.refilled_at, v_now)), 0)
                          * l.rate / l.period_seconds);
            IF v_tokens < 1 THEN
                v_reason := 'rate';
                v_retry := (1 - v_tokens) * l.period_seconds / l.rate;
            END IF;
        END IF;
        IF v_reason IS NULL AND e.flow_key IS NOT NULL AND l.key_concurrency IS NOT NULL THEN
            INSERT INTO flow_keys (limit_name, key, running) VALUES (l.name, e.flow_key, 0)
            ON CONFLICT DO NOTHING;
            SELECT k.running INTO v_key_running FROM flow_keys k
            WHERE k.limit_name = l.name AND k.key = e.flow_key FOR UPDATE;
            IF v_key_running >= l.key_concurrency THEN
                IF l.key_strategy = 'cancel_newest' THEN
                    v_verdict := 'cancel';
                ELSE
                    v_reason := 'key';
                END IF;
            END IF;
        END IF;
        IF v_reason IS NOT NULL THEN
            UPDATE executions x SET status = 'pending', held_by = v_reason, waiting_for = NULL,
                   waiting_for_event = NULL
            WHERE x.id = e.id AND (x.status <> 'pending' OR x.held_by IS DISTINCT FROM v_reason);
            RETURN QUERY SELECT 'held'::text, v_reason, v_retry, l.name, l.rate IS NOT NULL, e.id, e.task,
                                NULL::jsonb, NULL::text, e.run_index, e.attempt, e.recoveries, e.deadline_at,
                                e.parent_id, e.trace_context;
            RETURN;
        END IF;
        IF v_verdict = 'claimed' THEN
            UPDATE flow_limits f SET running = f.running + 1,
                   tokens = CASE WHEN l.rate IS NULL THEN f.tokens ELSE v_tokens - 1 END,
                   refilled_at = CASE WHEN l.rate IS NULL THEN f.refilled_at ELSE v_now END
            WHERE f.name = l.name;
            IF e.flow_key IS NOT NULL AND l.key_concurrency IS NOT NULL THEN
                UPDATE flow_keys k SET running = k.running + 1 WHERE k.limit_name = l.name AND k.key = e.flow_key;
            END IF;
        END IF;
    END IF;
    UPDATE executions x SET status = 'running', lease_token = p_token, leased_by = p_worker,
           lease_expires_at = now() + make_interval(secs => p_lease),
           -- taking over from an owner whose lease ran out is a recovery (the sweeper counts its own)
           recoveries = x.recoveries + CASE WHEN x.status = 'running' THEN 1 ELSE 0 END,
           started_at = coalesce(x.started_at, now()), updated_at = now(),
           waiting_for = NULL, waiting_for_event = NULL, current_step = NULL, held_by = NULL,
           flow_holds = x.flow_holds OR (v_verdict = 'claimed' AND l.name IS NOT NULL)
    WHERE x.id = e.id
    RETURNING x.* INTO e;
    RETURN QUERY SELECT v_verdict, NULL::text, NULL::double precision, e.flow_limit,
                        coalesce(l.rate IS NOT NULL, false), e.id, e.task, e.input, e.function_ref, e.run_index,
                        e.attempt, e.recoveries, e.deadline_at, e.parent_id, e.trace_context;
END
$$
"""


def upgrade() -> None:
    op.create_table(
        "flow_limits",
        sa.Column("name", sa.Text(), primary_key=True),
        sa.Column("concurrency", sa.Integer()),
        sa.Column("rate", sa.Integer()),
        sa.Column("period_seconds", sa.Float()),
        sa.Column("burst", sa.Integer()),
        sa.Column("key_path", sa.Text()),
        sa.Column("key_concurrency", sa.Integer()),
        sa.Column("key_strategy", sa.Text(), nullable=False, server_default=sa.text("'wait'")),
        sa.Column("paused", sa.Boolean(), nullable=False, server_default=sa.text("false")),
        sa.Column("running", sa.Integer(), nullable=False, server_default=sa.text("0")),
        sa.Column("tokens", sa.Float()),
        sa.Column("refilled_at", sa.DateTime(timezone=True)),
        sa.Column("source", sa.Text(), nullable=False, server_default=sa.text("'code'")),
        sa.Column("updated_by", sa.Text()),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "key_strategy IN ('wait', 'cancel_newest', 'cancel_in_progress')", name="flow_limits_key_strategy_check"
        ),
        sa.CheckConstraint("source IN ('code', 'runtime')", name="flow_limits_source_check"),
    )
    op.create_table(
        "flow_keys",
        sa.Column("limit_name", sa.Text(), nullable=False),
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("running", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("limit_name", "key", name="flow_keys_pkey"),
    )
    op.add_column("executions", sa.Column("flow_limit", sa.Text()))
    op.add_column("executions", sa.Column("flow_key", sa.Text()))
    op.add_column("executions", sa.Column("flow_holds", sa.Boolean(), nullable=False, server_default=sa.text("false")))
    op.add_column("executions", sa.Column("held_by", sa.Text()))
    op.add_column("executions", sa.Column("priority", sa.Integer(), nullable=False, server_default=sa.text("0")))
    op.add_column("executions", sa.Column("dedup_key", sa.Text()))
    op.add_column("task_catalog", sa.Column("flow_limit", sa.Text()))
    op.add_column("task_catalog", sa.Column("priority", sa.Integer()))
    op.create_index(
        "executions_held_idx",
        "executions",
        ["flow_limit", sa.text("priority DESC"), "created_at", "id"],
        postgresql_where=sa.text("status = 'pending' AND held_by IS NOT NULL"),
    )
    op.create_index(
        "executions_flow_key_idx",
        "executions",
        ["flow_limit", "flow_key", "created_at"],
        postgresql_where=sa.text("flow_key IS NOT NULL AND status IN ('pending', 'running', 'waiting')"),
    )
    op.create_index(
        "executions_dedup_key_idx",
        "executions",
        ["dedup_key"],
        unique=True,
        postgresql_where=sa.text("dedup_key IS NOT NULL AND status IN ('pending', 'running', 'waiting')"),
    )
    op.execute(RELEASE_FUNCTION)
    op.execute(
        "CREATE TRIGGER executions_flow_release BEFORE UPDATE OF status ON executions FOR EACH ROW "
        "WHEN (OLD.flow_holds AND NEW.status <> 'running') EXECUTE FUNCTION zart_flow_release()"
    )
    op.execute(CLAIM_FUNCTION)


def downgrade() -> None:
    op.execute("DROP FUNCTION zart_flow_claim(text, text, text, double precision, boolean)")
    op.execute("DROP TRIGGER executions_flow_release ON executions")
    op.execute("DROP FUNCTION zart_flow_release()")
    op.drop_index("executions_dedup_key_idx", table_name="executions")
    op.drop_index("executions_flow_key_idx", table_name="executions")
    op.drop_index("executions_held_idx", table_name="executions")
    op.drop_column("task_catalog", "priority")
    op.drop_column("task_catalog", "flow_limit")
    for column in ("dedup_key", "priority", "held_by", "flow_holds", "flow_key", "flow_limit"):
        op.drop_column("executions", column)
    op.drop_table("flow_keys")
    op.drop_table("flow_limits")
