"""Workflows the integration tests run in real worker processes.

Step bodies append a line to a journal file named in the input (`journal`), so a test can count, across
processes and crashes, how many times each body really ran.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Any

import zart
from zart import EventTimeout, RetryPolicy, StepFailed


def note(journal: str, entry: str) -> None:
    with open(journal, "a") as handle:
        handle.write(f"{entry} {os.getpid()} {time.time():.6f}\n")
        handle.flush()
        os.fsync(handle.fileno())


def entries(journal: str, entry: str) -> int:
    path = Path(journal)
    if not path.exists():
        return 0
    return sum(1 for line in path.read_text().splitlines() if line.split(" ")[0] == entry)


def journaled(journal: str, entry: str, value: Any) -> Any:
    note(journal, entry)
    return value


def wait_for_file(journal: str, entry: str, release: str, value: Any) -> Any:
    """Note the start, then block until the test creates `release` (or 60 s pass)."""
    note(journal, entry)
    deadline = time.monotonic() + 60
    while not os.path.exists(release) and time.monotonic() < deadline:
        time.sleep(0.02)
    note(journal, entry + "-end")
    return value


def flaky(journal: str, entry: str, failures: int) -> str:
    """Fail the first `failures` calls, then succeed."""
    note(journal, entry)
    if entries(journal, entry) <= failures:
        raise ConnectionError(f"flaky failure {entries(journal, entry)}")
    return "ok"


def always_fails(journal: str, entry: str) -> None:
    note(journal, entry)
    raise ValueError("card declined")


def blocking_child(journal: str, region: str, seconds: float) -> dict[str, Any]:
    started = time.time()
    note(journal, f"child-{region}")
    time.sleep(seconds)
    return {"region": region, "started": started, "ended": time.time()}


@zart.task("t.three-steps")
def three_steps(ctx: zart.Context, data: dict) -> dict:
    j = data["journal"]
    a = ctx.step("a", journaled, j, "a", 1)
    b = ctx.step("b", journaled, j, "b", a + 1)
    c = ctx.step("c", journaled, j, "c", b + 1)
    return {"sum": a + b + c}


@zart.task("t.blocking")
def blocking(ctx: zart.Context, data: dict) -> dict:
    """a, then b blocks until released, then c."""
    j = data["journal"]
    a = ctx.step("a", journaled, j, "a", "A")
    b = ctx.step("b", wait_for_file, j, "b", data["release"], "B")
    c = ctx.step("c", journaled, j, "c", "C")
    return {"out": a + b + c}


@zart.task("t.sleeper")
def sleeper(ctx: zart.Context, data: dict) -> dict:
    j = data["journal"]
    before = ctx.step("before", lambda: journaled(j, "before", time.time()))
    ctx.sleep("nap", data.get("seconds", 2))
    after = ctx.step("after", lambda: journaled(j, "after", time.time()))
    return {"slept": after - before}


@zart.task("t.event")
def event_waiter(ctx: zart.Context, data: dict) -> dict:
    j = data["journal"]
    ctx.step("prepare", journaled, j, "prepare", True)
    try:
        payload = ctx.wait_for_event("approval", timeout=data.get("timeout"))
    except EventTimeout:
        ctx.step("on-timeout", journaled, j, "on-timeout", True)
        return {"timed_out": True}
    ctx.step("after", journaled, j, "after", True)
    return {"payload": payload}


@zart.task("t.retry-fixed")
def retry_fixed(ctx: zart.Context, data: dict) -> dict:
    j = data["journal"]
    result = ctx.step("flaky", flaky, j, "flaky", 2, retry=RetryPolicy.fixed(max_retries=3, delay=0.2))
    return {"result": result}


@zart.task("t.retry-exponential")
def retry_exponential(ctx: zart.Context, data: dict) -> dict:
    j = data["journal"]
    policy = RetryPolicy.exponential(max_retries=2, base_delay=0.2, jitter=False)
    try:
        ctx.step("charge", always_fails, j, "charge", retry=policy)
    except StepFailed as failure:
        return {"failed_step": failure.step_name, "type": failure.error_type, "message": failure.error_message}
    return {"failed_step": None}


@zart.task("t.exec-retry", retry=RetryPolicy.fixed(max_retries=2, delay=0.1))
def exec_retry(ctx: zart.Context, data: dict) -> dict:
    j = data["journal"]
    ctx.step("first", journaled, j, "first", 1)
    note(j, f"handler-attempt-{ctx.attempt}")
    if ctx.attempt < 2:
        raise RuntimeError("transient handler failure")
    ctx.step("second", journaled, j, "second", 2)
    return {"attempt": ctx.attempt}


@zart.task("t.fails")
def fails(ctx: zart.Context, data: dict) -> dict:
    raise KeyError("missing-thing")


@zart.task("t.fan-out")
def fan_out(ctx: zart.Context, data: dict) -> dict:
    j = data["journal"]
    note(j, "parent-replay")
    handles = [ctx.schedule(f"child-{r}", blocking_child, j, r, data.get("seconds", 1.0)) for r in ("eu", "us")]
    results = ctx.wait_all(handles)
    note(j, "parent-resumed")
    ctx.step("summary", journaled, j, "summary", len(results))
    return {"regions": [r["region"] for r in results], "children": results}


@zart.task("t.nondeterministic")
def nondeterministic(ctx: zart.Context, data: dict) -> dict:
    j = data["journal"]
    note(j, "replay")
    first = "alpha" if entries(j, "replay") == 1 else "beta"
    ctx.step(first, journaled, j, first, 1)
    ctx.sleep("pause", 0.2)
    return {"first": first}


@zart.task("t.duplicate-names")
def duplicate_names(ctx: zart.Context, data: dict) -> dict:
    j = data["journal"]
    ctx.step("same", journaled, j, "same", 1)
    ctx.step("same", journaled, j, "same", 2)
    return {}


@zart.task("t.many-steps")
def many_steps(ctx: zart.Context, data: dict) -> dict:
    total = 0
    for i in range(data.get("steps", 50)):
        total += ctx.step(f"s-{i}", int, i)
    return {"total": total}


@zart.task(
    "t.typed",
    schema={"type": "object", "required": ["amount"], "properties": {"amount": {"type": "integer"}}},
)
def typed(ctx: zart.Context, data: dict) -> dict:
    """Declares an input schema, so the API and the CLI can refuse bad input before it is stored."""
    return {"amount": ctx.step("echo", int, data["amount"])}


@zart.task("t.long-step")
def long_step(ctx: zart.Context, data: dict) -> dict:
    """One step that outlives the lease several times over: only the heartbeat keeps it owned."""
    j = data["journal"]
    value = ctx.step("long", lambda: journaled(j, "long", time.sleep(data["seconds"]) or os.getpid()))
    return {"pid": value}


@zart.task("t.bounded", timeout=1.0)
def bounded(ctx: zart.Context, data: dict) -> dict:
    """Declares a one-second timeout, then takes longer: it must fail with ExecutionTimeout."""
    ctx.step("slow", time.sleep, 1.5)
    ctx.step("never", journaled, data["journal"], "never", True)
    return {}


@zart.task("t.schedules-foreign")
def schedules_foreign(ctx: zart.Context, data: dict) -> dict:
    """Names a standard-library function as a child: the parent must fail at once, and nothing runs."""
    handle = ctx.schedule("foreign", os.path.join, data["journal"], "never")
    return {"joined": ctx.wait_all([handle])}


def logged(journal: str, entry: str) -> str:
    """A step body that logs through the standard library, as user code does."""
    logging.getLogger("tests.user-code").warning("charging card for %s", entry)
    note(journal, entry)
    return entry


@zart.task("t.logs")
def logs_from_a_step(ctx: zart.Context, data: dict) -> str:
    return str(ctx.step("charge", logged, data["journal"], "charge"))


@zart.task("t.traced")
def traced(ctx: zart.Context, data: dict) -> str:
    """A step, a child, then a step that blocks until released (a worker can be killed inside it)."""
    j = data["journal"]
    ctx.step("first", journaled, j, "first", 1)
    ctx.wait_all([ctx.schedule("child", journaled, j, "child", 2)])
    ctx.step("held", wait_for_file, j, "held", data["release"], 3)
    return "done"


@zart.task("t.scheduled")
def scheduled(ctx: zart.Context, data: dict) -> dict:
    """A schedule's target: holds its worker slot for `seconds` (none by default)."""
    ctx.step("work", time.sleep, data.get("seconds", 0))
    return {"execution_id": ctx.execution_id}


@zart.task("t.named-event")
def named_event(ctx: zart.Context, data: dict) -> dict:
    """Waits for the event its input names (any name the rules allow, `/` included)."""
    return {"payload": ctx.wait_for_event(data["event"])}
