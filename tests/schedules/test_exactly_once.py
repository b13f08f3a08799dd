"""Leader-free firing: three workers sweeping a one-second schedule fire each tick exactly once."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

from tests.harness import poll
from tests.schedules.conftest import fired
from zart.schedules.spec import ScheduleSpec

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
