"""A limit's slots are counted from the executions holding them, not kept in a counter on the limit's row.

With a counter, every finish of a limited execution updated the limit's one row and kept it locked until its
commit reached the disk, so admissions and the other finishes of that limit queued behind each fsync, one at a
time. Now a holder is an execution with `flow_holds` set (a small partial index of the running holders), the
trigger that gives a slot back only clears that flag on the holder's own row, and admission counts the holders
(of the limit, of the key) while it holds the limit's row. Admissions still take turns on that row, but only
with each other, and their commits do not wait for the disk; finishes touch nothing shared.

Nothing is lost by admitting on a count: a holder whose finish has not committed yet is still counted (the
count is never too low, so never more than the limit run), and one refused meanwhile looks for a free slot
again after its own commit, as the finishing worker does after its own, so whichever commits second sees the
other and starts the held execution.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from migrations import load_revision

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

HOLDERS_INDEX = "executions_flow_holders_idx"

RELEASE_FUNCTION = """
CREATE OR REPLACE FUNCTION zart_flow_release() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.flow_holds := false;
    RETURN NEW;
END
$$
"""

# Verdicts: 'claimed' (running, holding a slot), 'cancel' (claimed without a slot, for the caller to finish
# as cancelled: the key was busy and its strategy cancels the newest), 'held' (left pending, `held_by` says
# why; `retry_in` is when a rate token is due). No row: not claimable (a duplicate or stale doorbell).
CLAIM_FUNCTION = """
CREATE OR REPLACE FUNCTION zart_flow_claim(
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
        -- admissions of a limit take turns here; each count below is a new snapshot, taken with the row held,
        -- so it sees every admission before this one (a finish never waits for this row)
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
              AND (h.flow_key IS NULL OR l.key_concurrency IS NULL OR (
                   SELECT count(*) FROM executions k
                   WHERE k.flow_limit = l.name AND k.flow_key = h.flow_key AND k.flow_holds) < l.key_concurrency))
        THEN
            v_reason := 'queued';
        ELSIF l.concurrency IS NOT NULL AND (
            SELECT count(*) FROM executions r WHERE r.flow_limit = l.name AND r.flow_holds) >= l.concurrency THEN
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
        IF v_reason IS NULL AND e.flow_key IS NOT NULL AND l.key_concurrency IS NOT NULL AND (
            SELECT count(*) FROM executions k
            WHERE k.flow_limit = l.name AND k.flow_key = e.flow_key AND k.flow_holds) >= l.key_concurrency THEN
            IF l.key_strategy = 'cancel_newest' THEN
                v_verdict := 'cancel';
            ELSE
                v_reason := 'key';
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
        IF v_verdict = 'claimed' AND l.rate IS NOT NULL THEN
            UPDATE flow_limits f SET tokens = v_tokens - 1, refilled_at = v_now WHERE f.name = l.name;
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
    op.create_index(HOLDERS_INDEX, "executions", ["flow_limit", "flow_key"], postgresql_where=sa.text("flow_holds"))
    op.execute(RELEASE_FUNCTION)
    op.execute(CLAIM_FUNCTION)
    op.drop_column("flow_limits", "running")
    op.drop_table("flow_keys")


def downgrade() -> None:
    previous = load_revision("0013_flow_control.py")  # whose functions kept the counters
    op.create_table(
        "flow_keys",
        sa.Column("limit_name", sa.Text(), nullable=False),
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("running", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("limit_name", "key", name="flow_keys_pkey"),
    )
    op.add_column("flow_limits", sa.Column("running", sa.Integer(), nullable=False, server_default=sa.text("0")))
    op.execute(
        "UPDATE flow_limits l SET running = (SELECT count(*) FROM executions e "
        "WHERE e.flow_limit = l.name AND e.flow_holds)"
    )
    op.execute(
        "INSERT INTO flow_keys (limit_name, key, running) SELECT flow_limit, flow_key, count(*) FROM executions "
        "WHERE flow_holds AND flow_key IS NOT NULL GROUP BY flow_limit, flow_key"
    )
    op.execute(previous.RELEASE_FUNCTION.replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION", 1))
    op.execute(previous.CLAIM_FUNCTION.replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION", 1))
    op.drop_index(HOLDERS_INDEX, table_name="executions")
