"""Holding a step on a pause rule: park only while the rule still holds.

The handler reads the active rules and then parks; an operator may resume the rule in between. The park is
therefore conditional on the rule in the same statement that writes it (see `executions.park_on_rule`), so
an execution is never left parked on a rule whose release has already run.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from zart.errors import LeaseLost
from zart.observability import hooks
from zart.store import executions

if TYPE_CHECKING:
    from zart.engine.run import ClaimedRun


def hold_on_rule(ctx: ClaimedRun, rule: dict[str, Any], step: str) -> None:
    """Suspend on `rule`; returns normally when the rule stopped holding meanwhile (the step may start)."""
    wake_at = rule["expires_at"]
    if isinstance(wake_at, str):
        wake_at = datetime.fromisoformat(wake_at)
    with ctx._store_errors():
        outcome = executions.park_on_rule(
            ctx._conn, ctx.execution_id, ctx._token, rule_id=rule["id"], wake_at=wake_at, step=step, attempt=ctx.attempt
        )
    if outcome == "lost":
        raise LeaseLost()
    if outcome == "lifted":
        ctx._pause_rules = None  # the cached list is stale: the next step reads the rules again
        return
    hooks.waiting({"kind": "pause", "rule": rule["id"], "step": step}, wake_at)
    ctx._suspend(wake_at)
