"""Scheduling, status, listing, waiting and cancelling through the real app, a real worker and Postgres."""

from __future__ import annotations

import re

import pytest

from tests.api.conftest import API, assert_error, schedule, status_of, wait_until_status
from zart import views

ISO_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


def test_schedule_returns_201_and_the_execution_completes_with_its_output(client, api_worker, journal):
    response = client.post(f"{API}/executions", json={"task": "t.three-steps", "data": journal()})
    assert response.status_code == 201
    body = response.get_json()
    assert tuple(body) == views.SCHEDULED_FIELDS
    assert body["task"] == "t.three-steps" and body["status"] == "pending"
    assert ISO_Z.match(body["created_at"])

    done = client.get(f"{API}/executions/{body['execution_id']}/wait?timeout=30")
    assert done.status_code == 200
    assert done.get_json()["output"] == {"sum": 6}

    row = status_of(client, body["execution_id"])
    assert tuple(row) == views.STATUS_FIELDS
    assert row["status"] == "completed" and row["steps_completed"] == 3 and row["error"] is None
    assert ISO_Z.match(row["started_at"]) and ISO_Z.match(row["completed_at"])


def test_same_idempotency_key_and_task_returns_the_existing_execution(client, unique):
    key = unique("key")
    first = client.post(f"{API}/executions", json={"task": "t.typed", "data": {"amount": 1}, "idempotency_key": key})
    again = client.post(f"{API}/executions", json={"task": "t.typed", "data": {"amount": 2}, "idempotency_key": key})
    assert first.status_code == 201
    assert again.status_code == 200
    assert again.get_json()["execution_id"] == first.get_json()["execution_id"]


def test_a_repeated_idempotency_key_never_replaces_the_input_even_with_debounce(client, service, unique):
    key = unique("key")
    body = {"task": "t.typed", "idempotency_key": key, "debounce": 60}
    first = client.post(f"{API}/executions", json={**body, "data": {"amount": 1}, "dedup_key": unique("d")})
    again = client.post(f"{API}/executions", json={**body, "data": {"amount": 2}, "dedup_key": unique("d")})
    assert first.status_code == 201 and again.status_code == 200, again.get_json()
    execution_id = first.get_json()["execution_id"]
    assert again.get_json()["execution_id"] == execution_id
    assert service.status(execution_id)["input"] == {"amount": 1}
    service.cancel(execution_id)


def test_same_idempotency_key_with_another_task_is_a_conflict(client, unique, journal):
    key = unique("key")
    schedule(client, "t.typed", {"amount": 1}, idempotency_key=key)
    response = client.post(
        f"{API}/executions", json={"task": "t.three-steps", "data": journal(), "idempotency_key": key}
    )
    assert_error(response, 409, "execution_already_exists")


def test_unknown_task_is_refused(client):
    assert_error(
        client.post(f"{API}/executions", json={"task": "no.such-task", "data": {}}), 422, "task_not_registered"
    )


@pytest.mark.parametrize(
    "body",
    [
        {"task": "t.typed"},
        {"task": "t.typed", "data": [1, 2]},
        {"task": "t.typed", "data": "text"},
        {"task": "t.typed", "data": None},
        {"task": "t.typed", "data": {"amount": "ten"}},
        {"task": "t.typed", "data": {}},
        {"data": {"amount": 1}},
        {"task": "", "data": {"amount": 1}},
        {"task": "t.typed", "data": {"amount": 1}, "unexpected": True},
        {"task": "t.typed", "data": {"amount": 1, "note": "nul \u0000 inside"}},
        {"task": "t.typed", "data": {"amount": 1}, "priority": 1.5},  # was cast to 1
        {"task": "t.typed", "data": {"amount": 1}, "priority": "5"},
    ],
)
def test_invalid_schedule_bodies_are_invalid_data(client, body):
    assert_error(client.post(f"{API}/executions", json=body), 422, "invalid_data")


@pytest.mark.parametrize("raw", [b"{not json", b"[1,", b'{"task": "t.typed", "data": {"amount": NaN}}', b"\xff\xfe"])
def test_a_body_that_is_not_json_is_invalid_data(client, raw):
    response = client.post(f"{API}/executions", data=raw, content_type="application/json")
    assert_error(response, 422, "invalid_data")


def test_a_json_body_without_the_json_content_type_is_accepted(client):
    response = client.post(f"{API}/executions", data=b'{"task": "t.typed", "data": {"amount": 3}}')
    assert response.status_code == 201


def test_status_of_unknown_and_malformed_ids(client):
    error = assert_error(client.get(f"{API}/executions/exec-missing"), 404, "execution_not_found")
    assert "exec-missing" in error["message"]
    # an id no execution could have is simply not found, like any other
    assert_error(client.get(f"{API}/executions/-bad%20id"), 404, "execution_not_found")
    error = assert_error(client.get(f"{API}/executions/{'x' * 5000}"), 404, "execution_not_found")
    assert len(error["message"]) < 300


