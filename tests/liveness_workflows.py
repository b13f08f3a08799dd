"""Workflows that once stranded or looped an execution: each must now end, or wait visibly for something."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

from celery import Celery

import zart
from zart import RetryPolicy, StepFailed


class Interrupt(BaseException):
    """What a library might raise that is not an Exception."""


def raise_base(kind: str) -> None:
    if kind == "custom":
        raise Interrupt("custom base exception")
    if kind == "exit":
        raise SystemExit(3)
    raise asyncio.CancelledError()


class UnprintableError(Exception):
    """An exception whose own __str__ fails, as a buggy library's may."""

    def __str__(self) -> str:
        raise RuntimeError("this exception cannot be printed")


def raise_unprintable() -> None:
    raise UnprintableError()


@zart.task("l.unprintable-step")
def unprintable_step(ctx: zart.Context, data: dict) -> dict:
    """A step body raising an exception whose str() fails; with one retry allowed."""
    try:
        ctx.step("boom", raise_unprintable, retry=RetryPolicy.fixed(max_retries=1, delay=0.05))
    except StepFailed as failure:
        return {"caught": failure.error_type, "message": failure.error_message}
    return {}


@zart.task("l.unprintable-handler")
def unprintable_handler(ctx: zart.Context, data: dict) -> dict:
    ctx.step("first", int, 1)
    raise_unprintable()
    return {}


def raise_unstorable_message(kind: str) -> None:
    """An error whose message holds what PostgreSQL cannot store (data read from a binary protocol, a file
    name decoded with surrogateescape)."""
    raise ValueError({"nul": "bad byte \x00 in frame", "surrogate": "no file /tmp/\udcff"}[kind])


@zart.task("l.unstorable-message-step")
def unstorable_message_step(ctx: zart.Context, data: dict) -> dict:
    try:
        ctx.step("boom", raise_unstorable_message, data["kind"], retry=RetryPolicy.fixed(max_retries=1, delay=0.05))
    except StepFailed as failure:
        return {"caught": failure.error_type, "message": failure.error_message}
    return {}


@zart.task("l.unstorable-message-handler")
def unstorable_message_handler(ctx: zart.Context, data: dict) -> dict:
    ctx.step("first", int, 1)
    raise_unstorable_message(data["kind"])
    return {}


def unstorable(kind: str) -> object:
    return {"nan": float("nan"), "inf": float("inf"), "nul": "a\x00b", "surrogate": "\ud800"}[kind]


@zart.task("l.base-step")
def base_step(ctx: zart.Context, data: dict) -> dict:
    """A step whose body raises a BaseException; with one retry allowed."""
    ctx.step("boom", raise_base, data["kind"], retry=RetryPolicy.fixed(max_retries=1, delay=0.05))
    return {"reached": True}


@zart.task("l.base-handler")
def base_handler(ctx: zart.Context, data: dict) -> dict:
    ctx.step("first", int, 1)
    raise_base(data["kind"])
    return {}


@zart.task("l.unstorable-step")
def unstorable_step(ctx: zart.Context, data: dict) -> dict:
    """The user swallows Exception around the step: only a clean StepFailed may reach them."""
    try:
        value = ctx.step("bad", unstorable, data["kind"])
    except StepFailed as failure:
        return {"caught": failure.error_type, "message": failure.error_message}
    except Exception as exc:  # noqa: BLE001  (what a careless handler does)
        return {"swallowed": type(exc).__name__}
    return {"value": value}


@zart.task("l.unstorable-output")
def unstorable_output(ctx: zart.Context, data: dict) -> object:
    ctx.step("first", int, 1)
    return {"out": unstorable(data["kind"])}


def prices_by_id() -> dict:
    """A result JSON cannot keep as it is: int keys become strings, a tuple becomes a list."""
    return {1: (9.5, "EUR")}


@zart.task("l.json-shaped-result")
def json_shaped_result(ctx: zart.Context, data: dict) -> dict:
    """What the handler sees of a step result before a replay (checkpointed) and after one (the nap)."""
    prices = ctx.step("prices", prices_by_id)
    before = ctx.step("seen", repr, prices)
    ctx.sleep("nap", 0.1)
    return {"before": before, "after": repr(prices)}


def note(journal: str, what: str) -> str:
    with open(journal, "a") as handle:
        handle.write(what + "\n")
    return what


