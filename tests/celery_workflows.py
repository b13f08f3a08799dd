"""Workflows whose steps are the legacy fleet's Celery tasks (tests.legacy.app), run by that fleet's workers."""

from __future__ import annotations

import os
from typing import Any

import zart
from tests.legacy import app as legacy
from tests.workflows import note
from zart import RetryPolicy


@zart.task("c.sequence")
def sequence(ctx: zart.Context, data: dict) -> dict:
    j = data["journal"]
    a = ctx.step("add", legacy.add, j, 1, 2)
    b = ctx.step("multiply", legacy.multiply.s(j, a, 10))
    return {"a": a, "b": b}


@zart.task("c.parallel")
def parallel(ctx: zart.Context, data: dict) -> list[Any]:
    handles = [ctx.schedule(f"square-{n}", legacy.square, data["journal"], n) for n in range(data["n"])]
    return ctx.wait_all(handles)


@zart.task("c.blocking")
def blocking(ctx: zart.Context, data: dict) -> dict:
    j = data["journal"]
    value = ctx.step("wait", legacy.wait_for_file, j, "wait", data["release"], "released")
    after = ctx.step("after", legacy.add, j, 2, 2)
    return {"value": value, "after": after}


@zart.task("c.blocking-beside-another")
def blocking_beside_another(ctx: zart.Context, data: dict) -> list[Any]:
    j = data["journal"]
    wait = ctx.schedule("wait", legacy.wait_for_file, j, "wait", data["release"], "released")
    beside = ctx.schedule("beside", legacy.add, j, 2, 2)
    return ctx.wait_all([wait, beside])


@zart.task("c.small-and-large-results")
def small_and_large_results(ctx: zart.Context, data: dict) -> list[Any]:
    j, release = data["journal"], data["release"]
    small = ctx.step("small", legacy.wait_for_file, j, "small", release, "s")
    large = ctx.step("large", legacy.wait_for_file, j, "large", release, "x" * data["size"])
    return [small, len(large), large == "x" * data["size"]]


@zart.task("c.retry-twice")
def retry_twice(ctx: zart.Context, data: dict) -> str:
    return ctx.step("retry", legacy.retry_twice, data["journal"])


@zart.task("c.autoretry")
def autoretry(ctx: zart.Context, data: dict) -> str:
    return ctx.step("autoretry", legacy.autoretry, data["journal"])


@zart.task("c.always-fails")
def always_fails(ctx: zart.Context, data: dict) -> str:
    ctx.step("charge", legacy.always_fails, data["journal"], retry=RetryPolicy.fixed(2, 0.2))
    return "unreachable"


@zart.task("c.unserved")
def unserved(ctx: zart.Context, data: dict) -> str:
    return ctx.step("nowhere", legacy.unserved, data["journal"], dispatch_timeout=data["dispatch_timeout"])


@zart.task("c.inline")
def inline(ctx: zart.Context, data: dict) -> int:
    return ctx.step("local", legacy.add, data["journal"], 20, 22, inline=True)


@zart.task("c.bad-arguments")
def bad_arguments(ctx: zart.Context, data: dict) -> int:
    return ctx.step("bad", legacy.add, data["journal"], {1, 2}, 3)


@zart.task("c.with-callbacks")
def with_callbacks(ctx: zart.Context, data: dict) -> int:
    j = data["journal"]
    return ctx.step("linked", legacy.add.s(j, 1, 1).set(link=legacy.square.s(j)))


@zart.task("c.bad-queue")
def bad_queue(ctx: zart.Context, data: dict) -> int:
    return ctx.step("bad-queue", legacy.add.s(data["journal"], 1, 1).set(queue="no spaces allowed"))


def pool_name() -> str:
    """Which worker pool ran the step (its TEST_POOL variable)."""
    return os.environ.get("TEST_POOL", "?")


@zart.task("c.etl", queue="etl")
def etl(ctx: zart.Context, data: dict) -> str:
    return str(ctx.step("where", pool_name))


@zart.task("c.default-pool")
def default_pool(ctx: zart.Context, data: dict) -> str:
    return str(ctx.step("where", pool_name))


@zart.task("c.etl-function-child", queue="etl")
def etl_function_child(ctx: zart.Context, data: dict) -> list[Any]:
    """A workflow on its own queue whose child runs a plain function of the workflow's module."""
    return ctx.wait_all([ctx.schedule("child", pool_name)])


@zart.task("c.silent-not-awaited")
def silent_not_awaited(ctx: zart.Context, data: dict) -> str:
    """A step scheduled and never awaited goes silent (nobody serves its queue) while the run awaits another."""
    j = data["journal"]
    note(j, "replay")  # outside any step: once per replay
    ctx.schedule("lost", legacy.unserved, j, dispatch_timeout=1.0)
    return ctx.step("wait", legacy.wait_for_file, j, "wait", data["release"], "released")


@zart.task("c.timeout-race")
def timeout_race(ctx: zart.Context, data: dict) -> object:
    return ctx.step("nowhere", legacy.unserved, data["journal"], timeout=0.5)


@zart.task("c.rate-limited")
def rate_limited(ctx: zart.Context, data: dict) -> object:
    j = data["journal"]
    handles = [ctx.schedule(f"r-{n}", legacy.rate_limited, j, n, dispatch_timeout=2.0) for n in range(2)]
    return ctx.wait_all(handles)


@zart.task("c.unstorable-result")
def unstorable_result(ctx: zart.Context, data: dict) -> object:
    return ctx.step("returns", legacy.returns, data["journal"], data["kind"])


@zart.task("c.refuses")
def refuses(ctx: zart.Context, data: dict) -> object:
    return ctx.step("refuses", legacy.refuses, data["journal"], data["how"], dispatch_timeout=data["dispatch_timeout"])


@zart.task("c.hands-over")
def hands_over(ctx: zart.Context, data: dict) -> object:
    return ctx.step("sum", legacy.hands_over, data["journal"], 2, 3)


@zart.task("c.reject-when-released")
def reject_when_released(ctx: zart.Context, data: dict) -> object:
    return ctx.step("refuses", legacy.reject_when_released, data["journal"], data["release"])


@zart.task("c.retries-off-integrated")
def retries_off_integrated(ctx: zart.Context, data: dict) -> object:
    return ctx.step("flaky", legacy.retries_off_integrated, data["journal"], data["release"], data["how"],
                    retry=RetryPolicy.none(), dispatch_timeout=120.0)


@zart.task("c.retry-later")
def retry_later(ctx: zart.Context, data: dict) -> object:
    return ctx.step("later", legacy.retry_later, data["journal"], data["countdown"], dispatch_timeout=60.0)


@zart.task("c.hops-away")
def hops_away(ctx: zart.Context, data: dict) -> object:
    return ctx.step("hops", legacy.hops_away, data["journal"], dispatch_timeout=2.0, retry=RetryPolicy.none())


@zart.task("c.add-within")
def add_within(ctx: zart.Context, data: dict) -> int:
    return ctx.step("add", legacy.add, data["journal"], 1, 2, dispatch_timeout=data["dispatch_timeout"])


@zart.task("c.add-bounded", timeout=5.0)
def add_bounded(ctx: zart.Context, data: dict) -> int:
    return ctx.step("add", legacy.add, data["journal"], 1, 2, dispatch_timeout=300.0)


@zart.task("c.add-later")
def add_later(ctx: zart.Context, data: dict) -> int:
    later = legacy.add.s(data["journal"], 1, 2).set(countdown=data["countdown"])
    return ctx.step("add", later, dispatch_timeout=data["dispatch_timeout"])
