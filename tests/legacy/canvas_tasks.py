"""Legacy-fleet tasks written for Celery canvases: each notes its run in the test's journal."""

from __future__ import annotations

import os
from typing import Any

from tests.legacy.app import app
from tests.workflows import note


@app.task(name="legacy.plus")
def plus(n: int, journal: str, k: int) -> int:
    note(journal, "plus")
    return n + k


@app.task(name="legacy.total")
def total(values: list[int], journal: str) -> int:
    note(journal, "total")
    return sum(values)


@app.task(name="legacy.collect", ignore_result=True)
def collect(values: Any, journal: str, label: str) -> Any:
    note(journal, label)
    return values


@app.task(name="legacy.fail")
def fail(journal: str, message: str) -> None:
    note(journal, "fail")
    raise ValueError(message)


@app.task(name="legacy.on_error")
def on_error(failed: str, journal: str, label: str) -> str:
    note(journal, label)
    return failed


@app.task(name="legacy.flaky")
def flaky(value: Any, journal: str, release: str) -> Any:
    """Fails until the test creates `release`."""
    note(journal, "flaky")
    if not os.path.exists(release):
        raise ValueError("not released yet")
    return value