def wait_for_file(path: str) -> bool:
    deadline = time.monotonic() + 30
    while not os.path.exists(path) and time.monotonic() < deadline:
        time.sleep(0.02)
    return True


@zart.task("l.alert-on-any-failure")
def alert_on_any_failure(ctx: zart.Context, data: dict) -> dict:
    """A handler that catches BaseException to send an alert as a step, then re-raises: it catches the signal
    that parks it (or that its lease is gone) too."""
    try:
        if "wait_for" in data:
            ctx.step("slow", wait_for_file, data["wait_for"])
        ctx.sleep("nap", 0.3)
        return {"done": True}
    except BaseException:
        ctx.step("alert", note, data["journal"], "alert")
        raise


@zart.task("l.cleanup-in-finally")
def cleanup_in_finally(ctx: zart.Context, data: dict) -> dict:
    """A cleanup step in a finally block: the wait's suspend signal unwinds through it on every park."""
    try:
        ctx.step("reserve", note, data["journal"], "reserve")
        payload = ctx.wait_for_event("approval")
    finally:
        ctx.step("release", note, data["journal"], "release")
    return {"payload": payload}


@zart.task("l.unstorable-name")
def unstorable_name(ctx: zart.Context, data: dict) -> dict:
    """A durable call named with what PostgreSQL cannot store as text (built in code: no input may hold it)."""
    name = {"nul": "charge\x00eu", "surrogate": "charge-\ud800"}[data["kind"]]
    if data["call"] == "sleep":
        ctx.sleep(name, 0.1)
    elif data["call"] == "event":
        ctx.wait_for_event(name, timeout=1)
    else:
        ctx.step(name, note, data["journal"], "ran")
    return {}


def square(i: int) -> int:
    time.sleep(0.05 * (i % 3))
    return i * i


@zart.task("l.steps-from-threads")
def steps_from_threads(ctx: zart.Context, data: dict) -> dict:
    """Steps run from a thread pool: each thread would take the run's next position, and one thread's body
    running made another thread's step a plain, unrecorded call."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(4) as pool:
        squares = list(pool.map(lambda i: ctx.step(f"square-{i}", square, i), range(8)))
    ctx.sleep("nap", 0.1)
    return {"squares": squares}


@zart.task("l.step-after-return")
def step_after_return(ctx: zart.Context, data: dict) -> dict:
    """A thread the handler leaves behind calls ctx.step once the execution has completed."""
    import threading

    def late() -> None:
        wait_for_file(data["go"])
        try:
            ctx.step("late", note, data["journal"], "ran")
        except BaseException as exc:  # noqa: BLE001  what the late call raised, for the test to read
            note(data["journal"], type(exc).__name__)

    threading.Thread(target=late, daemon=True).start()
    return {"returned": True}


KEPT_CONTEXTS: list[zart.Context] = []


@zart.task("l.keep-context")
def keep_context(ctx: zart.Context, data: dict) -> dict:
    """Keeps its context past its run, as a cache or a client built around it might."""
    KEPT_CONTEXTS.append(ctx)
    return {}


@zart.task("l.use-kept-context")
def use_kept_context(ctx: zart.Context, data: dict) -> dict:
    """Another execution, in the same worker process, calls a step on the context kept by the first."""
    try:
        KEPT_CONTEXTS[-1].step("late", note, data["journal"], "ran")
    except BaseException as exc:  # noqa: BLE001  what the stale call raised, for the test to read
        note(data["journal"], type(exc).__name__)
    return {}


@zart.task("l.step-timeout")
def step_timeout(ctx: zart.Context, data: dict) -> dict:
    """A step timeout computed by the caller (what is left of a budget, say)."""
    return {"result": ctx.step("work", note, data["journal"], "ran", timeout=data["timeout"])}


def die_unless(flag: str) -> str:
    """Kill the worker process outright, as an OOM kill or a segfault would, until `flag` exists."""
    with open(flag + ".count", "a") as handle:
        handle.write("x")
    if not os.path.exists(flag):
        os._exit(9)
    return "survived"


@zart.task("l.poison")
def poison(ctx: zart.Context, data: dict) -> dict:
    ctx.step("before", int, 1)
    return {"result": ctx.step("deadly", die_unless, data["flag"])}


@zart.task("l.progressing-poison")
def progressing_poison(ctx: zart.Context, data: dict) -> dict:
    """Dies once per step, but every run checkpoints the step before: progress resets the count."""
    results = []
    for i in range(data["steps"]):
        results.append(ctx.step(f"ok-{i}", int, i))
        results.append(ctx.step(f"die-{i}", die_once, data["dir"], i))
    return {"results": results}


def die_once(directory: str, i: int) -> int:
    marker = Path(directory) / f"died-{i}"
    if not marker.exists():
        marker.touch()
        os._exit(9)
    return i


@zart.task("l.event-child")
def event_child(ctx: zart.Context, data: dict) -> dict:
    return {"payload": ctx.wait_for_event("go")}


@zart.task("l.parent-of-task")
def parent_of_task(ctx: zart.Context, data: dict) -> dict:
    handle = ctx.schedule("child", event_child, {})
    try:
        return {"results": ctx.wait_all([handle])}
    except StepFailed as failure:
        return {"failed_step": failure.step_name, "type": failure.error_type}


@zart.task("l.hang", timeout=1.5)
def hang(ctx: zart.Context, data: dict) -> dict:
    """A step that hangs far past the task's timeout, then notes that it came back."""
    ctx.step("first", int, 1)
    ctx.step("hang", sleep_then_note, data["seconds"], data["journal"])
    return {"finished": True}


