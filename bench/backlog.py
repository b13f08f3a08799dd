"""A sustained run: executions offered faster than a worker can run them, on top of a deep backlog.

What matters is that nothing degrades as the run goes on: the rate of completions in the last ten seconds
against the first ten, and the worker's resident memory at the start against the end.
"""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass

import psycopg

from bench import workflows
from bench.measure import submit_all
from bench.processes import WorkerProcess
from zart.service import ZartService

WINDOW_SECONDS = 10.0

_COMPLETED_PER_WINDOW = """
SELECT floor(EXTRACT(EPOCH FROM completed_at - %(start)s) / %(window)s)::int AS slot, count(*)
FROM executions
WHERE id LIKE %(prefix)s AND status = 'completed' AND completed_at >= %(start)s
  AND completed_at < %(start)s + make_interval(secs => %(seconds)s)
GROUP BY slot ORDER BY slot
"""


@dataclass(frozen=True)
class Sustained:
    per_window: list[float]  # completions per second in each window, in order
    rss_start: int
    rss_end: int
    backlog_end: int
    offered_per_second: float  # what the offering threads achieved

    @property
    def first(self) -> float:
        return self.per_window[0]

    @property
    def last(self) -> float:
        return self.per_window[-1]


def fill(service: ZartService, count: int, prefix: str, clients: int, steps: int) -> None:
    """Schedule `count` executions (no worker needs to be running)."""
    ids = [f"{prefix}{uuid.uuid4().hex[:16]}" for _ in range(count)]
    submit_all(lambda i: service.schedule(workflows.STEPS, {"n": steps}, execution_id=i), ids, clients)


def sustain(
    service: ZartService,
    libpq_url: str,
    worker: WorkerProcess,
    prefix: str,
    seconds: float,
    offered: float,
    steps: int,
    clients: int,
) -> Sustained:
    """Offer `offered` executions per second from `clients` threads for `seconds` while `worker` (started on a
    backlog) runs them. One thread alone cannot schedule as fast as the worker runs on a busy machine, and a
    backlog that drains measures the offer, not the worker."""
    stop = threading.Event()
    scheduled = [0] * clients

    def offer(client: int) -> None:
        interval, due = clients / offered, time.monotonic()
        while not stop.is_set():
            service.schedule(workflows.STEPS, {"n": steps}, execution_id=f"{prefix}{uuid.uuid4().hex[:16]}")
            scheduled[client] += 1
            due += interval
            time.sleep(max(0.0, due - time.monotonic()))

    with psycopg.connect(libpq_url, autocommit=True) as conn:
        offering = [threading.Thread(target=offer, args=(n,), daemon=True) for n in range(clients)]
        start = conn.execute("SELECT now()").fetchone()[0]  # type: ignore[index]
        for thread in offering:
            thread.start()
        time.sleep(WINDOW_SECONDS / 2)  # past the pool's first runs: warm memory is what is compared
        rss_start = worker.rss_bytes()
        time.sleep(seconds - WINDOW_SECONDS / 2)
        rss_end = worker.rss_bytes()
        stop.set()
        for thread in offering:
            thread.join()
        window = {"start": start, "window": WINDOW_SECONDS, "prefix": prefix + "%", "seconds": seconds}
        counts = dict(conn.execute(_COMPLETED_PER_WINDOW, window).fetchall())
        backlog = conn.execute(
            "SELECT count(*) FROM executions WHERE id LIKE %s AND status = 'pending'", (prefix + "%",)
        ).fetchone()[0]  # type: ignore[index]
    windows = int(seconds // WINDOW_SECONDS)
    per_window = [counts.get(slot, 0) / WINDOW_SECONDS for slot in range(windows)]
    return Sustained(per_window, rss_start, rss_end, int(backlog), sum(scheduled) / seconds)
