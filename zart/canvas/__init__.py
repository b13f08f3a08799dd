"""Run a Celery canvas (chain, group, chord, nested, with link / link_error) as one durable execution.

    execution_id = zart.canvas.apply(chord([add.s(1, 2), add.s(3, 4)], tsum.s()), countdown=60)

Postgres is the join: each task is a remote step on its own queue, a chord's body runs once with all of its
header's results, and a countdown or eta is a durable timer, not a Celery ETA. See `workflow` for the walk.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from zart.celery.canvas import CANVAS_TASK, CanvasError


def apply(
    canvas: Any,
    id: str | None = None,  # noqa: A002  (the contract's name for it)
    countdown: float | timedelta | None = None,
    eta: datetime | None = None,
) -> str:
    """Start `canvas` as an execution of `zart.canvas` and return its id; bad input raises CanvasError and
    starts nothing. `countdown` (seconds) or `eta` (aware datetime) hold the start durably in Postgres."""
    from zart.canvas.build import canvas_input
    from zart.client import schedule

    return schedule(CANVAS_TASK, canvas_input(canvas, countdown, eta), id=id)


__all__ = ["CANVAS_TASK", "CanvasError", "apply"]
