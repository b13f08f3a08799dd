"""The admin API: every action with a real worker behind it, and every refusal (404, 409, 422, 401)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from flask_app import create_app
from tests.harness import poll
from tests.reliability.journal import body_runs

ADMIN = "/zart/admin/v1"
API = "/api/v1"


@pytest.fixture()
def client(env):
    return create_app(settings=env.settings()).test_client()


def error_code(response, status: int) -> str:
    assert response.status_code == status, (response.status_code, response.get_json())
    return response.get_json()["error"]["code"]


def runs_of(journal, execution_id: str, step: str) -> int:
    return sum(1 for run in body_runs(journal) if run.execution_id == execution_id and run.step == step)


def wait_json(client, execution_id: str) -> dict:
    response = client.get(f"{API}/executions/{execution_id}/wait?timeout=30")
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def test_dead_step_rerun_restart_and_detail_over_http(client, worker, log_dir):
    journal, flag = log_dir / "bodies.journal", log_dir / "flag"
    created = client.post(
        f"{API}/executions", json={"task": "a.dead-step", "data": {"journal": str(journal), "flag": str(flag)}}
    )
    execution_id = created.get_json()["execution_id"]
    assert wait_json(client, execution_id)["status"] == "failed"

    detail = client.get(f"{ADMIN}/executions/{execution_id}/detail").get_json()
    assert [(s["name"], s["retryable"], len(s["attempt_history"])) for s in detail["steps"]] == [
        ("a", False, 1),
        ("b", True, 2),
    ]
    retry = f"{ADMIN}/executions/{execution_id}/retry-step"
    assert error_code(client.post(retry, json={"step_name": "a"}), 409) == "step_not_dead"
    assert error_code(client.post(retry, json={"step_name": "zz"}), 404) == "step_not_found"
    assert error_code(client.post(retry, json={}), 422) == "invalid_data"
    assert error_code(client.post(f"{ADMIN}/executions/missing/retry-step", json={"step_name": "b"}), 404) == (
        "execution_not_found"
    )
    flag.touch()
    response = client.post(retry, json={"step_name": "b", "triggered_by": "oncall@example.com"})
    assert response.status_code == 200 and response.get_json()["status"] == "pending"
    assert wait_json(client, execution_id)["output"] == {"a": 1, "b": "fixed", "c": 2}
    assert runs_of(journal, execution_id, "a") == 1

    preview_url = f"{ADMIN}/executions/{execution_id}/rerun/preview"
    preview = client.post(preview_url, json={"steps": ["b"], "preserve": ["c"]})
    assert preview.status_code == 200, preview.get_json()
    plan = preview.get_json()
    assert (plan["steps_to_run"], plan["steps_preserved"], plan["run_index"]) == (["b"], ["a", "c"], 0)
    assert error_code(client.post(preview_url, json={"steps": ["nope"]}), 404) == "step_not_found"
    assert client.get(f"{ADMIN}/executions/{execution_id}/runs").get_json()["runs"][-1]["run_index"] == 0
    rerun = client.post(f"{ADMIN}/executions/{execution_id}/rerun", json={"steps": ["b"], "preserve": ["c"]})
    assert rerun.status_code == 200
    assert rerun.get_json()["steps_to_run"] == ["b"] and rerun.get_json()["steps_preserved"] == ["a", "c"]
    wait_json(client, execution_id)
    assert (runs_of(journal, execution_id, "b"), runs_of(journal, execution_id, "c")) == (4, 1)
    rerun_missing = client.post(f"{ADMIN}/executions/{execution_id}/rerun", json={"steps": ["nope"]})
    assert error_code(rerun_missing, 404) == "step_not_found"
    assert error_code(client.post(f"{ADMIN}/executions/{execution_id}/rerun", json={"steps": []}), 422) == (
        "invalid_data"
    )

    restart = client.post(f"{ADMIN}/executions/{execution_id}/restart", json={})
    assert restart.status_code == 200 and restart.get_json()["run_index"] == 2
    wait_json(client, execution_id)
    assert runs_of(journal, execution_id, "a") == 2
    runs = client.get(f"{ADMIN}/executions/{execution_id}/runs").get_json()["runs"]
    assert [(r["trigger"], r["status"]) for r in runs] == [
        ("initial", "completed"),
        ("selective_rerun", "completed"),
        ("restart", "completed"),
    ]
    detail = client.get(f"{ADMIN}/executions/{execution_id}/detail?run=1").get_json()
    assert detail["run_index"] == 1 and detail["current_run"] == 2
    # who acted is the token (here: none, so "api"); what the body said is kept as on whose behalf
    assert [(a["action"], a["triggered_by"], a["on_behalf_of"]) for a in detail["actions"]] == [
        ("retry-step", "api", "oncall@example.com"),
        ("selective_rerun", "api", None),
        ("restart", "api", None),
    ]
    assert error_code(client.get(f"{ADMIN}/executions/{execution_id}/detail?run=9"), 422) == "invalid_data"
    assert error_code(client.get(f"{ADMIN}/executions/missing/runs"), 404) == "execution_not_found"


def test_restart_of_an_active_execution_is_409_without_force(client, worker, log_dir):
    created = client.post(f"{API}/executions", json={"task": "t.event", "data": {"journal": str(log_dir / "j")}})
    execution_id = created.get_json()["execution_id"]
    poll(lambda: client.get(f"{API}/executions/{execution_id}").get_json()["status"] == "waiting", what="park")
    restart = f"{ADMIN}/executions/{execution_id}/restart"
    assert error_code(client.post(restart, json={"data": {"journal": "x"}}), 409) == "execution_active"
    assert error_code(client.post(restart, json={"data": [1]}), 422) == "invalid_data"
    for fraction in (0.5, "0"):  # not a run index: it was cast to 0 and the restart went ahead
        bad = {"force": True, "expected_run_index": fraction}
        assert error_code(client.post(restart, json=bad), 422) == "invalid_data"
    forced = client.post(restart, json={"force": True})
    assert forced.status_code == 200 and forced.get_json()["run_index"] == 1


def test_a_pause_expiry_past_year_9999_once_in_utc_is_invalid_data(client):
    """Postgres stores 10000-01-01 04:59 UTC, but Python cannot read it back: it must not get that far."""
    far = client.post(f"{ADMIN}/pause", json={"task": "x", "expires_at": "9999-12-31T23:59:00-05:00"})
    assert error_code(far, 422) == "invalid_data"


def test_pause_rules_over_http(client, worker, log_dir):
    assert error_code(client.post(f"{ADMIN}/pause", json={}), 422) == "invalid_data"
    assert error_code(client.post(f"{ADMIN}/pause", json={"step_pattern": "*"}), 422) == "invalid_data"
    past = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    assert error_code(client.post(f"{ADMIN}/pause", json={"task": "x", "expires_at": past}), 422) == "invalid_data"
    beyond = "9999-12-31T23:59:59-14:00"  # year 10000 in UTC: PostgreSQL refused it and the API answered 500
    assert error_code(client.post(f"{ADMIN}/pause", json={"task": "x", "expires_at": beyond}), 422) == "invalid_data"
    created = client.post(f"{ADMIN}/pause", json={"task": "t.three-steps", "reason": "maintenance"})
    assert created.status_code == 201
    rule = created.get_json()
    assert rule["active"] and rule["created_by"] == "api"

    scheduled = client.post(
        f"{API}/executions", json={"task": "t.three-steps", "data": {"journal": str(log_dir / "j")}}
    )
    execution_id = scheduled.get_json()["execution_id"]
    held = client.get(f"{API}/executions/{execution_id}/wait?timeout=2")
    assert held.status_code == 202 and held.get_json()["status"] == "pending"
    assert [r["rule_id"] for r in client.get(f"{ADMIN}/pause").get_json()["rules"]] == [rule["rule_id"]]

    resumed = client.post(f"{ADMIN}/pause/{rule['rule_id']}", json={"triggered_by": "bob"})
    assert resumed.status_code == 200 and resumed.get_json()["resumed_by"] == "api"
    assert wait_json(client, execution_id)["status"] == "completed"
    assert error_code(client.post(f"{ADMIN}/pause/{rule['rule_id']}", json={}), 409) == "pause_rule_not_active"
    assert client.get(f"{ADMIN}/pause?all=true").get_json()["rules"][-1]["active"] is False
    assert client.delete(f"{ADMIN}/pause/{rule['rule_id']}").status_code == 200
    assert error_code(client.delete(f"{ADMIN}/pause/{rule['rule_id']}"), 404) == "pause_rule_not_found"
    assert error_code(client.post(f"{ADMIN}/pause/nope", json={}), 404) == "pause_rule_not_found"


def test_admin_routes_need_a_token_and_record_its_name(env):
    client = create_app(settings=env.settings(ZART_API_TOKENS="ops-team:s3cret,plain-token")).test_client()
    assert error_code(client.get(f"{ADMIN}/pause"), 401) == "unauthorized"
    assert error_code(client.get(f"{ADMIN}/pause", headers={"Authorization": "Bearer wrong"}), 401) == "unauthorized"
    named = client.post(f"{ADMIN}/pause", json={"task": "t.none"}, headers={"Authorization": "Bearer s3cret"})
    assert named.status_code == 201 and named.get_json()["created_by"] == "ops-team"
    plain = client.delete(
        f"{ADMIN}/pause/{named.get_json()['rule_id']}", headers={"Authorization": "Bearer plain-token"}
    )
    assert plain.status_code == 200
