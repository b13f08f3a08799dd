"""Deeply nested JSON: refused at the door (64 levels) for input, events and restart input; and a claimed row
that cannot be decoded anyway (written before the cap, or by hand) fails once, with the reason, never loops."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import text

from flask_app import create_app
from zart.schema import MAX_JSON_DEPTH, nesting_depth
from zart.store import db

API = "/api/v1"
ADMIN = "/zart/admin/v1"


def nested(depth: int) -> Any:
    """An object whose arrays and objects nest `depth` deep in total."""
    value: Any = 1
    for _ in range(depth - 1):
        value = [value]
    return {"deep": value}


@pytest.fixture()
def client(env):
    return create_app(settings=env.settings()).test_client()


def test_nesting_depth_counts_containers_without_recursing():
    assert [nesting_depth(v) for v in (1, [], {}, [[1]], {"a": {"b": []}})] == [0, 1, 1, 2, 3]
    assert nesting_depth(nested(MAX_JSON_DEPTH)) == MAX_JSON_DEPTH
    assert nesting_depth(nested(100_000)) == MAX_JSON_DEPTH + 1  # stops counting past the cap


def test_input_events_and_restart_input_are_capped_at_the_documented_depth(client, service):
    allowed = client.post(f"{API}/executions", json={"task": "t.event", "data": nested(MAX_JSON_DEPTH)})
    assert allowed.status_code == 201, allowed.get_json()
    execution_id = allowed.get_json()["execution_id"]
    before = service.stats()

    refused = client.post(f"{API}/executions", json={"task": "t.event", "data": nested(MAX_JSON_DEPTH + 1)})
    event = client.post(f"{API}/events/{execution_id}/approval", json=nested(MAX_JSON_DEPTH + 1))
    restart = client.post(
        f"{ADMIN}/executions/{execution_id}/restart", json={"data": nested(MAX_JSON_DEPTH + 1), "force": True}
    )
    huge = client.post(f"{API}/executions", data=b'{"task": "t.event", "data": ' + b"[" * 900 + b"]" * 900 + b"}")

    for response in (refused, event, restart, huge):
        assert response.status_code == 422, response.get_json()
        assert response.get_json()["error"]["code"] == "invalid_data"
    assert "nested" in refused.get_json()["error"]["message"]
    assert service.stats() == before
    assert len(client.get(f"{ADMIN}/executions/{execution_id}/runs").get_json()["runs"]) == 1


def test_a_claimed_row_that_cannot_be_decoded_fails_once_with_the_reason(service, start_worker, unique):
    execution_id = unique("undecodable")
    with db.transaction(service.settings.database_url) as conn:
        conn.execute(
            text(
                "INSERT INTO executions (id, task, status, input, dispatched_at, created_at, updated_at) "
                "VALUES (:id, 't.three-steps', 'pending', CAST(:doc AS jsonb), now(), now(), now())"
            ),
            {"id": execution_id, "doc": '{"journal": ' + "[" * 3000 + "]" * 3000 + "}"},
        )
        conn.execute(
            text(
                "INSERT INTO runs (execution_id, run_index, trigger, status, input, created_at) "
                "SELECT id, 0, 'initial', 'pending', input, now() FROM executions WHERE id = :id"
            ),
            {"id": execution_id},
        )
    start_worker()
    service.publish(execution_id)

    finished, row = service.wait(execution_id, 30)

    assert finished and row["status"] == "failed", row
    assert row["error"]["type"] == "UndecodableExecution"
    assert "decoded" in row["error"]["message"]
    assert row["attempt"] == 1
