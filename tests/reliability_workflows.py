"""Workflows for the reliability suite: every body journals its start and end with a timestamp, so the
suite can prove afterwards that no body ran again once its checkpoint had been committed."""

from __future__ import annotations

import os
import random
import time

import zart


def _journal(journal: str, execution_id: str, step: str, phase: str) -> None:
    line = f"{execution_id} {step} {phase} {time.time():.6f} {os.getpid()}\n"
    fd = os.open(journal, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


def body(journal: str, execution_id: str, step: str, value: int) -> int:
    """A step body that takes a little time, so kills land inside bodies as well as between them."""
    _journal(journal, execution_id, step, "start")
    time.sleep(random.uniform(0.0, 0.08))
    _journal(journal, execution_id, step, "end")
    return value + 1


@zart.task("r.chaos")
def chaos(ctx: zart.Context, data: dict) -> dict:
    """Steps, a durable sleep, an event and a fan-out of two children."""
    j, me = data["journal"], ctx.execution_id
    a = ctx.step("a", body, j, me, "a", data["n"])
    b = ctx.step("b", body, j, me, "b", a)
    ctx.sleep("nap", data.get("nap", 0.5))
    event = ctx.wait_for_event("go")
    handles = [ctx.schedule(f"part-{i}", body, j, f"{me}~part-{i}", f"part-{i}", b + i) for i in range(2)]
    parts = ctx.wait_all(handles)
    c = ctx.step("c", body, j, me, "c", sum(parts) + event["k"])
    return {"result": c}


def expected_chaos_result(n: int, k: int) -> int:
    b = n + 2
    return (b + 1) + (b + 2) + k + 1


@zart.task("r.steps")
def steps(ctx: zart.Context, data: dict) -> dict:
    """A chain of short steps with small pauses between them, to be caught mid-run by a fault."""
    j, me = data["journal"], ctx.execution_id
    value = 0
    for i in range(data.get("steps", 6)):
        value = ctx.step(f"s{i}", body, j, me, f"s{i}", value)
        time.sleep(data.get("gap", 0.05))
    return {"value": value}


@zart.task("r.owner")
def owner(ctx: zart.Context, data: dict) -> dict:
    """Step `hold` blocks until released and returns the pid that ran it."""
    first = ctx.step("first", os.getpid)
    held = ctx.step("hold", wait_then_pid, data["release"])
    return {"first": first, "hold": held}


def wait_then_pid(release: str) -> int:
    deadline = time.monotonic() + 60
    while not os.path.exists(release) and time.monotonic() < deadline:
        time.sleep(0.02)
    return os.getpid()


def fails_until(journal: str, execution_id: str, step: str, flag: str) -> str:
    _journal(journal, execution_id, step, "start")
    if not os.path.exists(flag):
        raise RuntimeError("dependency unavailable")
    return "fixed"


@zart.task("a.dead-step")
def dead_step(ctx: zart.Context, data: dict) -> dict:
    """`b` fails until a flag file exists; its exhausted retries fail the execution."""
    j, me = data["journal"], ctx.execution_id
    a = ctx.step("a", body, j, me, "a", 0)
    b = ctx.step("b", fails_until, j, me, "b", data["flag"], retry=zart.RetryPolicy.fixed(max_retries=1, delay=0.1))
    c = ctx.step("c", body, j, me, "c", a)
    return {"a": a, "b": b, "c": c}


@zart.task("a.echo")
def echo(ctx: zart.Context, data: dict) -> dict:
    j, me = data["journal"], ctx.execution_id
    x = ctx.step("x", body, j, me, "x", data["value"])
    y = ctx.step("y", body, j, me, "y", x)
    z = ctx.step("z", body, j, me, "z", y)
    return {"x": x, "y": y, "z": z}
