"""Leader-free firing: three workers sweeping a one-second schedule fire each tick exactly once."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import timedelta

from sqlalchemy import text

from tests.harness import poll
from tests.schedules.conftest import fired
from zart.schedules import firing
from zart.schedules.spec import ScheduleSpec
from zart.store import db, sweeps
from zart.store import schedules as store

TICKS = 30


def test_three_workers_fire_each_tick_of_a_one_second_schedule_once(env, start_worker, schedules, unique):
    workers = [start_worker(concurrency=2) for _ in range(3)]
    schedule_id = unique("every-second")
    # catch-up `all` and overlap `allow_all`: a tick delayed by a slow sweep must still fire, and only once
    schedules.create(ScheduleSpec(id=schedule_id, task="t.scheduled", every=1, catch_up="all", overlap="allow_all"))
    poll(lambda: len(fired(env, schedule_id)) >= TICKS + 1, timeout=TICKS + 30, what=f"{TICKS} ticks")
    schedules.pause(schedule_id)
    runs = fired(env, schedule_id)
    ticks = [run["scheduled_for"] for run in runs]
    assert max(Counter(ticks).values()) == 1, "a tick fired twice"
    first, last = ticks[0], ticks[-1]
    expected = [first + timedelta(seconds=i) for i in range(int((last - first).total_seconds()) + 1)]
    assert ticks == expected, "a tick was skipped"
    assert all(run["id"].startswith(f"{schedule_id}@") for run in runs)
    assert all(worker.process.poll() is None for worker in workers)
    done = poll(
        lambda: all(run["status"] == "completed" for run in fired(env, schedule_id)),
        timeout=30,
        what="every fired execution to complete",
    )
    assert done
    assert schedules.get(schedule_id)["last_tick"] == last


def test_a_trigger_queued_behind_a_sweep_firing_the_schedule_sees_the_tick_it_fired(env, schedules, unique):
    """A manual trigger that waits for a sweeper's lock on the schedule must see the run that sweep just fired:
    under `skip` it then declines, instead of firing a second run beside the tick's."""
    schedule_id = unique("trigger-race")
    schedules.create(ScheduleSpec(id=schedule_id, task="t.scheduled", every=1, overlap="skip"))
    due = text("SELECT next_fire_at <= now() FROM schedules WHERE id = :id")
    with db.autocommit(env.database_url) as conn:
        poll(lambda: conn.execute(due, {"id": schedule_id}).scalar(), timeout=10, what="the first tick to be due")
    waiting = text("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%FOR UPDATE%'")
    outcome: list[firing.Outcome] = []
    with db.transaction(env.database_url) as conn:  # a sweep, held open between firing the tick and committing
        now = sweeps.database_now(conn)
        row = next(r for r in store.lock_due(conn, 500) if r["id"] == schedule_id)
        swept = firing.apply(conn, [firing.plan_row(row, now, 60)], now, firing.TaskLookup(conn))
        assert len(swept.fired) == 1
        trigger = threading.Thread(target=lambda: outcome.append(schedules.trigger(schedule_id)))
        trigger.start()
        with db.autocommit(env.database_url) as watcher:
            poll(lambda: watcher.execute(waiting).scalar(), timeout=10, what="the trigger to wait for the sweep")
    trigger.join(timeout=30)
    assert outcome and outcome[0].fired == [], "the trigger fired a second run beside the tick's"
    assert [reason for _, reason in outcome[0].skipped] == ["overlap"]
    assert [run["id"] for run in fired(env, schedule_id)] == [swept.fired[0].execution_id]
