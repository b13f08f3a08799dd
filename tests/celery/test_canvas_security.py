"""What an API caller may make a worker send: a canvas names its Celery tasks in its data, so over HTTP it needs
an admin token (as a Celery-target schedule does); no canvas or schedule may name zart's or Celery's own tasks or
queue onto kombu's keys; and zart's result callbacks take a report only from the dispatch they follow."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from celery import Celery

from flask_app import create_app
from tests.harness import poll
from tests.integration.test_core import finished, query, schedule
from zart.celery.calls import RESULT_TASK
from zart.schedules.celery_target import CELERY_TARGET_TASK
from zart.store import db, executions

TOKENS = "reader:read:r-secret,writer:write:w-secret,boss:admin:a-secret"


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def task_signature(task: str, args: list[Any], queue: str, **kwargs: Any) -> dict[str, Any]:
    return {"task": task, "args": args, "kwargs": kwargs, "options": {"queue": queue}, "immutable": True,
            "subtask_type": None}


def canvases(service) -> int:
    return len(query(service, "SELECT id FROM executions WHERE task = 'zart.canvas'"))


def test_a_canvas_over_http_needs_an_admin_token(env, service, zart_worker, legacy_worker, log_dir):
    client = create_app(settings=env.settings(ZART_API_TOKENS=TOKENS)).test_client()
    journal = log_dir / f"chosen-by-the-caller-{datetime.now(UTC).timestamp()}"
    body = {"task": "zart.canvas", "data": {"canvas": task_signature("legacy.plus", [1, str(journal), 2], "legacy")}}
    before = canvases(service)

    refused = client.post("/api/v1/executions", json=body, headers=bearer("w-secret"))
    assert refused.status_code == 403, refused.get_json()
    assert refused.get_json()["error"]["code"] == "forbidden"
    assert "admin" in refused.get_json()["error"]["message"]
    assert canvases(service) == before  # nothing created, nothing sent

    allowed = client.post("/api/v1/executions", json=body, headers=bearer("a-secret"))
    assert allowed.status_code == 201, allowed.get_json()
    assert finished(service, allowed.get_json()["execution_id"])["output"] == 3
    assert journal.exists()


def test_no_canvas_or_schedule_names_zarts_or_celerys_own_tasks_or_kombus_keys(env, service, zart_worker):
    client = create_app(settings=env.settings(ZART_API_TOKENS=TOKENS)).test_client()
    queue = env.settings().queue
    before = canvases(service)
    for task, target_queue in (
        (RESULT_TASK, queue),
        ("zart.remote_failure", queue),
        ("celery.backend_cleanup", "legacy"),
        ("legacy.plus", "unacked_mutex"),
        ("legacy.plus", "zart:legacy:self-claim"),
        ("legacy.plus", "legacy\n"),
    ):
        canvas = task_signature(task, [{"forged": True}], target_queue, token="zart-" + "0" * 32)
        response = client.post(
            "/api/v1/executions", json={"task": "zart.canvas", "data": {"canvas": canvas}}, headers=bearer("a-secret")
        )
        assert response.status_code == 422, (task, target_queue, response.get_json())
        assert response.get_json()["error"]["code"] == "invalid_data"
    assert canvases(service) == before
    for task, options in ((RESULT_TASK, {}), ("legacy.plus", {"queue": "unacked"})):
        response = client.post(
            "/api/v1/schedules",
            json={"schedule_id": f"forge-{task}", "task": task, "target_kind": "celery", "every": 60, "data": options},
            headers=bearer("a-secret"),
        )
        assert response.status_code == 422, (task, response.get_json())
        assert client.get(f"/api/v1/schedules/forge-{task}", headers=bearer("a-secret")).status_code == 404


def test_a_result_callback_counts_only_after_the_dispatch_it_follows(env, service, zart_worker, log_dir):
    """A report that merely names a dispatch in flight (here sent straight to zart's queue, as anything able to
    name a task could) records nothing; the genuine callback path is covered by the worker-without-integration
    tests."""
    victim, _ = schedule(service, "c.unserved", log_dir, dispatch_timeout=60.0)

    def token() -> str | None:
        rows = query(service, "SELECT token FROM remote_steps WHERE execution_id = :id", id=victim)
        return rows[0]["token"] if rows else None

    poll(lambda: token() is not None, what="the victim's dispatch")
    sender = Celery("forger", broker=env.broker_url, set_as_current=False)
    sender.conf.task_serializer = "json"
    forged = sender.send_task(
        RESULT_TASK, args=[{"forged": True}], kwargs={"token": token()}, queue=env.settings().queue
    ).id
    poll(lambda: f"{RESULT_TASK}[{forged}] succeeded".encode() in zart_worker.log_path.read_bytes(),
         what="the zart worker to run the forged report")
    assert b"not that task's own callback" in zart_worker.log_path.read_bytes()
    assert service.status(victim)["status"] in ("running", "waiting")  # holding its claim for a moment, or parked
    assert service.steps(victim)[0]["status"] == "waiting"
    service.cancel(victim)


def test_no_input_of_the_celery_target_workflow_names_zarts_or_celerys_own_tasks(env, service, zart_worker, unique):
    """The workflow a Celery-target schedule fires sends the task its input names: input that reaches it another
    way than a Celery-target schedule (a zart-kind schedule of it, a restart with new data, input stored before
    the check) is checked as that schedule is, and a worker sends none of zart's or Celery's own tasks."""
    client = create_app(settings=env.settings(ZART_API_TOKENS=TOKENS)).test_client()
    forge, legit_id, stored = unique("forge"), unique("legit"), unique("stored")
    forged = {"task": RESULT_TASK, "args": [{"forged": True}], "kwargs": {"token": "zart-" + "0" * 32}, "options": {}}

    as_zart_target = client.post(
        "/api/v1/schedules",
        json={"schedule_id": forge, "task": CELERY_TARGET_TASK, "every": 60, "data": forged},
        headers=bearer("a-secret"),
    )
    assert as_zart_target.status_code == 422, as_zart_target.get_json()
    assert client.get(f"/api/v1/schedules/{forge}", headers=bearer("a-secret")).status_code == 404

    legit = client.post(
        "/api/v1/schedules",
        json={"schedule_id": legit_id, "task": "legacy.plus", "target_kind": "celery", "every": 3600,
              "args": [1, 2], "queue": "legacy", "paused": True},
        headers=bearer("a-secret"),
    )
    assert legit.status_code == 201, legit.get_json()
    fired = client.post(f"/api/v1/schedules/{legit_id}/trigger", headers=bearer("a-secret")).get_json()
    execution_id = fired["fired"][0]["execution_id"]
    restarted = client.post(
        f"/zart/admin/v1/executions/{execution_id}/restart",
        json={"data": forged, "force": True},
        headers=bearer("a-secret"),
    )
    assert restarted.status_code == 422, restarted.get_json()
    assert restarted.get_json()["error"]["code"] == "invalid_data"
    assert service.status(execution_id)["run_index"] == 0
    service.cancel(execution_id)
    assert client.delete(f"/api/v1/schedules/{legit_id}", headers=bearer("a-secret")).status_code == 200

    with db.transaction(service.settings.database_url) as conn:
        executions.insert_execution(conn, execution_id=stored, task=CELERY_TARGET_TASK, data=forged)
    service.publish(stored)
    row = finished(service, stored)
    assert row["status"] == "failed" and row["error"]["type"] == "UnsafeCeleryTarget", row["error"]
    assert not query(service, "SELECT token FROM remote_steps WHERE execution_id = :id", id=stored)
