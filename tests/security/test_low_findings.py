"""The smaller findings: whole-string validation, what the public readiness probe says and how often it
touches the dependencies, security headers, Swagger UI not keeping the token, replayed restarts."""

from __future__ import annotations

import threading

import marshmallow as ma
import pytest

from flask_app import create_app
from flask_app.schemas import printable
from tests.harness import poll
from zart.errors import ExecutionNotFound, InvalidData
from zart.localservices import free_port
from zart.service import ZartService, check_execution_id, check_lookup_id

API = "/api/v1"
ADMIN = "/zart/admin/v1"


@pytest.mark.parametrize("value", ["exec-1\n", "exec-1\r\n", "exec\n-1"])
def test_ids_are_matched_as_a_whole_string(value):
    with pytest.raises(InvalidData):
        check_execution_id(value)
    with pytest.raises(ExecutionNotFound):
        check_lookup_id(value)


def test_names_are_matched_as_a_whole_string():
    assert printable("approval")
    with pytest.raises(ma.ValidationError):
        printable("approval\n")


def test_a_schema_name_with_a_trailing_newline_is_refused():
    from zart.config import check_schema
    from zart.errors import ConfigurationError

    assert check_schema("zart_jobs") == "zart_jobs"
    with pytest.raises(ConfigurationError):
        check_schema("zart_jobs\n")


def test_an_id_with_a_trailing_newline_names_no_execution_over_http(env):
    client = create_app(settings=env.settings()).test_client()
    response = client.get(f"{API}/executions/exec-1%0A")
    assert response.status_code == 404


def test_readiness_names_what_failed_and_nothing_about_it(env):
    hidden = f"secret-role:hunter2@127.0.0.1:{free_port()}"
    client = create_app(settings=env.settings(DATABASE_URL=f"postgresql://{hidden}/none")).test_client()
    response = client.get("/readyz")
    assert response.status_code == 503
    message = response.get_json()["error"]["message"]
    assert message == "Not ready: database unavailable."
    assert "secret-role" not in response.get_data(as_text=True) and "127.0.0.1" not in response.get_data(as_text=True)


def test_readiness_is_probed_at_most_once_a_second_however_many_ask(env):
    service = ZartService(env.settings())
    calls = []
    original = service._ping_broker

    def counting(timeout: float) -> None:
        calls.append(1)
        original(timeout)

    service._ping_broker = counting  # type: ignore[method-assign]
    app = create_app(settings=env.settings())
    app.extensions["zart"].service = service
    client = app.test_client()
    threads = [threading.Thread(target=lambda: client.get("/readyz")) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert client.get("/readyz").status_code == 200
    assert len(calls) == 1
    poll(lambda: client.get("/readyz") and len(calls) == 2, timeout=3, what="the cached answer to expire")


def test_every_response_carries_security_headers_and_docs_allow_only_their_own_script(env):
    client = create_app(settings=env.settings()).test_client()
    for url in ("/healthz", f"{API}/stats", "/no-such-route", "/openapi.json", "/docs"):
        headers = client.get(url).headers
        assert headers["X-Content-Type-Options"] == "nosniff", url
        assert headers["X-Frame-Options"] == "DENY", url
        assert "frame-ancestors 'none'" in headers["Content-Security-Policy"], url
    docs = client.get("/docs")
    policy = docs.headers["Content-Security-Policy"]
    nonce = policy.split("'nonce-")[1].split("'")[0]
    page = docs.get_data(as_text=True)
    assert f'nonce="{nonce}"' in page and "unsafe-eval" not in policy
    assert "persistAuthorization: false" in page
    assert client.get(f"{API}/stats").headers["Content-Security-Policy"] == "default-src 'none'; frame-ancestors 'none'"


def test_a_replayed_restart_is_refused_and_starts_nothing(env):
    client = create_app(settings=env.settings()).test_client()
    execution_id = client.post(f"{API}/executions", json={"task": "t.typed", "data": {"amount": 1}}).get_json()[
        "execution_id"
    ]
    request = {"force": True, "expected_run_index": 0}
    first = client.post(f"{ADMIN}/executions/{execution_id}/restart", json=request)
    replayed = client.post(f"{ADMIN}/executions/{execution_id}/restart", json=request)
    assert first.status_code == 200 and first.get_json()["run_index"] == 1
    assert replayed.status_code == 409 and replayed.get_json()["error"]["code"] == "run_changed"
    assert len(client.get(f"{ADMIN}/executions/{execution_id}/runs").get_json()["runs"]) == 2


def test_restart_input_is_checked_against_the_task_schema_like_schedule(env):
    client = create_app(settings=env.settings()).test_client()
    execution_id = client.post(f"{API}/executions", json={"task": "t.typed", "data": {"amount": 1}}).get_json()[
        "execution_id"
    ]
    refused = client.post(f"{ADMIN}/executions/{execution_id}/restart", json={"data": {"amount": "x"}, "force": True})
    assert refused.status_code == 422 and refused.get_json()["error"]["code"] == "invalid_data"
    assert "amount" in refused.get_json()["error"]["message"]
    accepted = client.post(f"{ADMIN}/executions/{execution_id}/restart", json={"data": {"amount": 2}, "force": True})
    assert accepted.status_code == 200


def test_pause_rules_are_capped_and_listed_a_page_at_a_time(env, monkeypatch):
    import zart.admin

    client = create_app(settings=env.settings()).test_client()
    active = client.get(f"{ADMIN}/pause?limit=1").get_json()["total"]
    monkeypatch.setattr(zart.admin, "MAX_ACTIVE_PAUSE_RULES", active + 3)
    created = []
    try:
        for index in range(3):
            response = client.post(f"{ADMIN}/pause", json={"task": f"t.capped-{index}"})
            assert response.status_code == 201, response.get_json()
            created.append(response.get_json()["rule_id"])
        refused = client.post(f"{ADMIN}/pause", json={"task": "t.capped-over"})
        assert refused.status_code == 422 and "active pause rules" in refused.get_json()["error"]["message"]

        page = client.get(f"{ADMIN}/pause?limit=2&offset={active}").get_json()
        assert (page["total"], page["limit"], page["offset"]) == (active + 3, 2, active)
        assert [rule["rule_id"] for rule in page["rules"]] == created[:2]
        assert client.get(f"{ADMIN}/pause?limit=501").status_code == 422
    finally:
        for rule_id in created:
            client.delete(f"{ADMIN}/pause/{rule_id}")


def test_the_rules_version_moves_exactly_when_the_active_rules_change(env):
    """Running executions re-read their pause rules only when this value moves, instead of at every step."""
    from datetime import UTC, datetime, timedelta

    from zart.store import db, pause

    client = create_app(settings=env.settings()).test_client()

    def version() -> str | None:
        with db.autocommit(env.settings().database_url) as conn:
            return pause.rules_version(conn)

    start = version()
    assert version() == start
    first = client.post(f"{ADMIN}/pause", json={"task": "t.version-a"}).get_json()["rule_id"]
    with_one = version()
    assert with_one is not None and with_one != start and version() == with_one
    soon = (datetime.now(UTC) + timedelta(seconds=1)).isoformat()
    second = client.post(f"{ADMIN}/pause", json={"task": "t.version-b", "expires_at": soon}).get_json()["rule_id"]
    with_two = version()
    assert with_two != with_one
    poll(lambda: version() == with_one, timeout=5, what="the expiring rule to drop out")
    client.post(f"{ADMIN}/pause/{first}", json={})
    assert version() == start
    client.delete(f"{ADMIN}/pause/{second}")
    client.delete(f"{ADMIN}/pause/{first}")
    assert version() == start
