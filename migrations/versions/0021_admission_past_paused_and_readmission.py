"""Admission looks past held executions a pause rule holds, and `cancel_newest` cancels only a newcomer.

An admission is refused as `queued` while a better-ranked held execution waits. One that an operator's pause rule
holds cannot start, and the hand-on and the sweeper pass it over too: counted as waiting, it kept every other
held execution of its limit from the free slot until its rule lifted. It no longer counts (its rule's lifting
rings it again).

Under `on_key_busy = cancel_newest` a busy key cancelled whichever execution was being admitted, so an older one
coming back from a park (a sleep, a retry's back-off, a lease taken back from a dead worker: each gives its slot
back) was cancelled in favour of the newcomer that took its slot meanwhile. Only an execution that has never
started is a newcomer now; one that has is held for its key, as under `wait`.

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-03
"""

from __future__ import annotations

from alembic import op

from migrations import load_revision

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None

CLAIM_SIGNATURE = "zart_flow_claim(text, text, text, double precision, boolean)"

QUEUED_BEHIND = """              AND (h.priority > e.priority
                   OR (h.priority = e.priority AND (h.created_at, h.id) < (e.created_at, e.id)))
"""
NOT_PAUSED = """              AND NOT EXISTS (
                   SELECT 1 FROM pause_rules r
                   WHERE r.resumed_at IS NULL AND (r.expires_at IS NULL OR r.expires_at > now())
                     AND r.step_pattern IS NULL
                     AND (r.applies_to_all OR ((r.execution_id IS NULL OR r.execution_id = h.id)
                                               AND (r.task IS NULL OR r.task = h.task))))
"""
CANCEL_ANY = "            IF l.key_strategy = 'cancel_newest' THEN\n"
CANCEL_NEWCOMER = "            IF l.key_strategy = 'cancel_newest' AND e.started_at IS NULL THEN\n"


def claim_function() -> str:
    previous: str = load_revision("0016_flow_slots_from_holders.py").CLAIM_FUNCTION
    assert previous.count(QUEUED_BEHIND) == 1 and previous.count(CANCEL_ANY) == 1
    return previous.replace(QUEUED_BEHIND, QUEUED_BEHIND + NOT_PAUSED).replace(CANCEL_ANY, CANCEL_NEWCOMER)


def _install(function: str) -> None:
    op.execute(function)
    # CREATE OR REPLACE drops the function's settings: it keeps generic plans (revision 0017)
    op.execute(f"ALTER FUNCTION {CLAIM_SIGNATURE} SET plan_cache_mode = force_generic_plan")


def upgrade() -> None:
    _install(claim_function())


def downgrade() -> None:
    _install(load_revision("0016_flow_slots_from_holders.py").CLAIM_FUNCTION)
