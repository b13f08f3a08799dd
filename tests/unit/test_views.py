"""The shared JSON shapes: contract field names, and timestamps as ISO 8601 UTC with a Z."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from zart import views

MOMENT = datetime(2026, 4, 4, 10, 23, 11, 654321, tzinfo=UTC)


def test_iso_is_utc_with_a_z_and_whole_seconds():
    assert views.iso(MOMENT) == "2026-04-04T10:23:11Z"
    assert views.iso(MOMENT.astimezone(timezone(timedelta(hours=5, minutes=30)))) == "2026-04-04T10:23:11Z"
    assert views.iso(MOMENT.replace(tzinfo=None)) == "2026-04-04T10:23:11Z"
    assert views.iso(None) is None


def test_status_view_keeps_the_contract_fields_only():
    row = {
        "execution_id": "exec-1",
        "task": "onboarding",
        "status": "running",
        "steps_completed": 2,
        "steps_running": 1,
        "current_step": "provision",
        "waiting_for_event": None,
        "started_at": MOMENT,
        "completed_at": None,
        "output": None,
        "error": None,
        "input": {"secret": "not for display"},
        "run_index": 0,
    }
    assert views.status_view(row) == {
        "execution_id": "exec-1",
        "task": "onboarding",
        "status": "running",
        "steps_completed": 2,
        "current_step": "provision",
        "waiting_for_event": None,
        "started_at": "2026-04-04T10:23:11Z",
        "completed_at": None,
        "output": None,
        "error": None,
    }


def test_list_view_pages_summaries():
    row = {"execution_id": "e", "task": "t", "status": "pending", "created_at": MOMENT, "input": {}}
    assert views.list_view([row], total=7, limit=1, offset=3, next_cursor="c") == {
        "executions": [
            {
                "execution_id": "e",
                "task": "t",
                "status": "pending",
                "created_at": "2026-04-04T10:23:11Z",
                "started_at": None,
                "completed_at": None,
            }
        ],
        "total": 7,
        "limit": 1,
        "offset": 3,
        "next_cursor": "c",
    }


def test_step_view_carries_its_attempt_history():
    step = {
        "name": "charge",
        "position": 0,
        "kind": "step",
        "status": "completed",
        "attempts": 2,
        "started_at": MOMENT,
        "completed_at": MOMENT,
        "attempts_detail": [
            {"attempt": 1, "started_at": MOMENT, "ended_at": MOMENT, "outcome": "failed", "error": {"type": "E"}},
            {"attempt": 2, "started_at": MOMENT, "ended_at": None, "outcome": "running", "error": None},
        ],
    }
    view = views.step_view(step)
    assert view["attempts"] == 2 and view["wake_at"] is None
    assert [(a["attempt"], a["outcome"], a["ended_at"]) for a in view["attempt_history"]] == [
        (1, "failed", "2026-04-04T10:23:11Z"),
        (2, "running", None),
    ]


def test_wait_views_match_the_api_bodies():
    row = {"execution_id": "e", "status": "failed", "error": {"type": "KeyError"}, "completed_at": MOMENT}
    assert views.finished_view(row) == {
        "execution_id": "e",
        "status": "failed",
        "output": None,
        "error": {"type": "KeyError"},
        "completed_at": "2026-04-04T10:23:11Z",
    }
    assert views.still_running_view({"execution_id": "e", "status": "waiting"}) == {
        "execution_id": "e",
        "status": "waiting",
        "message": "Timeout reached. Execution is still running.",
    }
