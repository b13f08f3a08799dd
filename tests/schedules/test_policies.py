"""Catch-up after every worker was down, and each overlap policy with runs slower than the interval."""

from __future__ import annotations

import time
from datetime import timedelta

from tests.harness import poll
from tests.schedules.conftest import fired
from zart.schedules.spec import ScheduleSpec

# the workers' ZART_SCHEDULE_GRACE: a tick fired later than this (created_at - tick, both on the database's clock,
# as the sweep decides) was a missed one fired by catch-up; an on-time tick never is
GRACE = 2.0
DOWN_FOR = 8.0


def test_each_catch_up_policy_after_all_workers_were_stopped(env, start_worker, schedules, unique):
    worker = start_worker(ZART_SCHEDULE_GRACE=str(GRACE))
    ids = {policy: unique(f"catch-up-{policy}") for policy in ("all", "latest", "none")}
    for policy, schedule_id in ids.items():
        # allow_all: the overlap policy applies to caught-up ticks too, and here only catch-up is under test
        spec = ScheduleSpec(id=schedule_id, task="t.scheduled", every=1, catch_up=policy, overlap="allow_all")
        schedules.create(spec)
    poll(lambda: all(len(fired(env, s)) >= 2 for s in ids.values()), timeout=30, what="ticks before the stop")
    worker.stop()
    stopped_at = max(run["scheduled_for"] for s in ids.values() for run in fired(env, s))
    time.sleep(DOWN_FOR)  # the outage itself: nothing sweeps while it lasts
    start_worker(ZART_SCHEDULE_GRACE=str(GRACE))

    def back_on_time() -> bool:
        return all(
            any(r["scheduled_for"] > stopped_at and r["lateness"] <= GRACE for r in fired(env, s)) for s in ids.values()
        )

    poll(back_on_time, timeout=30, what="on-time ticks after the restart")
    for schedule_id in ids.values():
        schedules.pause(schedule_id)

    runs = {policy: fired(env, schedule_id) for policy, schedule_id in ids.items()}
    ticks = [run["scheduled_for"] for run in runs["all"]]
    span = int((ticks[-1] - ticks[0]).total_seconds())
    assert ticks == [ticks[0] + timedelta(seconds=i) for i in range(span + 1)], "`all` left a tick of the outage"
    assert sum(run["lateness"] > GRACE for run in runs["all"]) >= DOWN_FOR - 3

    late = [run for run in runs["latest"] if run["lateness"] > GRACE]
    assert len(late) == 1, "`latest` fires the outage once"
    assert late[0]["scheduled_for"] > stopped_at + timedelta(seconds=DOWN_FOR - 4)  # the newest missed tick

    assert [run for run in runs["none"] if run["lateness"] > GRACE] == [], "`none` fired a missed tick"
    after = [run["scheduled_for"] for run in runs["none"] if run["scheduled_for"] > stopped_at]
    assert after and after[0] - stopped_at >= timedelta(seconds=DOWN_FOR - 2), "the outage's ticks were skipped"
    assert schedules.get(ids["none"])["last_skip"] is not None


def overlapping(runs: list[dict]) -> bool:
    finished = [r for r in runs if r["started_at"] and r["completed_at"]]
    return any(b["started_at"] < a["completed_at"] for a, b in zip(finished, finished[1:], strict=False))


def test_each_overlap_policy_with_runs_slower_than_the_interval(env, start_worker, schedules, unique):
    start_worker(concurrency=8)
    policies = ("skip", "buffer_one", "allow_all", "cancel_previous")
    ids = {policy: unique(f"overlap-{policy.replace('_', '-')}") for policy in policies}
    for policy, schedule_id in ids.items():
        spec = ScheduleSpec(id=schedule_id, task="t.scheduled", every=1, overlap=policy, data={"seconds": 2.5})
        schedules.create(spec)
    poll(lambda: len(fired(env, ids["allow_all"])) >= 7, timeout=40, what="seven ticks of allow_all")
    for schedule_id in ids.values():
        schedules.pause(schedule_id)
    poll(
        lambda: all(r["status"] in ("completed", "cancelled") for s in ids.values() for r in fired(env, s)),
        timeout=40,
        what="every run to finish",
    )
    runs = {policy: fired(env, schedule_id) for policy, schedule_id in ids.items()}

    allowed = runs["allow_all"]
    ticks = [r["scheduled_for"] for r in allowed]
    assert ticks == [ticks[0] + timedelta(seconds=i) for i in range(len(ticks))], "allow_all skipped a tick"
    assert overlapping(allowed) and all(r["status"] == "completed" for r in allowed)

    skipped = runs["skip"]
    assert not overlapping(skipped) and all(r["status"] == "completed" for r in skipped)
    assert len(skipped) <= len(allowed) // 2 + 1, "skip fired ticks while a run was active"
    assert schedules.get(ids["skip"])["last_skip"]["reason"] == "overlap"

    buffered = runs["buffer_one"]
    assert not overlapping(buffered) and len(buffered) >= 2
    # a buffered tick fires when the run before it ends: later than its own tick, right after that run (its
    # created_at is the start of the sweep's transaction, which may begin a moment before that run's commit)
    for before, after in zip(buffered, buffered[1:], strict=False):
        assert after["created_at"] >= before["completed_at"] - timedelta(seconds=1)
    assert any(after["lateness"] > 1 for after in buffered[1:]), "no tick waited in the buffer"

    cancelled = runs["cancel_previous"]
    assert len(cancelled) >= 4
    assert all(r["status"] == "cancelled" for r in cancelled[:-1]) and cancelled[-1]["status"] == "completed"
