"""The liveness check as an operator sees it: `zart admin stranded`, the admin route, the gauge, and the
sweeper repairing what it knows how to repair. Each stranded row is made by breaking a real execution the way
a past bug did (a child ended without reporting; a pause rule lifted after its release ran)."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from flask_app import create_app
from tests.cli.cli import Cli
from tests.harness import poll
from zart.store import db

ADMIN = "/zart/admin/v1"


@pytest.fixture()
def zart(env, tmp_path) -> Cli:
    return Cli(env, tmp_path)


def _sql(env, statement: str, **params) -> None:
    with db.transaction(env.database_url) as conn:
        conn.execute(text(statement), params)


def _stranded_ids(zart: Cli) -> dict[str, str]:
    result = zart("admin", "stranded", "--json")
    assert result.returncode == 0, result.stderr
    return {row["execution_id"]: row["cause"] for row in result.json()["stranded"]}


def test_a_stranded_execution_is_listed_by_cli_and_api_and_counted_by_the_gauge(env, service, zart, unique):
    execution_id = unique("stranded")
    service.schedule("t.event", {"journal": "/dev/null"}, execution_id=execution_id)
    # parked with nothing recorded to wake it: what a lost wake-up leaves behind
    _sql(env, "UPDATE executions SET status = 'waiting', wake_at = NULL WHERE id = :id", id=execution_id)
    try:
        assert _stranded_ids(zart)[execution_id] == "no_wake_up"
        text_output = zart("admin", "stranded")
        assert text_output.returncode == 0 and execution_id in text_output.stdout
        client = create_app(settings=env.settings()).test_client()
        listed = client.get(f"{ADMIN}/stranded")
        assert listed.status_code == 200
        row = next(r for r in listed.get_json()["stranded"] if r["execution_id"] == execution_id)
        assert row["cause"] == "no_wake_up" and row["status"] == "waiting" and row["updated_at"].endswith("Z")
        assert client.get(f"{ADMIN}/stranded?limit=0").get_json()["error"]["code"] == "invalid_data"
        assert client.get(f"{ADMIN}/stranded?limit=x").status_code == 422
        metrics = client.get("/metrics").get_data(as_text=True)
        gauge = next(line for line in metrics.splitlines() if line.startswith("zart_stranded_executions "))
        assert float(gauge.split()[1]) >= 1
        secured = create_app(settings=env.settings(ZART_API_TOKENS="ops:s3cret")).test_client()
        assert secured.get(f"{ADMIN}/stranded").get_json()["error"]["code"] == "unauthorized"
        assert secured.get(f"{ADMIN}/stranded", headers={"Authorization": "Bearer s3cret"}).status_code == 200
    finally:
        service.cancel(execution_id)
    assert execution_id not in _stranded_ids(zart)


def test_the_sweeper_reports_a_child_that_ended_without_telling_its_parent(env, service, start_worker, zart):
    worker = start_worker()
    parent_id = service.schedule("l.parent-of-task", {}).execution["execution_id"]
    child_id = f"{parent_id}~child"
    poll(lambda: service.status(parent_id)["status"] == "waiting", what="the parent to park on its child")
    poll(lambda: service.status(child_id)["status"] == "waiting", what="the child to wait for its event")
    _sql(env, "UPDATE executions SET status = 'cancelled', completed_at = now() WHERE id = :id", id=child_id)
    done, row = service.wait(parent_id, 30)
    assert done and row["output"] == {"failed_step": "child", "type": "Cancelled"}, row
    assert "stranded execution" in worker.log_path.read_text() and "repaired" in worker.log_path.read_text()


def test_the_sweeper_releases_an_execution_parked_on_a_rule_lifted_after_its_release(
    env, service, start_worker, log_dir
):
    from zart.admin import AdminService

    admin = AdminService(service)
    rule = admin.create_pause(
        execution_id=None,
        task=None,
        step_pattern="b",
        reason="test",
        expires_at=None,
        applies_to_all=False,
        triggered_by="test",
    )
    start_worker()
    journal = str(log_dir / "j")
    execution_id = service.schedule("t.three-steps", {"journal": journal}).execution["execution_id"]
    try:
        poll(lambda: (service.status(execution_id)["waiting_for"] or {}).get("kind") == "pause", what="the park")
    finally:  # lifted and marked released behind the sweeper's back, as a resume racing a park once did
        _sql(env, "UPDATE pause_rules SET resumed_at = now(), released_at = now() WHERE id = :id", id=rule["rule_id"])
    done, row = service.wait(execution_id, 30)
    assert done and row["status"] == "completed", row
