"""A task whose schedule is declared in code; ZART_TEST_SCHEDULE picks the declaration, so a test can start
workers that see it added, changed and removed. Imported only by the workers of the reconciliation test."""

from __future__ import annotations

import os

import zart

VARIANTS = {
    "every-2s": zart.every(2, id="declared-report", overlap="allow_all"),
    "hourly-berlin": zart.cron("0 * * * *", tz="Europe/Berlin", id="declared-report", jitter=5),
    "removed": None,
}


@zart.task("t.declared", schedule=VARIANTS[os.environ.get("ZART_TEST_SCHEDULE", "removed")])
def declared(ctx: zart.Context, data: dict) -> dict:
    return {"fired": ctx.execution_id}
