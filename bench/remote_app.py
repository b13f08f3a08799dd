"""A team's own Celery app for the remote-step benchmark: one trivial task on its own queue.

The same task serves both sides: zart dispatches it as a remote step, and the baseline calls it with
`.delay().get()` over the Redis result backend (or `.delay()` counted in Redis, for throughput). The worker
runs `celery -A bench.remote_fleet worker -Q bench-remote`, which adds zart's integration line.
"""

from __future__ import annotations

import os

import redis
from celery import Celery

QUEUE = "bench-remote"
# the fleet worker gets BENCH_BROKER_URL; the zart worker that dispatches the task has zart's own broker URL
_broker = os.environ.get("BENCH_BROKER_URL") or os.environ.get("ZART_BROKER_URL") or "redis://127.0.0.1:6379/0"

app = Celery("bench_remote", broker=_broker, backend=_broker)
app.conf.update(
    task_routes={"bench.remote.*": {"queue": QUEUE}},
    task_serializer="json",
    accept_content=["json"],
    result_serializer="json",
    worker_hijack_root_logger=False,
    broker_connection_retry_on_startup=True,
)

_counter: redis.Redis | None = None


@app.task(name="bench.remote.echo")
def echo(i: int, counter_key: str | None = None) -> int:
    """Trivial on purpose; counts itself in Redis when asked, so a batch without results can be awaited."""
    global _counter
    if counter_key is not None:
        if _counter is None:
            _counter = redis.Redis.from_url(app.conf.broker_url)
        _counter.incr(counter_key)
    return i


@app.task(name="bench.remote.inc")
def inc(n: int) -> int:
    """A chain link: the previous result plus one."""
    return n + 1


@app.task(name="bench.remote.total")
def total(values: list[int]) -> int:
    """A chord body: the sum of its header's results."""
    return sum(values)
