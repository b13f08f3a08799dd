"""A Celery project whose beat_schedule names its own tasks, served by a plain `celery worker` (no zart code in
it): after `zart schedules import-beat`, zart's sweepers fire them on that worker instead of beat."""

from __future__ import annotations

import os

from celery import Celery

app = Celery("beatfleet", broker=os.environ.get("ZART_BROKER_URL", "memory://"))
app.conf.update(
    task_routes={"beatfleet.*": {"queue": "beatfleet"}},
    task_serializer="json",
    accept_content=["json"],
    broker_connection_retry_on_startup=True,
    worker_hijack_root_logger=False,
    beat_schedule={
        "ping-every-two-seconds": {"task": "beatfleet.ping", "schedule": 2.0, "args": ["pong"]},
        "add-hourly": {"task": "beatfleet.add", "schedule": 3600.0, "kwargs": {"a": 2, "b": 3}},
    },
)


@app.task(name="beatfleet.ping")
def ping(word: str) -> str:
    return word


@app.task(name="beatfleet.add")
def add(a: int, b: int) -> int:
    return a + b
