"""Operator controls through the service layer, each with a real worker doing the work."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from tests.harness import poll
from tests.reliability.journal import body_runs
from tests.workflows import entries
from zart.admin import AdminService
from zart.errors import (
    ExecutionActive,
    ExecutionAlreadyExists,
    ExecutionNotFound,
    InvalidData,
    StepNotDead,
    StepNotFound,
)


@pytest.fixture()
def admin(service):
    return AdminService(service)


def runs_of(journal, execution_id: str, step: str) -> int:
    return sum(1 for run in body_runs(journal) if run.execution_id == execution_id and run.step == step)


def finished(service, execution_id: str, timeout: float = 30):
    done, row = service.wait(execution_id, timeout)
    assert done, f"{execution_id} is still {row['status']}"
    return row


def test_retry_step_revives_a_dead_step_without_rerunning_earlier_ones(service, admin, worker, log_dir, unique):
    journal, flag = log_dir / "bodies.journal", log_dir / "flag"
    execution_id = unique("dead")
    service.schedule("a.dead-step", {"journal": str(journal), "flag": str(flag)}, execution_id=execution_id)
    row = finished(service, execution_id)
    assert row["status"] == "failed" and row["error"]["step"] == "b"
    detail = admin.detail(execution_id)
    assert {s["name"]: s["retryable"] for s in detail["steps"]} == {"a": False, "b": True}
    with pytest.raises(StepNotDead):
        admin.retry_step(execution_id, "a", "ops@example.com")
    with pytest.raises(StepNotFound):
        admin.retry_step(execution_id, "nope", "ops@example.com")
    with pytest.raises(ExecutionNotFound):
        admin.retry_step("exec-missing", "b", "ops@example.com")

    flag.touch()
    admin.retry_step(execution_id, "b", "ops@example.com")
    row = finished(service, execution_id)
    assert row["status"] == "completed" and row["output"] == {"a": 1, "b": "fixed", "c": 2}
    assert runs_of(journal, execution_id, "a") == 1
    assert runs_of(journal, execution_id, "b") == 3  # two failed attempts, one after the reset
    detail = admin.detail(execution_id)
    b = next(s for s in detail["steps"] if s["name"] == "b")
    assert [a["outcome"] for a in b["attempts_detail"]] == ["failed", "failed", "completed"]
    assert [(a["action"], a["triggered_by"]) for a in detail["actions"]] == [("retry-step", "ops@example.com")]
    assert len(detail["runs"]) == 1


def test_reviving_an_execution_whose_dedup_key_a_newer_one_holds_is_refused_cleanly(
    service, admin, worker, log_dir, unique
):
    """A finished execution's dedup key was taken by a newer active execution: a retry, restart or rerun of the
    old one would make two active executions of one key. Each is refused (409) and changes nothing; once the
    newer one is gone the retry goes through."""
    journal, flag, key = log_dir / "bodies.journal", log_dir / "flag", unique("key")
    old = unique("dead")
    service.schedule("a.dead-step", {"journal": str(journal), "flag": str(flag)}, execution_id=old, dedup_key=key)
    assert finished(service, old)["status"] == "failed"
    newer = unique("newer")
    service.schedule("t.event", {"journal": str(journal)}, execution_id=newer, dedup_key=key)
    poll(lambda: service.status(newer)["status"] == "waiting", what="the newer execution to wait")

    flag.touch()
    for revive in (
        lambda: admin.retry_step(old, "b", "ops@example.com"),
        lambda: admin.restart(old, None, force=False, triggered_by="ops@example.com"),
        lambda: admin.rerun(old, ["b"], preserve=[], force=False, triggered_by="ops@example.com"),
    ):
        with pytest.raises(ExecutionAlreadyExists, match="dedup key"):
            revive()
    row = service.status(old)
    assert (row["status"], row["run_index"]) == ("failed", 0)
    assert admin.detail(old)["actions"] == []

    service.cancel(newer)
    admin.retry_step(old, "b", "ops@example.com")
    assert finished(service, old)["status"] == "completed"


def test_rerun_reruns_the_named_step_and_its_successors_only(service, admin, worker, log_dir, unique):
    journal = log_dir / "bodies.journal"
    execution_id = unique("rerun")
    service.schedule("a.echo", {"journal": str(journal), "value": 10}, execution_id=execution_id)
    finished(service, execution_id)
    result = admin.rerun(execution_id, ["y"], preserve=[], force=False, triggered_by="cli")
    assert result["steps_to_run"] == ["y", "z"] and result["steps_preserved"] == ["x"]
    row = finished(service, execution_id)
    assert row["output"] == {"x": 11, "y": 12, "z": 13} and row["run_index"] == 1
    assert [runs_of(journal, execution_id, s) for s in "xyz"] == [1, 2, 2]

    result = admin.rerun(execution_id, ["x"], preserve=["z"], force=False, triggered_by="cli")
    assert result["steps_to_run"] == ["x", "y"] and result["steps_preserved"] == ["z"]
    finished(service, execution_id)
    assert [runs_of(journal, execution_id, s) for s in "xyz"] == [2, 3, 2]
    runs = admin.runs(execution_id)
    assert [(r["run_index"], r["trigger"], r["status"]) for r in runs] == [
        (0, "initial", "completed"),
        (1, "selective_rerun", "completed"),
        (2, "selective_rerun", "completed"),
    ]
    with pytest.raises(StepNotFound):
        admin.rerun(execution_id, ["no-such-step"], preserve=[], force=False, triggered_by="cli")


def test_restart_with_new_input_runs_every_step_and_keeps_history(service, admin, worker, log_dir, unique):
    journal = log_dir / "bodies.journal"
    execution_id = unique("restart")
    service.schedule("a.echo", {"journal": str(journal), "value": 1}, execution_id=execution_id)
    assert finished(service, execution_id)["output"] == {"x": 2, "y": 3, "z": 4}
    admin.restart(execution_id, {"journal": str(journal), "value": 100}, force=False, triggered_by="cli")
    row = finished(service, execution_id)
    assert row["output"] == {"x": 101, "y": 102, "z": 103}
    assert [runs_of(journal, execution_id, s) for s in "xyz"] == [2, 2, 2]
    runs = admin.runs(execution_id)
    assert [(r["trigger"], r["status"], r["input"]["value"], r["output"]["x"]) for r in runs] == [
        ("initial", "completed", 1, 2),
        ("restart", "completed", 100, 101),
    ]
    old = admin.detail(execution_id, run_index=0)
    assert [s["output"] for s in old["steps"]] == [2, 3, 4]


def test_restart_of_an_active_execution_needs_force(service, admin, worker, log_dir, unique):
    journal = log_dir / "j"
    execution_id = unique("active")
    service.schedule("t.event", {"journal": str(journal)}, execution_id=execution_id)
    poll(lambda: service.status(execution_id)["status"] == "waiting", what="the event wait")
    with pytest.raises(ExecutionActive):
        admin.restart(execution_id, None, force=False, triggered_by="cli")
    assert service.status(execution_id)["status"] == "waiting"
    admin.restart(execution_id, None, force=True, triggered_by="cli")
    poll(lambda: service.status(execution_id)["waiting_for_event"] == "approval", what="the new run to wait")
    assert service.status(execution_id)["run_index"] == 1
    assert entries(str(journal), "prepare") == 2


def test_pause_on_a_task_holds_new_and_running_executions_until_resumed(
    service, admin, start_worker, log_dir, unique
):
    start_worker(concurrency=1)
    journal = str(log_dir / "j")
    release = log_dir / "release"
    running = unique("running")
    service.schedule("t.blocking", {"journal": journal, "release": str(release)}, execution_id=running)
    poll(lambda: entries(journal, "b") == 1, what="step b to start")
    rule = admin.create_pause(
        execution_id=None, task="t.blocking", step_pattern=None, reason="incident 42", expires_at=None,
        applies_to_all=False, triggered_by="ops",
    )
    held_new = unique("held")
    service.schedule("t.blocking", {"journal": journal, "release": str(release)}, execution_id=held_new)
    release.touch()
    poll(lambda: service.status(running)["status"] == "waiting", what="the running one to park before c")
    assert service.status(running)["waiting_for"] == {"kind": "pause", "rule": rule["rule_id"], "step": "c"}
    assert admin.detail(running)["held_by"]["rule_id"] == rule["rule_id"]
    other = unique("other")
    service.schedule("t.three-steps", {"journal": journal + "-other"}, execution_id=other)
    finished(service, other)  # FIFO with one slot: the held one's message was handled before this one
    assert service.status(held_new)["status"] == "pending"
    assert entries(journal, "c") == 0

    resumed_at = time.monotonic()
    admin.resume_pause(rule["rule_id"], "ops")
    for execution_id in (running, held_new):
        assert finished(service, execution_id)["status"] == "completed"
    assert time.monotonic() - resumed_at < 3.0
    assert [r["rule_id"] for r in admin.list_pauses() if r["task"] == "t.blocking"] == []
    assert admin.list_pauses(include_inactive=True)[-1]["resumed_by"] == "ops"


def test_pause_expiry_releases_held_executions(service, admin, worker, log_dir, unique):
    journal = str(log_dir / "j")
    expires = datetime.now(UTC) + timedelta(seconds=2)
    admin.create_pause(
        execution_id=None, task="t.three-steps", step_pattern=None, reason=None, expires_at=expires,
        applies_to_all=False, triggered_by="ops",
    )
    execution_id = unique("expiry")
    service.schedule("t.three-steps", {"journal": journal}, execution_id=execution_id)
    row = finished(service, execution_id)
    assert row["started_at"] >= expires
    assert (row["completed_at"] - expires).total_seconds() < 2.0


def test_step_pattern_holds_only_matching_steps(service, admin, worker, log_dir, unique):
    journal = str(log_dir / "j")
    rule = admin.create_pause(
        execution_id=None, task="t.three-steps", step_pattern="c*", reason=None, expires_at=None,
        applies_to_all=False, triggered_by="ops",
    )
    held = unique("pattern")
    service.schedule("t.three-steps", {"journal": journal}, execution_id=held)
    poll(lambda: service.status(held)["status"] == "waiting", what="the execution to park before c")
    assert (entries(journal, "a"), entries(journal, "b"), entries(journal, "c")) == (1, 1, 0)
    free = unique("free")
    service.schedule("t.sleeper", {"journal": journal, "seconds": 0.1}, execution_id=free)
    assert finished(service, free)["status"] == "completed"
    admin.delete_pause(rule["rule_id"], "ops")
    assert finished(service, held)["output"] == {"sum": 6}


def test_pause_rules_must_say_what_they_pause(admin):
    kwargs = {"execution_id": None, "task": None, "reason": None, "expires_at": None, "triggered_by": "ops"}
    with pytest.raises(InvalidData):
        admin.create_pause(step_pattern=None, applies_to_all=False, **kwargs)
    with pytest.raises(InvalidData):
        admin.create_pause(step_pattern="*", applies_to_all=False, **kwargs)
    rule = admin.create_pause(step_pattern=None, applies_to_all=True, **kwargs)
    admin.delete_pause(rule["rule_id"], "ops")
