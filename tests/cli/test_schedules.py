"""`zart schedules …` end to end: the real command against the session's Postgres (and a worker for firing)."""

from __future__ import annotations

import pytest

from tests.harness import poll

BAD = [
    (["--cron", "*/5 * * *"], "cron"),
    (["--cron", "*/5 * * * *", "--tz", "Europe/Atlantis"], "timezone"),
    (["--every", "0"], "every"),
    (["--every", "-3"], "every"),
    (["--every", "60", "--start", "2026-05-01T00:00:00Z", "--end", "2026-04-01T00:00:00Z"], "end_at"),
    (["--every", "60", "--start", "2026-05-01T00:00:00"], "timezone offset"),
    (["--every", "60", "--overlap", "sometimes"], "overlap"),
]


@pytest.mark.parametrize(("options", "mentioned"), BAD)
def test_bad_input_exits_1_and_creates_nothing(zart, unique, options, mentioned):
    schedule_id = unique("bad")
    result = zart("schedules", "create", schedule_id, "--task", "t.scheduled", *options)
    assert result.returncode == 1, result
    assert mentioned in result.stderr and result.stdout == ""
    assert zart("schedules", "show", schedule_id).returncode == 3


def test_unknown_target_exits_1(zart, unique):
    schedule_id = unique("orphan")
    result = zart("schedules", "create", schedule_id, "--task", "no.such-task", "--every", "60")
    assert result.returncode == 1 and "no.such-task" in result.stderr
    assert zart("schedules", "show", schedule_id, "--json").returncode == 3


def test_create_list_trigger_and_delete(zart, worker, unique):
    schedule_id = unique("cli")
    created = zart(
        "schedules",
        "create",
        schedule_id,
        "--task",
        "t.scheduled",
        "--cron",
        "0 3 * * *",
        "--tz",
        "Europe/Berlin",
        "--data",
        '{"seconds": 0}',
        "--json",
    )
    assert created.returncode == 0, created.stderr
    view = created.json()
    assert view["source"] == "cli" and view["timezone"] == "Europe/Berlin" and len(view["upcoming"]) == 5

    fired = zart("schedules", "trigger", schedule_id, "--json")
    assert fired.returncode == 0, fired.stderr
    execution_id = fired.json()["fired"][0]["execution_id"]
    assert zart("wait", execution_id, "--timeout", "30").returncode == 0

    def listed() -> str | None:
        result = zart("schedules", "list", "--task", "t.scheduled", "--limit", "500")
        line = next((line for line in result.lines if line.startswith(schedule_id)), "")
        return line if "completed" in line else None

    line = poll(listed, timeout=20, what="the last outcome in the list")
    assert "0 3 * * *" in line and "active" in line

    paused = zart("schedules", "pause", schedule_id)
    assert paused.returncode == 0 and "state: paused" in paused.stdout
    assert zart("schedules", "delete", schedule_id).returncode == 0
    assert zart("schedules", "trigger", schedule_id).returncode == 3
