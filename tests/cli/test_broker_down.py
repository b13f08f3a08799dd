"""With Redis down the CLI still writes to Postgres; the workers' sweeper delivers the work once Redis is back.

The session's Redis is shared by every test, so this module stops and restarts a private one instead.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli.cli import scheduled_id, status_of
from tests.harness import poll
from zart.celery.doorbell import Publisher
from zart.config import Settings
from zart.dispatch import create_celery_app
from zart.localservices import LocalRedis, free_port

UNREACHABLE = "Warning: the broker is unreachable"


@pytest.fixture()
def private_redis(tmp_path: Path) -> Iterator[LocalRedis]:
    server = LocalRedis(tmp_path / "private-redis", free_port())
    server.start()
    yield server
    server.stop()


def test_publishing_to_a_stopped_broker_fails_fast(private_redis):
    private_redis.stop()
    publisher = Publisher(create_celery_app(Settings(broker_url=private_redis.url)))
    assert publisher.publish("warm-up") is False  # first use pays for kombu's imports
    started = time.monotonic()
    assert publisher.publish("exec-nowhere") is False
    assert time.monotonic() - started < 1.0


def test_schedule_event_and_cancel_work_with_redis_down_and_the_work_completes_later(
    zart, journal, private_redis, start_worker
):
    broker = {"ZART_BROKER_URL": private_redis.url}
    first = start_worker(**broker)
    waiting = scheduled_id(zart("schedule", "t.event", "--data", journal(), **broker))
    poll(lambda: status_of(zart, waiting) == "waiting", what="the execution to wait for its event")
    first.stop()
    private_redis.stop()

    scheduled = zart("schedule", "t.three-steps", "--data", journal(), **broker)
    fresh = scheduled_id(scheduled)
    assert scheduled.lines == [f"Scheduled execution: {fresh}", "Task: t.three-steps", "Status: pending"]
    assert scheduled.stderr.startswith(UNREACHABLE) and fresh in scheduled.stderr
    assert scheduled.stderr.count("\n") == 1  # one line, not the library's log record as well

    delivered = zart("event", waiting, "approval", "--data", '{"late": true}', **broker)
    assert delivered.returncode == 0, delivered.stderr
    assert delivered.stdout == f"Event delivered to {waiting}: approval\n"
    assert delivered.stderr.startswith(UNREACHABLE) and delivered.stderr.count("\n") == 1

    doomed = scheduled_id(zart("schedule", "t.event", "--data", journal(), **broker))
    cancelled = zart("cancel", doomed, **broker)
    assert (cancelled.returncode, cancelled.stdout) == (0, f"Cancelled execution: {doomed}\n")
    assert [status_of(zart, i) for i in (fresh, waiting, doomed)] == ["pending", "pending", "cancelled"]

    private_redis.start()  # same port, empty: every message published before is gone
    start_worker(**broker)
    finished = zart("wait", fresh, "--timeout", "60", **broker)
    assert finished.returncode == 0, finished.stderr
    assert json.loads(finished.stdout) == {"status": "completed", "output": {"sum": 6}}
    resumed = zart("wait", waiting, "--timeout", "60", **broker)
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads(resumed.stdout) == {"status": "completed", "output": {"payload": {"late": True}}}
    assert status_of(zart, doomed) == "cancelled"
