"""A task whose queue and limit ZART_TEST_CATALOG picks ("old" or "new"), so a test can start workers of two
releases side by side. Imported only by the workers of the rolling-deploy catalog test."""

from __future__ import annotations

import os

import zart

RELEASES = {"old": ("catalog-old", 1), "new": ("catalog-new", 3)}
QUEUE, CONCURRENCY = RELEASES[os.environ.get("ZART_TEST_CATALOG", "old")]


@zart.task("t.catalogued", queue=QUEUE, concurrency=CONCURRENCY)
def catalogued(ctx: zart.Context, data: dict) -> dict:
    return {"ran": ctx.execution_id}
