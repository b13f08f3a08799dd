"""Delivering events over HTTP to executions parked on `ctx.wait_for_event`."""

from __future__ import annotations

from tests.api.conftest import API, assert_error, schedule, wait_until_status


def parked(client, journal) -> str:
    execution_id = schedule(client, "t.event", journal())
    wait_until_status(client, execution_id, "waiting")
    return execution_id


def test_any_json_body_is_delivered_as_the_payload(client, api_worker, journal):
    execution_id = parked(client, journal)
    assert client.get(f"{API}/executions/{execution_id}").get_json()["waiting_for_event"] == "approval"
    payload = {"approved": True, "reviewer": "jane@example.com", "notes": ["a", 1, None]}
    response = client.post(f"{API}/events/{execution_id}/approval", json=payload)
    assert response.status_code == 200
    assert response.get_json() == {"status": "delivered", "execution_id": execution_id, "event_name": "approval"}
    done = client.get(f"{API}/executions/{execution_id}/wait?timeout=30").get_json()
    assert done["status"] == "completed" and done["output"] == {"payload": payload}


def test_a_scalar_body_and_null_are_payloads_too(client, api_worker, journal):
    first, second = parked(client, journal), parked(client, journal)
    assert client.post(f"{API}/events/{first}/approval", data=b"42").status_code == 200
    assert client.post(f"{API}/events/{second}/approval", data=b"null").status_code == 200
    outputs = [client.get(f"{API}/executions/{i}/wait?timeout=30").get_json()["output"] for i in (first, second)]
    assert outputs == [{"payload": 42}, {"payload": None}]


def test_an_event_nobody_waits_for_is_a_conflict(client, api_worker, journal):
    execution_id = parked(client, journal)
    error = assert_error(client.post(f"{API}/events/{execution_id}/other", json={}), 409, "not_waiting_for_event")
    assert "other" in error["message"]
    finished = schedule(client, "t.fails", {})
    client.get(f"{API}/executions/{finished}/wait?timeout=30")
    assert_error(client.post(f"{API}/events/{finished}/approval", json={}), 409, "not_waiting_for_event")


def test_an_event_for_an_unknown_execution_is_404(client):
    assert_error(client.post(f"{API}/events/exec-missing/approval", json={}), 404, "execution_not_found")


def test_a_body_that_is_not_json_is_invalid_data_and_delivers_nothing(client, api_worker, journal):
    execution_id = parked(client, journal)
    for raw in (b"approved=yes", b"{'single': 'quotes'}", b"\xc3\x28", b"", b"  \n"):
        response = client.post(f"{API}/events/{execution_id}/approval", data=raw, content_type="application/json")
        assert_error(response, 422, "invalid_data")
    assert client.get(f"{API}/executions/{execution_id}").get_json()["status"] == "waiting"


def test_an_event_name_with_a_slash_is_delivered(client, api_worker):
    """A name may hold `/` (the document's pattern allows it); the route stopped at it and answered 404."""
    execution_id = schedule(client, "t.named-event", {"event": "orders/approved"})
    wait_until_status(client, execution_id, "waiting")
    response = client.post(f"{API}/events/{execution_id}/orders/approved", json={"ok": True})
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["event_name"] == "orders/approved"
    encoded = schedule(client, "t.named-event", {"event": "a/b"})
    wait_until_status(client, encoded, "waiting")
    assert client.post(f"{API}/events/{encoded}/a%2Fb", json=1).status_code == 200
    for done, payload in ((execution_id, {"ok": True}), (encoded, 1)):
        assert client.get(f"{API}/executions/{done}/wait?timeout=30").get_json()["output"] == {"payload": payload}
