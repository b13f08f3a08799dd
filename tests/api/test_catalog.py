"""Counts by status and the task catalog."""

from __future__ import annotations

from tests.api.conftest import API, schedule

STATUSES = ["pending", "running", "waiting", "completed", "failed", "cancelled"]


def test_stats_count_every_status_including_zeros(client):
    before = client.get(f"{API}/stats").get_json()
    assert list(before) == STATUSES and all(isinstance(n, int) and n >= 0 for n in before.values())
    execution_id = schedule(client, "t.typed", {"amount": 1})
    client.post(f"{API}/executions/{execution_id}/cancel")
    after = client.get(f"{API}/stats").get_json()
    assert sum(after.values()) == sum(before.values()) + 1
    assert after["cancelled"] >= before["cancelled"] + 1 or after["completed"] >= before["completed"] + 1


def test_tasks_lists_the_catalog_with_schemas(client):
    response = client.get(f"{API}/tasks")
    assert response.status_code == 200
    tasks = {task["name"]: task for task in response.get_json()["tasks"]}
    assert {"t.three-steps", "t.event", "t.typed"} <= set(tasks)
    assert tasks["t.typed"]["schema"]["required"] == ["amount"]
    assert tasks["t.three-steps"]["schema"] is None
    assert tasks["t.typed"]["last_seen_at"].endswith("Z")
