"""Human rendering: aligned tables, the words for what an execution waits for, errors in one line."""

from __future__ import annotations

from zart.cli import render


def test_table_aligns_columns_and_shows_missing_values_as_a_dash():
    lines = render.table(("ID", "TASK", "STATUS"), [("exec-1", "onboarding", "running"), ("e2", None, "failed")])
    assert lines == [
        "ID      TASK        STATUS",
        "exec-1  onboarding  running",
        "e2      -           failed",
    ]


def test_table_has_no_trailing_spaces_when_the_last_column_is_empty():
    assert render.table(("A", "B"), [("x", "")]) == ["A  B", "x"]


def test_waiting_text_names_the_reason():
    until = "2026-04-04T10:23:11Z"
    assert render.waiting_text({"kind": "event", "event": "approval"}, "approval", None) == "event approval"
    assert render.waiting_text(None, "approval", until) == f"event approval (until {until})"
    assert render.waiting_text({"kind": "sleep", "step": "nap"}, None, until) == f"sleep nap (until {until})"
    assert render.waiting_text({"kind": "retry", "step": "charge"}, None, until) == f"retry charge (until {until})"
    assert render.waiting_text({"kind": "children", "steps": ["a", "b"]}, None, until) == "children a, b"
    remote = {"kind": "remote", "steps": ["charge", "thumb-1"]}
    assert render.waiting_text(remote, None, None) == "remote celery charge, thumb-1"
    assert render.waiting_text(remote, None, until) == f"remote celery charge, thumb-1 (until {until})"
    waiting_for_worker = {"kind": "worker", "task": "etl.nightly"}
    assert render.waiting_text(waiting_for_worker, None, until) == f"worker registering etl.nightly (until {until})"
    assert render.waiting_text(None, None, until) == f"timer (until {until})"
    assert render.waiting_text(None, None, None) is None


def test_error_text_is_one_line():
    assert render.error_text({"type": "KeyError", "message": "'x'"}) == "KeyError: 'x'"
    assert render.error_text({"message": "boom"}) == "boom"
    assert render.error_text(["odd", 1]) == '["odd",1]'


def test_status_lines_add_optional_facts_only_when_they_apply():
    view = {
        "execution_id": "e",
        "task": "t",
        "status": "running",
        "steps_completed": 2,
        "current_step": None,
        "waiting_for_event": None,
        "started_at": None,
        "completed_at": None,
        "output": None,
        "error": None,
    }
    assert render.status_lines(view, 1, None) == [
        "execution_id: e",
        "task: t",
        "status: running",
        "started_at: -",
        "steps: 2 completed, 1 running",
    ]
    done = {**view, "status": "completed", "completed_at": "2026-04-04T10:23:11Z", "output": {"ok": True}}
    assert render.status_lines(done, 0, None)[-3:] == [
        "completed_at: 2026-04-04T10:23:11Z",
        "steps: 2 completed, 0 running",
        'output: {"ok":true}',
    ]
