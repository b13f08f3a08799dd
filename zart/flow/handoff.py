"""Handing a freed slot (or a due token) on: ring the doorbells of the held executions that may start now.

Called after a commit by whoever freed capacity — the run that ends, an operator raising or resuming a limit
— and by the sweeper as the safety net. Each call is one query over the limits, never a scan of held rows.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Connection

from zart.store import flow

HEADS_PER_RELEASE = 50

Publish = Callable[[str, float | None], object]


def dispatch_held(
    conn: Connection,
    limits: list[str] | None,
    publish: Publish,
    max_delay: float,
    wait_for_releases: bool = False,
) -> list[str]:
    """Publish the held executions that may start now (a rate-limited head: when its token is due, if that is
    within `max_delay` seconds). `limits` None means every limit. `wait_for_releases` (after a refused admission,
    one limit): holders giving their slots back right now are waited for, not counted."""
    published = []
    for head in flow.heads(conn, limits, HEADS_PER_RELEASE, wait_for_releases):
        delay = float(head["delay"] or 0.0)
        if delay <= max_delay:
            publish(head["id"], delay or None)
            published.append(head["id"])
    return published
