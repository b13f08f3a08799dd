"""The non-durable baseline: a plain Celery chain of three trivial tasks on the same Redis.

No result backend and Celery's default settings; the last task increments a Redis counter so the benchmark
can count completions.
"""

from __future__ import annotations

import os
import uuid

import redis
from celery import Celery, chain

QUEUE = "bench-chain"

app = Celery("bench_chain", broker=os.environ.get("BENCH_BROKER_URL", "redis://127.0.0.1:6379/0"))
app.conf.update(
    task_default_queue=QUEUE,
    task_ignore_result=True,
    task_serializer="json",
    accept_content=["json"],
    worker_hijack_root_logger=False,
    broker_connection_retry_on_startup=True,
)

_counter: redis.Redis | None = None


def _redis() -> redis.Redis:
    global _counter
    if _counter is None:
        _counter = redis.Redis.from_url(app.conf.broker_url)
    return _counter


@app.task(name="bench.chain.first")
def first(i: int) -> int:
    return i


@app.task(name="bench.chain.middle")
def middle(i: int) -> int:
    return i


@app.task(name="bench.chain.last")
def last(i: int, counter_key: str) -> int:
    _redis().incr(counter_key)
    return i


def send(i: int, counter_key: str) -> None:
    """Start one chain: first → middle → last."""
    chain(first.s(i), middle.s(), last.s(counter_key)).apply_async()


def run_batch(count: int, clients: int, timeout: float) -> None:
    """Start `count` chains from `clients` threads and return once the last task of every one has run."""
    from bench.measure import submit_all, wait_until

    key = f"bench:chain:{uuid.uuid4().hex}"
    submit_all(lambda i: send(i, key), range(count), clients)
    wait_until(lambda: int(_redis().get(key) or 0) >= count, timeout, what=f"{count} Celery chains")