def test_list_orders_pages_and_filters(client):
    ids = [schedule(client, "t.typed", {"amount": n}) for n in range(3)]
    newest = client.get(f"{API}/executions?task=t.typed&limit=3").get_json()
    assert [e["execution_id"] for e in newest["executions"]] == ids[::-1]
    assert newest["limit"] == 3 and newest["offset"] == 0 and newest["total"] >= 3
    assert tuple(newest["executions"][0]) == views.SUMMARY_FIELDS

    total = newest["total"]
    oldest_last = client.get(f"{API}/executions?task=t.typed&order=asc&limit=2&offset={total - 2}").get_json()
    assert [e["execution_id"] for e in oldest_last["executions"]] == ids[1:]
    assert oldest_last["total"] == total and oldest_last["offset"] == total - 2

    second = client.get(f"{API}/executions?task=t.typed&limit=1&offset=1").get_json()
    assert [e["execution_id"] for e in second["executions"]] == [ids[1]]

    default = client.get(f"{API}/executions").get_json()
    assert default["limit"] == 50 and default["offset"] == 0 and len(default["executions"]) <= 50

    statuses = {e["status"] for e in client.get(f"{API}/executions?status=pending&limit=500").get_json()["executions"]}
    assert statuses <= {"pending"}


@pytest.mark.parametrize(
    "query",
    ["limit=0", "limit=501", "limit=ten", "offset=-1", "order=sideways", "status=sleeping", "task="],
)
def test_invalid_list_parameters_are_invalid_data(client, query):
    assert_error(client.get(f"{API}/executions?{query}"), 422, "invalid_data")


def test_list_accepts_the_maximum_limit(client):
    assert client.get(f"{API}/executions?limit=500").get_json()["limit"] == 500


def test_wait_times_out_with_202_while_the_execution_is_still_waiting(client, api_worker, journal):
    execution_id = schedule(client, "t.event", journal())
    wait_until_status(client, execution_id, "waiting")
    response = client.get(f"{API}/executions/{execution_id}/wait?timeout=1")
    assert response.status_code == 202
    assert response.get_json() == {
        "execution_id": execution_id,
        "status": "waiting",
        "message": "Timeout reached. Execution is still running.",
    }


def test_wait_returns_the_final_state_of_a_failed_execution(client, api_worker):
    execution_id = schedule(client, "t.fails", {})
    response = client.get(f"{API}/executions/{execution_id}/wait")
    assert response.status_code == 200
    body = response.get_json()
    assert tuple(body) == views.FINISHED_FIELDS
    assert body["status"] == "failed" and body["output"] is None
    assert body["error"]["type"] == "KeyError" and ISO_Z.match(body["completed_at"])


@pytest.mark.parametrize("timeout", ["-1", "3601", "soon"])
def test_wait_refuses_invalid_timeouts(client, timeout):
    assert_error(client.get(f"{API}/executions/exec-any/wait?timeout={timeout}"), 422, "invalid_data")


def test_wait_for_an_unknown_execution_is_404(client):
    assert_error(client.get(f"{API}/executions/exec-missing/wait?timeout=0"), 404, "execution_not_found")


def test_cancel_a_waiting_execution_then_again(client, api_worker, journal):
    execution_id = schedule(client, "t.event", journal())
    wait_until_status(client, execution_id, "waiting")
    response = client.post(f"{API}/executions/{execution_id}/cancel")
    assert response.status_code == 200
    assert response.get_json() == {"execution_id": execution_id, "status": "cancelled"}
    assert status_of(client, execution_id)["status"] == "cancelled"
    assert_error(client.post(f"{API}/executions/{execution_id}/cancel"), 409, "execution_already_finished")


def test_cancel_a_running_execution_stops_it_at_the_next_step(client, api_worker, journal, log_dir):
    release = log_dir / "release-cancel"
    execution_id = schedule(client, "t.blocking", {**journal(), "release": str(release)})
    wait_until_status(client, execution_id, "running")
    response = client.post(f"{API}/executions/{execution_id}/cancel")
    assert response.status_code == 200
    release.touch()
    finished = client.get(f"{API}/executions/{execution_id}/wait?timeout=30").get_json()
    assert finished["status"] == "cancelled" and finished["output"] is None


def test_cancel_an_unknown_execution_is_404(client):
    assert_error(client.post(f"{API}/executions/exec-missing/cancel"), 404, "execution_not_found")


@pytest.mark.parametrize("query", ["stauts=pending", "=x"])
def test_unknown_list_parameters_are_invalid_data(client, query):
    assert_error(client.get(f"{API}/executions?{query}"), 422, "invalid_data")


@pytest.mark.parametrize(
    "url",
    [
        "/executions?status=running&status=failed",
        "/executions?limit=5&limit=6",
        "/executions/exec-missing/wait?timeout=0&timeout=30",
        "/schedules?task=a&task=b",
    ],
)
def test_a_query_parameter_given_twice_is_invalid_data(client, url):
    """Only the first value was used: `status=running&status=failed` silently listed the running ones only."""
    error = assert_error(client.get(f"{API}{url}"), 422, "invalid_data")
    assert "more than once" in error["message"]
