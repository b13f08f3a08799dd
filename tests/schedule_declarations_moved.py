"""The schedule of tests.schedule_declarations moved to a module of its own, as a release that renamed the module
declaring it has it (its workers no longer import the old module). ZART_TEST_SCHEDULE=moved declares it."""

from __future__ import annotations

import os

import zart

MOVED = zart.cron("0 * * * *", tz="Europe/Berlin", id="declared-report")


@zart.task("t.declared-moved", schedule=MOVED if os.environ.get("ZART_TEST_SCHEDULE") == "moved" else None)
def declared_moved(ctx: zart.Context, data: dict) -> dict:
    return {"fired": ctx.execution_id}
