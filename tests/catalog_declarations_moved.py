"""The task of tests.catalog_declarations moved to a module of its own, as a release that renamed the module
declaring it has it (its workers no longer import the old module), with another queue and limit."""

from __future__ import annotations

import zart


@zart.task("t.catalogued", queue="catalog-moved", concurrency=5)
def catalogued(ctx: zart.Context, data: dict) -> dict:
    return {"ran": ctx.execution_id}
