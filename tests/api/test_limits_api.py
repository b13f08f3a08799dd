"""The limits routes under the admin prefix, and the schedule body's flow-control fields."""

from __future__ import annotations

from flask_app import create_app
from tests.api.conftest import assert_error

ADMIN = "/zart/admin/v1"


def test_limits_routes_set_show_pause_resume_delete(env, unique):
    client = create_app(settings=env.settings()).test_client()
    name = unique("api-limit")
    created = client.put(f"{ADMIN}/limits/{name}", json={"concurrency": 2, "rate": "10/s"})
    assert created.status_code == 200, created.get_json()
    assert (created.get_json()["concurrency"], created.get_json()["rate"]) == (2, "10/s")
    assert client.get(f"{ADMIN}/limits/{name}").get_json()["burst"] == 10

    # a fraction or a string is not a whole number: it was cast (2.5 stored as 2, "3" as 3) and answered 200
    fractions = ({"concurrency": 2.5}, {"concurrency": "3"}, {"rate": "5/s", "burst": 1.5}, {"key_concurrency": 0.5})
    for bad in ({"rate": "100/fortnight"}, {"concurrency": -1}, {"concurrency": 0}, {"bogus": 1}, {}, *fractions):
        assert_error(client.put(f"{ADMIN}/limits/{name}", json=bad), 422, "invalid_data")
    assert client.get(f"{ADMIN}/limits/{name}").get_json()["concurrency"] == 2  # nothing changed

    paused = client.post(f"{ADMIN}/limits/{name}/pause", json={"triggered_by": "ops"})
    assert paused.status_code == 200 and paused.get_json()["paused"] is True
    assert paused.get_json()["updated_by"] == "api"  # the token's name; the body's name is only on_behalf_of
    listed = client.get(f"{ADMIN}/limits").get_json()["limits"]
    assert any(entry["name"] == name and entry["paused"] for entry in listed)
    assert client.post(f"{ADMIN}/limits/{name}/resume", json={}).get_json()["paused"] is False

    assert client.delete(f"{ADMIN}/limits/{name}").get_json() == {"name": name, "deleted": True, "released": 0}
    assert_error(client.get(f"{ADMIN}/limits/{name}"), 404, "limit_not_found")
    assert_error(client.post(f"{ADMIN}/limits/{name}/pause", json={}), 404, "limit_not_found")


def test_limits_routes_need_a_token_and_changes_need_the_admin_scope(env, unique):
    client = create_app(settings=env.settings(ZART_API_TOKENS="viewer:read:tok1,oncall:admin:tok2")).test_client()
    name = unique("scoped")
    assert_error(client.get(f"{ADMIN}/limits"), 401, "unauthorized")
    reader, admin = {"Authorization": "Bearer tok1"}, {"Authorization": "Bearer tok2"}
    assert client.get(f"{ADMIN}/limits", headers=reader).status_code == 200
    assert_error(client.put(f"{ADMIN}/limits/{name}", json={"concurrency": 1}, headers=reader), 403, "forbidden")
    changed = client.put(f"{ADMIN}/limits/{name}", json={"concurrency": 1}, headers=admin)
    assert changed.status_code == 200 and changed.get_json()["updated_by"] == "oncall"
    assert_error(client.post(f"{ADMIN}/limits/{name}/pause", json={}, headers=reader), 403, "forbidden")
    assert client.delete(f"{ADMIN}/limits/{name}", headers=admin).status_code == 200


def test_schedule_body_flow_fields(env, unique):
    client = create_app(settings=env.settings()).test_client()
    key = unique("dedup")
    body = {"task": "flow.plain", "data": {"v": 1}, "dedup_key": key, "debounce": 30, "priority": 3}
    first = client.post("/api/v1/executions", json=body)
    again = client.post("/api/v1/executions", json={**body, "data": {"v": 2}})
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.get_json()["execution_id"] == again.get_json()["execution_id"]
    for bad in ({"debounce": 5}, {"dedup_key": key, "debounce": 0}, {"priority": "high"}, {"priority": 10**9}):
        assert_error(
            client.post("/api/v1/executions", json={"task": "flow.plain", "data": {}, **bad}), 422, "invalid_data"
        )
    missing = client.post("/api/v1/executions", json={"task": "flow.keyed", "data": {"customer": {}}})
    assert_error(missing, 422, "invalid_data")
    assert client.post(f"/api/v1/executions/{first.get_json()['execution_id']}/cancel").status_code == 200


def test_a_limit_name_with_a_slash_is_reachable(env, unique):
    """A limit is named after a task (or a queue, or a shared name), and a task name may hold `/`: the route's
    segment stopped at the slash, so such a limit could not be shown, set, paused or deleted over HTTP."""
    client = create_app(settings=env.settings()).test_client()
    name = unique("team") + "/billing"
    created = client.put(f"{ADMIN}/limits/{name}", json={"concurrency": 2})
    assert created.status_code == 200, created.get_json()
    assert created.get_json()["name"] == name
    assert client.get(f"{ADMIN}/limits/{name}").get_json()["concurrency"] == 2
    assert client.post(f"{ADMIN}/limits/{name}/pause", json={}).get_json()["paused"] is True
    assert client.post(f"{ADMIN}/limits/{name}/resume", json={}).get_json()["paused"] is False
    assert client.delete(f"{ADMIN}/limits/{name}").get_json()["deleted"] is True
    assert_error(client.get(f"{ADMIN}/limits/{name}"), 404, "limit_not_found")
