"""The legacy fleet's Celery app: no result backend, tasks routed to the queue `legacy` by `task_routes`."""

from __future__ import annotations

import os
import sys
import time

from celery import Celery, chain
from celery.exceptions import Ignore, Reject

from tests.workflows import entries, note

app = Celery("legacy", broker=os.environ.get("LEGACY_BROKER_URL") or os.environ.get("ZART_BROKER_URL"))
app.conf.update(
    task_routes={"legacy.unserved": {"queue": "nobody-serves-this"}, "legacy.*": {"queue": "legacy"}},
    task_serializer="json",
    accept_content=["json"],
    task_acks_late=True,
    worker_prefetch_multiplier=1,
    broker_connection_retry_on_startup=True,
    worker_hijack_root_logger=False,
)


@app.task(name="legacy.add")
def add(journal: str, a: int, b: int) -> int:
    note(journal, "add")
    return a + b


@app.task(name="legacy.multiply", ignore_result=True)
def multiply(journal: str, a: int, b: int) -> int:
    note(journal, "multiply")
    return a * b


@app.task(name="legacy.square")
def square(journal: str, n: int) -> int:
    note(journal, f"square-{n}")
    return n * n


@app.task(name="legacy.wait_for_file")
def wait_for_file(journal: str, entry: str, release: str, value: str) -> str:
    """Note the start, then block until the test creates `release` (or 60 s pass)."""
    note(journal, entry)
    deadline = time.monotonic() + 60
    while not os.path.exists(release) and time.monotonic() < deadline:
        time.sleep(0.02)
    note(journal, entry + "-end")
    return value


@app.task(name="legacy.retry_twice", bind=True, max_retries=5)
def retry_twice(self, journal: str) -> str:  # noqa: ANN001
    note(journal, "retry_twice")
    if entries(journal, "retry_twice") <= 2:
        raise self.retry(countdown=0.1)
    return f"ok after {self.request.retries} retries"


@app.task(name="legacy.autoretry", autoretry_for=(ConnectionError,), max_retries=2, default_retry_delay=0.1)
def autoretry(journal: str) -> str:
    note(journal, "autoretry")
    if entries(journal, "autoretry") <= 1:
        raise ConnectionError("gateway unreachable")
    return "recovered"


@app.task(name="legacy.always_fails")
def always_fails(journal: str) -> None:
    note(journal, "always_fails")
    raise ValueError("card declined")


@app.task(name="legacy.unserved")
def unserved(journal: str) -> str:
    note(journal, "unserved")
    return "never"


@app.task(name="legacy.rate_limited", rate_limit="12/m")
def rate_limited(journal: str, n: int) -> int:
    """Celery's own rate limit: a second call waits about five seconds in the worker's token bucket."""
    note(journal, f"rate_limited-{n}")
    return n


class Unprintable(ValueError):
    """An exception whose own __str__ raises (a bug in a library's exception class)."""

    def __str__(self) -> str:
        raise RuntimeError("no text for this one")


@app.task(name="legacy.returns")
def returns(journal: str, kind: str) -> object:
    """A value Postgres's jsonb refuses (or an exception whose message it refuses, or has none)."""
    note(journal, "returns")
    if kind == "raise-nul":
        raise ValueError("bad\x00byte")
    if kind == "raise-unprintable":
        raise Unprintable("never shown")
    return {"nan": float("nan"), "nul": "a\x00b", "set": {1, 2}}[kind]


@app.task(name="legacy.refuses")
def refuses(journal: str, how: str) -> str:
    """Raise Celery's own Reject (the worker drops the message) or Ignore (the worker records nothing)."""
    note(journal, "refuses")
    if how == "reject":
        raise Reject("not for us", requeue=False)
    raise Ignore()


@app.task(name="legacy.hands_over", bind=True)
def hands_over(self, journal: str, a: int, b: int) -> None:
    """Replace itself by legacy.add (Celery raises Ignore here; the replacement reports under this task's id)."""
    note(journal, "hands-over")
    raise self.replace(add.s(journal, a, b))


@app.task(name="legacy.reject_when_released")
def reject_when_released(journal: str, release: str) -> None:
    """Block like wait_for_file, then Reject: the worker's main process fails it."""
    wait_for_file(journal, "wait", release, "")
    raise Reject("not for us", requeue=False)


def _integrated() -> bool:
    """Whether this worker loaded the app with zart's integration line (`celery -A tests.legacy.integrated`)."""
    return "tests.legacy.integrated" in sys.modules


@app.task(
    name="legacy.retries_off_integrated", bind=True, autoretry_for=(ConnectionError,), max_retries=1,
    default_retry_delay=0.1, retry_on_worker_lost=True,
)
def retries_off_integrated(self, journal: str, release: str, how: str) -> str:  # noqa: ANN001
    """On a worker with the integration: wait for `release` (the test starts one without it meanwhile), then
    hand the task on under its own id: how="retry" `self.retry()` ("retry-later": a 20 s countdown), "lost"
    its pool process dies (Celery's `retry_on_worker_lost` has the worker's main process send it again),
    "replace" `self.replace()`, "replace-by-chain" the same by a chain (whose last task gets the id), else
    `autoretry_for`. On a worker without it: return, or (how="exhaust") raise until its retries are spent."""
    if _integrated():
        wait_for_file(journal, "integrated", release, "")
        if how == "retry":
            raise self.retry(countdown=0.1)
        if how == "retry-later":
            raise self.retry(countdown=20)
        if how == "lost":
            os._exit(1)
        if how == "replace":
            raise self.replace(retries_off_integrated.s(journal, release, "replaced"))
        if how == "replace-by-chain":
            raise self.replace(chain(multiply.si(journal, 1, 1), retries_off_integrated.si(journal, release, "last")))
        raise ConnectionError("gateway unreachable")
    note(journal, "plain")
    if how == "exhaust":
        raise ConnectionError("still unreachable")
    return f"plain after {self.request.retries} retries"


@app.task(name="legacy.retry_later", bind=True, max_retries=3)
def retry_later(self, journal: str, countdown: float) -> str:  # noqa: ANN001
    """Retry once with `countdown` (the worker holds the retried message until then), then return."""
    note(journal, "retry_later")
    if entries(journal, "retry_later") == 1:
        raise self.retry(countdown=countdown)
    return f"ran after {self.request.retries} retries"


@app.task(name="legacy.hops_away", bind=True, max_retries=5)
def hops_away(self, journal: str) -> None:  # noqa: ANN001
    """Retry with a short countdown (the worker that ran it takes the retry), then once more, to a queue nobody
    serves: that last message is lost."""
    note(journal, f"hops_away-{self.request.retries}")
    if self.request.retries == 0:
        raise self.retry(countdown=0.3)
    raise self.retry(countdown=0.1, queue="nobody-serves-this")
