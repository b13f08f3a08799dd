"""The dashboard's schedules page: the list with next fire and last outcome; admins pause, resume and fire."""

from __future__ import annotations

from tests.ui.test_pages import TOKENS, csrf_of, sign_in
from zart.schedule_service import ScheduleService
from zart.schedules.spec import ScheduleSpec


def test_schedules_are_listed_and_an_admin_pauses_resumes_and_fires_them(env, service, unique):
    from flask_app import create_app

    schedules = ScheduleService(service)
    schedule_id = unique("ui-sched")
    schedules.create(ScheduleSpec(id=schedule_id, task="t.scheduled", cron="0 3 * * *", timezone="Europe/Berlin"))
    client = create_app(settings=env.settings(ZART_API_TOKENS=TOKENS)).test_client()
    sign_in(client, "admin-secret")
    listing = client.get("/ui/schedules")
    assert listing.status_code == 200 and schedule_id in listing.text and "0 3 * * *" in listing.text
    assert 'href="/ui/schedules"' in listing.text  # in the menu
    csrf = csrf_of(listing.text)

    paused = client.post(f"/ui/schedules/{schedule_id}/pause", data={"csrf": csrf})
    assert paused.status_code == 303 and schedules.get(schedule_id)["paused"] is True
    assert client.post(f"/ui/schedules/{schedule_id}/resume", data={"csrf": "forged"}).status_code == 403
    assert schedules.get(schedule_id)["paused"] is True
    client.post(f"/ui/schedules/{schedule_id}/resume", data={"csrf": csrf})
    assert schedules.get(schedule_id)["paused"] is False
    fired = client.post(f"/ui/schedules/{schedule_id}/trigger", data={"csrf": csrf})
    assert fired.status_code == 303 and "notice=schedule-triggered" in fired.headers["Location"]
    assert schedules.get(schedule_id)["last_execution_id"].startswith(f"{schedule_id}@manual-")

    reader = create_app(settings=env.settings(ZART_API_TOKENS=TOKENS)).test_client()
    sign_in(reader, "read-secret")
    seen = reader.get("/ui/schedules")
    assert schedule_id in seen.text and "Fire now" not in seen.text
    refused = reader.post(f"/ui/schedules/{schedule_id}/pause", data={"csrf": csrf_of(seen.text)})
    assert refused.status_code == 403 and schedules.get(schedule_id)["paused"] is False
    schedules.delete(schedule_id)
