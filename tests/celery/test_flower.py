"""Flower, the tool Celery users already watch: a real Flower process on the same broker lists zart's runs
(`zart.run_execution`) and the legacy tasks zart dispatched, when the workers send task events (-E)."""

from __future__ import annotations

import json
import sys
import urllib.request
from typing import Any

import redis

from tests.celery.conftest import IMPORTS, Process, celery_worker_argv
from tests.harness import poll
from tests.integration.test_core import finished, query, schedule
from zart.celery.doorbell import self_claim_marker
from zart.localservices import free_port


def flower_tasks(port: int) -> dict[str, Any]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/tasks", timeout=2) as response:
            return json.loads(response.read())  # type: ignore[no-any-return]
    except OSError:
        return {}


def test_flower_lists_zart_runs_and_the_dispatched_legacy_tasks(service, env, log_dir, processes, start_legacy):
    # One Celery task per execution, as Flower shows it when workers do not take ready executions themselves
    # (with self-claim, one task may run several executions and the doorbell of a new one may be left out).
    variables = env.variables(ZART_IMPORTS=IMPORTS, ZART_SELF_CLAIM="off")
    redis.Redis.from_url(env.broker_url).delete(self_claim_marker("zart"))  # lapsed markers of earlier tests
    zart_pool = Process(variables, log_dir, "zart-E", celery_worker_argv("celery_app", "zart", 2, "-E"))
    processes.append(zart_pool.wait_for(b" ready."))
    start_legacy("tests.legacy.integrated", 2, "-E")
    port = free_port()
    flower = Process(
        env.variables(FLOWER_UNAUTHENTICATED_API="true"),
        log_dir,
        "flower",
        [sys.executable, "-m", "celery", "--broker", env.broker_url, "flower", f"--port={port}",
         "--address=127.0.0.1"],
    )
    processes.append(flower)
    poll(lambda: flower.process.poll() is not None or b"Visit me at" in flower.log_path.read_bytes(), 30,
         what="flower")
    # Flower says it is up before its event receiver has caught up: an execution that finishes in those first
    # moments (one claim, a few milliseconds) is missed. Run executions until one is listed whole.
    found = None
    for _ in range(3):
        execution_id, _ = schedule(service, "c.sequence", log_dir)
        assert finished(service, execution_id)["output"] == {"a": 3, "b": 30}
        tokens = {r["step_name"]: r["token"] for r in query(
            service, "SELECT step_name, token FROM remote_steps WHERE execution_id = :id", id=execution_id)}

        def seen(execution_id: str = execution_id, tokens: dict[str, str] = tokens) -> dict[str, Any] | None:
            tasks = flower_tasks(port)
            runs = [t for t in tasks.values()
                    if t.get("name") == "zart.run_execution" and execution_id in (t.get("args") or "")]
            remote = [tasks.get(tokens["add"]), tasks.get(tokens["multiply"])]
            done = runs and all(t and t.get("state") == "SUCCESS" and t.get("name") for t in remote)
            return {"runs": runs, "remote": remote} if done else None

        try:
            found = poll(seen, 15, interval=0.3, what="Flower to list the runs and the legacy tasks")
            break
        except AssertionError:
            continue
    assert found is not None, "Flower never listed a whole execution"
    assert [t["name"] for t in found["remote"]] == ["legacy.add", "legacy.multiply"]
    assert all(t["worker"].startswith("legacy") for t in found["remote"])
    assert all(t["worker"].startswith("zart-E") for t in found["runs"])
