"""Workflows under limits, run by the flow-control tests in real worker processes.

Bodies append `start|end <execution> <epoch>` to a journal named in the input, so a test can rebuild from
the lines how many bodies of a limit ran at once.
"""

from __future__ import annotations

import time
from pathlib import Path

import zart
from tests.workflows import wait_for_file


def mark(journal: str, phase: str, execution_id: str, key: str = "-") -> None:
    with open(journal, "a") as handle:
        handle.write(f"{phase} {execution_id} {time.time():.6f} {key}\n")


def body(journal: str, execution_id: str, seconds: float, key: str = "-") -> str:
    mark(journal, "start", execution_id, key)
    time.sleep(seconds)
    mark(journal, "end", execution_id, key)
    return execution_id


def journal_body(ctx: zart.Context, data: dict) -> dict:
    ctx.step("body", body, data["journal"], ctx.execution_id, data.get("seconds", 0.02), str(data.get("key", "-")))
    return {"input": data}


@zart.task("flow.limited", concurrency=2)
def limited(ctx: zart.Context, data: dict) -> dict:
    return journal_body(ctx, data)


@zart.task("flow.runtime", concurrency=4)
def runtime(ctx: zart.Context, data: dict) -> dict:
    return journal_body(ctx, data)


@zart.task("flow.one-slot", concurrency=1)
def one_slot(ctx: zart.Context, data: dict) -> dict:
    if data.get("release"):
        ctx.step("block", wait_for_file, data["journal"] + ".block", "block", data["release"], True)
    return journal_body(ctx, data)


@zart.task("flow.priority", concurrency=1)
def prioritised(ctx: zart.Context, data: dict) -> dict:
    if data.get("release"):
        ctx.step("block", wait_for_file, data["journal"] + ".block", "block", data["release"], True)
    return journal_body(ctx, data)


@zart.task("flow.keyed", concurrency_key="customer.id", key_concurrency=1)
def keyed(ctx: zart.Context, data: dict) -> dict:
    return journal_body(ctx, {**data, "key": data["customer"]["id"]})


@zart.task("flow.newest", concurrency_key="customer_id", on_key_busy="cancel_newest")
def newest(ctx: zart.Context, data: dict) -> dict:
    ctx.step("block", wait_for_file, data["journal"], "block", data["release"], True)
    return {"customer_id": data["customer_id"]}


@zart.task("flow.supersede", concurrency_key="customer_id", on_key_busy="cancel_in_progress")
def supersede(ctx: zart.Context, data: dict) -> dict:
    ctx.step("block", wait_for_file, data["journal"], "block", data["release"], True)
    return {"customer_id": data["customer_id"]}


@zart.task("flow.rated", rate_limit="10/s", burst=2)
def rated(ctx: zart.Context, data: dict) -> dict:
    return journal_body(ctx, {**data, "seconds": 0})


@zart.task("flow.queue-a", limit="flow.shared")
def queue_a(ctx: zart.Context, data: dict) -> dict:
    return journal_body(ctx, data)


@zart.task("flow.plain")
def plain(ctx: zart.Context, data: dict) -> dict:
    return {"input": data}


zart.limit("flow.shared", concurrency=3)
zart.limit("flow.bucket", rate="4/s", burst=1)


@zart.task("flow.step-rated")
def step_rated(ctx: zart.Context, data: dict) -> dict:
    for i in range(data.get("calls", 3)):
        ctx.step(f"call-{i}", body, data["journal"], f"{ctx.execution_id}/{i}", 0, rate_limit="flow.bucket")
    return {}


def overlap(journal: str | Path, by_key: bool = False) -> int | dict[str, int]:
    """The most bodies running at once (per key when `by_key`), from the journal's start/end lines."""
    events: list[tuple[float, int, str]] = []
    for line in Path(journal).read_text().splitlines():
        phase, _, stamp, key = line.split(" ")
        # at equal times an end sorts before a start: they did not overlap
        events.append((float(stamp), 1 if phase == "start" else -1, key if by_key else "-"))
    running: dict[str, int] = {}
    most: dict[str, int] = {}
    for _, delta, key in sorted(events, key=lambda e: (e[0], e[1])):
        running[key] = running.get(key, 0) + delta
        most[key] = max(most.get(key, 0), running[key])
    return most if by_key else most.get("-", 0)


def starts(journal: str | Path) -> list[tuple[float, str]]:
    rows: list[tuple[float, str]] = []
    if not Path(journal).exists():
        return rows
    for line in Path(journal).read_text().splitlines():
        phase, execution_id, stamp, _ = line.split(" ")
        if phase == "start":
            rows.append((float(stamp), execution_id))
    return sorted(rows)