def sleep_then_note(seconds: float, journal: str) -> bool:
    time.sleep(seconds)
    with open(journal, "a") as handle:
        handle.write("returned\n")
    return True


@zart.task("l.recorded-in-step")
def recorded_in_step(ctx: zart.Context, data: dict) -> dict:
    """ctx.now() and ctx.uuid() inside a step body are plain calls; a sleep after forces a replay."""
    stamp = ctx.step("stamp", lambda: {"now": ctx.now().isoformat(), "uuid": ctx.uuid()})
    ctx.sleep("nap", 0.2)
    again = ctx.step("again", lambda: ctx.uuid())
    return {"stamp": stamp, "again": again, "outer": ctx.uuid()}


# a team's own Celery task (never sent: the test only checks it is refused inside a step body)
team_app = Celery("l-team", set_as_current=False)


@team_app.task(name="l.team-add")
def team_add(a: int, b: int) -> int:
    return a + b


@zart.task("l.durable-call-in-step")
def durable_call_in_step(ctx: zart.Context, data: dict) -> dict:
    def body() -> str:
        try:
            if data["call"] == "sleep":
                ctx.sleep("inner", 1)
            elif data["call"] == "event":
                ctx.wait_for_event("inner")
            elif data["call"] == "schedule":
                ctx.schedule("inner", int, 1)
            elif data["call"] == "schedule-task":
                ctx.schedule("inner", team_add, 1, 2)
        except Exception:  # noqa: BLE001  a careless body cannot hide the mistake
            return "swallowed"
        return "returned"

    return {"body": ctx.step("outer", body, retry=RetryPolicy.fixed(max_retries=2, delay=0.05))}


@zart.task("l.patch-in-step")
def patch_in_step(ctx: zart.Context, data: dict) -> dict:
    """A patch guarding a change inside a step's own function; a sleep after forces a replay."""

    def charge() -> str:
        return "new" if ctx.patched("fix-tax") else "old"

    path = ctx.step("charge", charge)
    ctx.sleep("nap", 0.1)
    return {"path": path, "after": ctx.step("after", int, 1)}


async def fetch_async() -> int:
    return 1


def generate() -> object:
    yield 1


@zart.task("l.async-step")
def async_step(ctx: zart.Context, data: dict) -> dict:
    return {"value": ctx.step("fetch", fetch_async if data["kind"] == "async" else generate)}


@zart.task("l.replay-past-paused-step")
def replay_past_paused_step(ctx: zart.Context, data: dict) -> dict:
    first = ctx.step("first", int, 1)
    ctx.wait_for_event("go")
    return {"first": first, "second": ctx.step("second", int, 2)}


# A slow bucket: a step that draws on it waits durably for its token when the bucket is in debt.
zart.limit("l.slow-bucket", rate="1/6s", burst=1)


def die_after_a_while(flag: str) -> str:
    """Like die_unless, but the body runs long enough (> visible_after) to be marked running first."""
    time.sleep(0.5)
    return die_unless(flag)


@zart.task("l.rated-poison")
def rated_poison(ctx: zart.Context, data: dict) -> dict:
    ctx.step("before", int, 1)
    return {"result": ctx.step("deadly", die_after_a_while, data["flag"], rate_limit="l.slow-bucket")}
