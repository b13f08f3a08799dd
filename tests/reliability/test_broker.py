"""Broker faults: Redis flushed and restarted mid-run; Redis down while the CLI and the API keep scheduling.

Each test runs its own Redis, so stopping it disturbs nothing else in the session.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from flask_app import create_app
from tests.cli.cli import ZART
from tests.harness import Environment, poll
from tests.reliability.journal import audit
from zart.localservices import LocalRedis, free_port
from zart.registry import Registry
from zart.service import ZartService

DOWNTIME_SECONDS = 30


@pytest.fixture()
def private_redis(tmp_path: Path) -> Iterator[LocalRedis]:
    server = LocalRedis(tmp_path / "redis", free_port())
    server.start()
    yield server
    server.stop()


@pytest.fixture()
def private_env(env: Environment, private_redis: LocalRedis) -> Environment:
    return Environment(env.database_url, private_redis.url, env.imports)


def test_redis_flushed_and_restarted_mid_run(private_env, private_redis, start_worker, log_dir, unique):
    service = ZartService(private_env.settings(), registry=Registry())
    workers = [start_worker(concurrency=2, ZART_BROKER_URL=private_redis.url) for _ in range(2)]
    prefix = unique("flush") + "-"
    journal = log_dir / "bodies.journal"
    ids = [f"{prefix}{i}" for i in range(60)]
    for execution_id in ids:
        service.schedule("r.steps", {"journal": str(journal), "steps": 5, "gap": 0.02}, execution_id=execution_id)
    poll(lambda: journal.exists() and len(journal.read_text().splitlines()) > 60, what="work to be under way")
    redis.Redis.from_url(private_redis.url).flushall()
    private_redis.stop()
    private_redis.start()
    for execution_id in ids:
        done, row = service.wait(execution_id, 90)
        assert done and row["output"] == {"value": 5}, (execution_id, row["status"])
    assert audit(journal, service.settings.database_url, prefix, kills=[]).runs_after_checkpoint == []
    assert [worker.process.poll() for worker in workers] == [None, None]  # both still serving


def test_redis_down_while_cli_and_api_schedule(private_env, private_redis, start_worker, log_dir, unique):
    settings = private_env.settings()
    service = ZartService(settings, registry=Registry())
    start_worker(concurrency=2, ZART_BROKER_URL=private_redis.url)
    client = create_app(settings=settings).test_client()
    assert client.get("/readyz").status_code == 200

    private_redis.stop()
    went_down = time.monotonic()
    poll(lambda: client.get("/readyz").status_code == 503, timeout=5, what="readiness to notice")  # cached 1 s
    ids = []
    for i in range(5):
        execution_id = unique(f"down-cli-{i}")
        done = subprocess.run(
            [
                str(ZART),
                "schedule",
                "t.three-steps",
                "--id",
                execution_id,
                "--data",
                json.dumps({"journal": str(log_dir / f"{execution_id}.j")}),
            ],
            env=private_env.variables(),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0 and "broker is unreachable" in done.stderr, done.stderr
        ids.append(execution_id)
        response = client.post(
            "/api/v1/executions",
            json={"task": "t.three-steps", "data": {"journal": str(log_dir / f"api-{i}.j")}},
        )
        assert response.status_code == 201, response.get_json()
        ids.append(response.get_json()["execution_id"])
    assert all(service.status(execution_id)["status"] == "pending" for execution_id in ids)
    time.sleep(max(0.0, DOWNTIME_SECONDS - (time.monotonic() - went_down)))  # the outage lasts this long
    assert client.get("/readyz").status_code == 503

    private_redis.start()
    poll(lambda: client.get("/readyz").status_code == 200, what="readiness to return")
    for execution_id in ids:
        done, row = service.wait(execution_id, 90)
        assert done and row["output"] == {"sum": 6}, (execution_id, row["status"])


def test_worker_stopped_by_an_unrecoverable_error_is_started_again(env, service, start_worker, log_dir, unique):
    """Celery shuts down on an unrecoverable error; `zart worker` must see a failure there, not a stop."""
    from tests.reliability.crash_once import CRASH_FLAG

    flag = log_dir / "crash-once"
    flag.touch()
    worker = start_worker(
        concurrency=1,
        ready=False,
        ZART_IMPORTS=f"{env.imports},tests.reliability.crash_once",
        **{CRASH_FLAG: str(flag)},
    )
    poll(lambda: "starting a new one" in worker.log_path.read_text(), what="the supervisor to restart the worker")
    log = worker.log_path.read_text()
    assert "Unrecoverable error" in log and "worker exited with code 1" in log
    worker.wait_ready()
    execution_id = unique("after-crash")
    service.schedule("t.three-steps", {"journal": str(log_dir / "after-crash.j")}, execution_id=execution_id)
    done, row = service.wait(execution_id, 30)
    assert done and row["output"] == {"sum": 6}
    assert worker.process.poll() is None


def test_a_flushed_broker_gets_its_lost_doorbells_back_without_waiting_out_the_back_off(
    private_env, private_redis, start_worker, log_dir, unique
):
    """Rows whose only message vanished in a flush are re-published at the next sweep, not after a back-off."""
    silent = ZartService(private_env.settings(), publish=lambda _id: True, registry=Registry())
    start_worker(concurrency=2, ZART_BROKER_URL=private_redis.url, ZART_REDISPATCH_AFTER="600")
    broker = redis.Redis.from_url(private_redis.url)
    poll(lambda: broker.exists("zart:zart:broker-since"), what="the sweeper to mark the broker")
    ids = [unique("forgotten") for _ in range(10)]
    for execution_id in ids:
        silent.schedule("t.three-steps", {"journal": str(log_dir / f"{execution_id}.j")}, execution_id=execution_id)
    marked = broker.get("zart:zart:broker-since")
    assert all(silent.status(execution_id)["status"] == "pending" for execution_id in ids)
    broker.flushall()
    poll(lambda: broker.get("zart:zart:broker-since") not in (None, marked), what="the sweeper to notice the flush")
    for execution_id in ids:
        done, row = silent.wait(execution_id, 30)
        assert done and row["output"] == {"sum": 6}, (execution_id, row["status"])


def test_a_frozen_redis_neither_hangs_scheduling_nor_readiness(private_env, private_redis, start_worker, log_dir):
    """A broker that keeps its TCP connections but answers nothing (a stopped process, a partition that drops
    packets): a publish, and the readiness probe's ping, waited for its reply forever, so POST /executions never
    answered although the execution was recorded, and every /readyz queued behind the hung probe."""
    settings = private_env.settings()
    client = create_app(settings=settings).test_client()
    body = {"task": "t.three-steps", "data": {"journal": str(log_dir / "before.j")}}
    assert client.post("/api/v1/executions", json=body).status_code == 201  # the app holds a broker connection
    assert client.get("/readyz").status_code == 200
    time.sleep(1.1)  # past the readiness cache
    answers: dict[str, Any] = {}

    def ask() -> None:
        for n in range(2):
            made = client.post(
                "/api/v1/executions", json={"task": "t.three-steps", "data": {"journal": str(log_dir / f"{n}.j")}}
            )
            answers[f"post-{n}"] = (made.status_code, made.get_json())
        answers["readyz"] = client.get("/readyz").status_code

    os.kill(private_redis.process.pid, signal.SIGSTOP)
    try:
        asking = threading.Thread(target=ask, daemon=True)
        asking.start()
        asking.join(timeout=30)
        assert not asking.is_alive(), f"the API hung on a frozen broker (answered so far: {answers})"
    finally:
        os.kill(private_redis.process.pid, signal.SIGCONT)
    assert answers["readyz"] == 503
    ids = []
    for n in range(2):
        status, made = answers[f"post-{n}"]
        assert status == 201 and made["status"] == "pending", made
        ids.append(made["execution_id"])
    start_worker(concurrency=1, ZART_BROKER_URL=private_redis.url)
    service = ZartService(settings, registry=Registry())
    for execution_id in ids:
        done, row = service.wait(execution_id, 60)
        assert done and row["output"] == {"sum": 6}, (execution_id, row["status"])
