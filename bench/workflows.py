"""The zart workflows the benchmarks run in a real `zart worker` (ZART_IMPORTS=bench.workflows).

Steps are trivial on purpose, so what is measured is zart's own cost. Steps that mark a moment return
`time.time()`, which the benchmark reads back from the checkpoint (same machine, same clock).
"""

from __future__ import annotations

import time
from typing import Any

import zart
from zart.dispatch.worker import default_concurrency

STEPS = "bench.steps"
FIRST_STEP = "bench.first-step"
EVENT = "bench.event"
SLEEP = "bench.sleep"
EVENT_NAME = "go"
SLEEP_SECONDS = 1.0


def trivial(i: int) -> int:
    return i


def clock() -> float:
    return time.time()


@zart.task(STEPS)
def steps(ctx: zart.Context, data: dict[str, Any]) -> int:
    """`data["n"]` trivial steps in a row."""
    for i in range(int(data["n"])):
        ctx.step(f"s{i}", trivial, i)
    return int(data["n"])


@zart.task(FIRST_STEP)
def first_step(ctx: zart.Context, data: dict[str, Any]) -> float:
    """One step that records when it started: schedule → first step latency."""
    return float(ctx.step("first", clock))


@zart.task(EVENT)
def event(ctx: zart.Context, data: dict[str, Any]) -> float:
    """Parks on an event, then records when it resumed: event → resume latency."""
    ctx.wait_for_event(EVENT_NAME, timeout=600)
    return float(ctx.step("resumed", clock))


@zart.task(SLEEP)
def sleep(ctx: zart.Context, data: dict[str, Any]) -> float:
    """A durable one-second sleep, then a step that records when it woke: wake-up lateness."""
    ctx.sleep("nap", SLEEP_SECONDS)
    return float(ctx.step("woke", clock))


LIMITED_STEPS = "bench.limited-steps"
HANDOFF = "bench.handoff"
LIMITED_CONCURRENCY = 2 * default_concurrency()  # twice a default worker's processes


@zart.task(LIMITED_STEPS, concurrency=LIMITED_CONCURRENCY)
def limited_steps(ctx: zart.Context, data: dict[str, Any]) -> int:
    """`bench.steps` under a global concurrency limit of twice the worker's processes: what a limit costs."""
    return steps(ctx, data)


@zart.task(HANDOFF, concurrency=1)
def handoff(ctx: zart.Context, data: dict[str, Any]) -> float:
    """One at a time across the fleet: a step records when it started, so the gap after the previous one's
    completion is the time a freed slot takes to start the next held execution."""
    return float(ctx.step("first", clock))


REMOTE_STEPS = "bench.remote-steps"


@zart.task(REMOTE_STEPS)
def remote_steps(ctx: zart.Context, data: dict[str, Any]) -> int:
    """`data["n"]` remote steps in a row, each the fleet's trivial Celery task (bench.remote_app)."""
    from bench.remote_app import echo

    total = 0
    for i in range(int(data["n"])):
        total += ctx.step(f"r{i}", echo, i, data.get("counter_key"))
    return total
