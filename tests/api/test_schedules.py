"""/api/v1/schedules: create, read, change, fire and delete; bad input is 422 and creates nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from tests.api.conftest import API, assert_error, wait_until_status

BAD_DEFINITIONS = [
    ({"cron": "61 * * * *"}, "cron"),
    ({"cron": "*/5 * * * *", "timezone": "Mars/Olympus_Mons"}, "timezone"),
    ({"every": 0}, "every"),
    ({"every": -10}, "every"),
    ({"every": 2.5}, "every"),
    ({"every": 1e30}, "every"),
    ({"cron": "*/5 * * * *", "task": "no.such-task"}, "no.such-task"),
    ({"every": 60, "start_at": "2026-05-01T00:00:00Z", "end_at": "2026-04-01T00:00:00Z"}, "end_at"),
    ({"every": 60, "cron": "* * * * *"}, "exactly one"),
    ({}, "exactly one"),
    ({"every": 60, "overlap": "queue"}, "overlap"),
    ({"every": 60, "start_at": "2026-05-01T00:00:00"}, "start_at"),
    # in UTC these leave years 1 to 9999: Postgres would store them, Python could not read them back
    ({"cron": "0 * * * *", "end_at": "9999-12-31T23:59:00-05:00"}, "end_at"),
    ({"cron": "0 * * * *", "start_at": "0001-01-01T00:00:00+05:00"}, "start_at"),
    ({"every": 60, "data": {"amount": "ten"}, "task": "t.typed"}, "amount"),
    # bounds out of the range datetime and PostgreSQL hold (a 500; the year-9999 start was even created)
    ({"every": 60, "start_at": "0001-01-01T00:00:00+14:00"}, "start_at"),
    ({"every": 60, "end_at": "9999-12-31T23:59:59-14:00"}, "end_at"),
    ({"every": 60, "start_at": "9999-12-31T23:59:59+00:00"}, "start_at"),
]


def body(schedule_id: str, **fields: object) -> dict[str, object]:
    return {"schedule_id": schedule_id, "task": "t.scheduled", **fields}


@pytest.mark.parametrize(("fields", "mentioned"), BAD_DEFINITIONS)
def test_bad_definitions_are_refused_and_create_nothing(client, unique, fields, mentioned):
    schedule_id = unique("bad")
    response = client.post(f"{API}/schedules", json=body(schedule_id, **fields))
    expected = "task_not_registered" if mentioned == "no.such-task" else "invalid_data"
    error = assert_error(response, 422, expected)
    assert mentioned in error["message"]
    assert_error(client.get(f"{API}/schedules/{schedule_id}"), 404, "schedule_not_found")


def test_update_with_null_clears_a_bound_and_refuses_what_cannot_be_cleared(client, unique):
    """`null` removes an optional field (it was taken for "not given": the bound stayed and the answer was 200)."""
    schedule_id = unique("bounded")
    start, end = datetime.now(UTC) + timedelta(days=2), datetime.now(UTC) + timedelta(days=30)
    created = client.post(
        f"{API}/schedules",
        json=body(schedule_id, every=3600, start_at=start.isoformat(), end_at=end.isoformat(), description="d"),
    )
    assert created.status_code == 201, created.get_json()

    cleared = client.patch(
        f"{API}/schedules/{schedule_id}", json={"end_at": None, "start_at": None, "description": None}
    )
    assert cleared.status_code == 200, cleared.get_json()
    view = client.get(f"{API}/schedules/{schedule_id}").get_json()
    assert (view["end_at"], view["start_at"], view["description"]) == (None, None, None)
    assert datetime.fromisoformat(view["next_tick"]) < start  # no longer held back to the old start

    for field in ("task", "overlap", "catch_up", "jitter", "timezone", "data"):
        assert_error(client.patch(f"{API}/schedules/{schedule_id}", json={field: None}), 422, "invalid_data")
    assert client.get(f"{API}/schedules/{schedule_id}").get_json() | {"upcoming": None} == view | {"upcoming": None}


def test_a_backfill_window_out_of_range_is_invalid_data(client, unique):
    schedule_id = unique("ancient")
    assert client.post(f"{API}/schedules", json=body(schedule_id, every=3600, paused=True)).status_code == 201
    window = {"from": "0001-01-01T00:00:00+14:00", "to": "2026-01-01T00:00:00Z"}
    assert_error(client.post(f"{API}/schedules/{schedule_id}/backfill", json=window), 422, "invalid_data")


def test_create_read_update_pause_resume_delete(client, unique):
    schedule_id = unique("nightly")
    created = client.post(
        f"{API}/schedules", json=body(schedule_id, cron="30 2 * * *", timezone="Europe/Berlin", data={"seconds": 0})
    )
    assert created.status_code == 201, created.get_json()
    view = created.get_json()
    assert view["schedule_id"] == schedule_id and view["source"] == "api" and view["overlap"] == "skip"
    assert len(view["upcoming"]) == 5 and view["upcoming"][0] == view["next_fire_at"]
    assert all(moment.endswith(":30:00Z") for moment in view["upcoming"])  # 02:30 Berlin is hh:30 UTC
    assert_error(client.post(f"{API}/schedules", json=body(schedule_id, every=5)), 409, "schedule_already_exists")

    updated = client.patch(f"{API}/schedules/{schedule_id}", json={"every": 3600, "overlap": "allow_all"})
    assert updated.status_code == 200, updated.get_json()
    assert updated.get_json()["cron"] is None and updated.get_json()["every"] == 3600
    assert_error(client.patch(f"{API}/schedules/{schedule_id}", json={"every": 0}), 422, "invalid_data")
    assert client.get(f"{API}/schedules/{schedule_id}").get_json()["every"] == 3600  # the refusal changed nothing

    paused = client.post(f"{API}/schedules/{schedule_id}/pause").get_json()
    assert paused["paused"] is True and paused["upcoming"] == []
    resumed = client.post(f"{API}/schedules/{schedule_id}/resume").get_json()
    assert resumed["paused"] is False and resumed["next_fire_at"]

    listed = client.get(f"{API}/schedules", query_string={"task": "t.scheduled", "limit": 500}).get_json()
    assert schedule_id in [s["schedule_id"] for s in listed["schedules"]]
    deleted = client.delete(f"{API}/schedules/{schedule_id}")
    assert deleted.status_code == 200 and deleted.get_json() == {"schedule_id": schedule_id, "deleted": True}
    assert_error(client.get(f"{API}/schedules/{schedule_id}"), 404, "schedule_not_found")
    assert_error(client.post(f"{API}/schedules/{schedule_id}/trigger"), 404, "schedule_not_found")


def test_trigger_and_backfill_fire_once_per_tick(client, api_worker, unique):
    schedule_id = unique("hourly")
    start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=5)
    client.post(f"{API}/schedules", json=body(schedule_id, every=3600, overlap="allow_all", start_at=start.isoformat()))

    triggered = client.post(f"{API}/schedules/{schedule_id}/trigger").get_json()
    assert len(triggered["fired"]) == 1 and triggered["fired"][0]["execution_id"].startswith(f"{schedule_id}@manual-")
    wait_until_status(client, triggered["fired"][0]["execution_id"], "completed")

    window = {"from": start.isoformat(), "to": (start + timedelta(hours=2)).isoformat()}
    first = client.post(f"{API}/schedules/{schedule_id}/backfill", json=window).get_json()
    assert [f["scheduled_for"] for f in first["fired"]] == [
        (start + timedelta(hours=h)).strftime("%Y-%m-%dT%H:%M:%SZ") for h in range(3)
    ]
    again = client.post(f"{API}/schedules/{schedule_id}/backfill", json=window).get_json()
    assert again["fired"] == [] and sorted(again["already_fired"]) == sorted(f["execution_id"] for f in first["fired"])

    detail = client.get(f"/zart/admin/v1/executions/{first['fired'][0]['execution_id']}/detail").get_json()
    assert detail["schedule_id"] == schedule_id and detail["scheduled_for"] == first["fired"][0]["scheduled_for"]

    future = {"from": start.isoformat(), "to": (datetime.now(UTC) + timedelta(hours=1)).isoformat()}
    assert_error(client.post(f"{API}/schedules/{schedule_id}/backfill", json=future), 422, "invalid_data")
    backwards = {"from": window["to"], "to": window["from"]}
    assert_error(client.post(f"{API}/schedules/{schedule_id}/backfill", json=backwards), 422, "invalid_data")


def test_metrics_report_the_firing_lag(client):
    text = client.get("/metrics").get_data(as_text=True)
    assert "zart_schedule_firing_lag_seconds" in text and "zart_schedule_overdue_seconds" in text


def test_the_celery_target_workflow_is_started_by_schedules_only(client):
    body = {"task": "zart.schedules.celery-task", "data": {"task": "legacy.add", "args": [], "kwargs": {}}}
    error = assert_error(client.post(f"{API}/executions", json=body), 422, "invalid_data")
    assert "schedules only" in error["message"]


def test_a_celery_target_is_created_with_its_args_kwargs_and_queue(client, unique):
    schedule_id = unique("celery")
    fields = {"target_kind": "celery", "args": [1], "kwargs": {"b": 2}, "queue": "legacy", "every": 3600}
    created = client.post(f"{API}/schedules", json=body(schedule_id, **{**fields, "task": "legacy.add"}))
    assert created.status_code == 201, created.get_json()
    view = created.get_json()
    assert (view["target_kind"], view["task"], view["args"], view["kwargs"], view["data"]) == (
        "celery",
        "legacy.add",
        [1],
        {"b": 2},
        {"queue": "legacy"},
    )
    client.delete(f"{API}/schedules/{schedule_id}")
    for refused in ({"every": 60, "queue": "legacy"}, {"every": 60, "args": [1]}):
        other = unique("zart-with-celery-fields")
        assert_error(client.post(f"{API}/schedules", json=body(other, **refused)), 422, "invalid_data")
        assert_error(client.get(f"{API}/schedules/{other}"), 404, "schedule_not_found")
    bad_queue = body(unique("bad-queue"), every=60, target_kind="celery", task="legacy.add", queue="no spaces")
    assert_error(client.post(f"{API}/schedules", json=bad_queue), 422, "invalid_data")


def test_a_backfill_window_at_the_start_of_year_1_is_invalid_data(client, unique):
    schedule_id = unique("ancient")
    assert client.post(f"{API}/schedules", json=body(schedule_id, cron="0 * * * *")).status_code == 201
    for start in ("0001-01-01T00:00:00Z", "0001-01-01T00:00:00+05:00"):
        window = {"from": start, "to": "0001-01-02T00:00:00Z"}
        error = assert_error(client.post(f"{API}/schedules/{schedule_id}/backfill", json=window), 422, "invalid_data")
        assert "must lie between" in error["message"]


def test_a_jittered_first_tick_fires_when_announced_whatever_the_offset_its_start_was_given_in(client, unique):
    """A tick's jitter is derived from the tick as an instant: a start given as +02:00 gave the first tick one
    jitter when it was created (its stored next_fire_at) and another when read back from the database, which is
    what the sweepers fire by."""
    schedule_id = unique("jitter-offset")
    start = (datetime.now(UTC) + timedelta(days=1)).replace(microsecond=0).astimezone(timezone(timedelta(hours=2)))
    created = client.post(
        f"{API}/schedules", json=body(schedule_id, every=3600, jitter=600, start_at=start.isoformat())
    )
    assert created.status_code == 201, created.get_json()
    view = created.get_json()
    assert view["next_fire_at"] == view["upcoming"][0]
