"""Tick computation, catch-up and overlap decisions, and schedule validation: pure, no I/O."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from zart.errors import InvalidData
from zart.schedules.plan import decide, due_ticks, fire_time
from zart.schedules.spec import ScheduleSpec, validate
from zart.schedules.ticks import jitter_offset, latest_tick, next_tick, tick_label, ticks

BERLIN = ZoneInfo("Europe/Berlin")
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def local(*args: int, fold: int = 0) -> datetime:
    """A Berlin wall-clock time as the UTC instant ticks are (an ambiguous local time never equals another zone's)."""
    return datetime(*args, tzinfo=BERLIN, fold=fold).astimezone(UTC)


def berlin(expression: str) -> ScheduleSpec:
    return ScheduleSpec(id="s", task="t", cron=expression, timezone="Europe/Berlin")


def walk(spec: ScheduleSpec, after: datetime, count: int) -> list[datetime]:
    return list(ticks(spec, after, after + timedelta(days=400), count))


# ---------------------------------------------------------------- DST, Europe/Berlin (2026: 29 March, 25 October)


def test_daily_time_in_the_spring_gap_fires_once_at_the_end_of_the_gap():
    fired = walk(berlin("30 2 * * *"), local(2026, 3, 27, 12), 4)
    assert fired == [
        local(2026, 3, 28, 2, 30),  # CET, UTC+1
        local(2026, 3, 29, 3, 0),  # 02:30 does not exist: fires at 03:00 CEST, the first minute after the gap
        local(2026, 3, 30, 2, 30),
        local(2026, 3, 31, 2, 30),
    ]
    assert fired[1] == datetime(2026, 3, 29, 1, 0, tzinfo=UTC)


def test_daily_time_in_the_repeated_autumn_hour_fires_once_at_its_first_occurrence():
    fired = walk(berlin("30 2 * * *"), local(2026, 10, 24, 12), 3)
    assert fired == [local(2026, 10, 25, 2, 30, fold=0), local(2026, 10, 26, 2, 30), local(2026, 10, 27, 2, 30)]
    assert fired[0] == datetime(2026, 10, 25, 0, 30, tzinfo=UTC)  # CEST, UTC+2: the first 02:30
    # a sweep that fired it and asks again from inside the repeated hour does not get it a second time
    assert next_tick(berlin("30 2 * * *"), datetime(2026, 10, 25, 1, 10, tzinfo=UTC)) == local(2026, 10, 26, 2, 30)


def test_frequent_cron_follows_elapsed_time_through_both_transitions():
    spring = walk(berlin("0,30 * * * *"), local(2026, 3, 29, 1, 0), 3)
    assert spring == [local(2026, 3, 29, 1, 30), local(2026, 3, 29, 3, 0), local(2026, 3, 29, 3, 30)]
    autumn = walk(berlin("0,30 * * * *"), local(2026, 10, 25, 1, 30), 5)
    assert [t.astimezone(UTC).strftime("%H:%M") for t in autumn] == ["00:00", "00:30", "01:00", "01:30", "02:00"]
    assert [t.astimezone(BERLIN).strftime("%H:%M%z") for t in autumn] == [
        "02:00+0200",
        "02:30+0200",
        "02:00+0100",  # the repeated hour fires again, at its own instants
        "02:30+0100",
        "03:00+0100",
    ]


def test_six_field_cron_counts_seconds():
    spec = ScheduleSpec(id="s", task="t", cron="*/20 * * * * *")
    assert [t.second for t in walk(spec, T0, 4)] == [20, 40, 0, 20]


def test_intervals_count_from_start_or_epoch_and_ignore_dst():
    spec = ScheduleSpec(id="s", task="t", every=3600, timezone="Europe/Berlin")
    spring = walk(spec, datetime(2026, 3, 29, 0, 30, tzinfo=UTC), 2)
    assert spring == [datetime(2026, 3, 29, 1, tzinfo=UTC), datetime(2026, 3, 29, 2, tzinfo=UTC)]
    started = ScheduleSpec(id="s", task="t", every=7, start_at=T0 + timedelta(seconds=3))
    assert walk(started, T0, 3) == [T0 + timedelta(seconds=s) for s in (3, 10, 17)]


def test_bounds_and_latest_tick():
    spec = ScheduleSpec(id="s", task="t", every=10, start_at=T0, end_at=T0 + timedelta(seconds=30))
    assert walk(spec, T0 - timedelta(days=1), 10) == [T0 + timedelta(seconds=s) for s in (0, 10, 20, 30)]
    assert next_tick(spec, T0 + timedelta(seconds=30)) is None
    assert latest_tick(spec, T0 + timedelta(seconds=25), T0) == T0 + timedelta(seconds=20)
    assert latest_tick(berlin("30 2 * * *"), local(2026, 3, 30, 12), T0) == local(2026, 3, 30, 2, 30)
    assert latest_tick(spec, T0 + timedelta(seconds=25), T0 + timedelta(seconds=21)) is None


def test_the_newest_missed_tick_of_a_per_second_cron_is_found_without_walking_the_outage():
    """Catch-up looks back from an instant with a fraction of a second (the database's clock always has one): the
    backward look missed a tick lying in the second after that instant, and fell back to walking every tick
    from the start of the outage, so the first sweep after three days without workers spent long seconds on a
    per-second cron (a week: minutes), holding the locks of its whole batch of due schedules."""
    import time

    spec = ScheduleSpec(id="s", task="t", cron="* * * * * *")
    started = time.perf_counter()
    assert latest_tick(spec, T0 + timedelta(days=3, microseconds=500_000), T0) == T0 + timedelta(days=3)
    assert latest_tick(spec, T0 + timedelta(days=3, microseconds=-1), T0) == T0 + timedelta(days=3, seconds=-1)
    assert time.perf_counter() - started < 2


def test_jitter_is_deterministic_and_bounded():
    offsets = {jitter_offset("s", T0 + timedelta(seconds=i), 5.0) for i in range(50)}
    assert all(0 <= o < 5 for o in offsets) and len(offsets) > 40
    assert jitter_offset("s", T0, 5.0) == jitter_offset("s", T0, 5.0)
    assert jitter_offset("s", T0, 0) == 0
    assert tick_label(local(2026, 3, 29, 3, 0)) == "20260329T010000Z"


# ---------------------------------------------------------------- catch-up


@pytest.mark.parametrize(
    ("policy", "seconds"),
    [("all", list(range(11))), ("latest", [8, 9, 10]), ("none", [9, 10])],
)
def test_catch_up_after_ten_seconds_unswept(policy: str, seconds: list[int]):
    spec = ScheduleSpec(id="s", task="t", every=1, catch_up=policy)
    found = due_ticks(spec, T0, T0 + timedelta(seconds=10.2), grace=2)
    assert [t.second for t in found.due] == seconds
    assert found.next_tick == T0 + timedelta(seconds=11)
    assert found.passed_over == (policy != "all")


def test_catch_up_all_stays_within_its_window():
    spec = ScheduleSpec(id="s", task="t", every=1, catch_up="all", catch_up_window=5)
    found = due_ticks(spec, T0, T0 + timedelta(seconds=100), grace=1)
    assert [t.second for t in found.due] == [35, 36, 37, 38, 39, 40]  # 01:35 .. 01:40
    assert found.passed_over


def test_nothing_due_before_the_fire_time():
    spec = ScheduleSpec(id="s", task="t", every=60, jitter=30)
    assert due_ticks(spec, T0, fire_time(spec, T0) - timedelta(milliseconds=1), grace=60).due == []
    assert due_ticks(spec, T0, fire_time(spec, T0), grace=60).due == [T0]


# ---------------------------------------------------------------- overlap

A, B, C = (T0 + timedelta(seconds=s) for s in (1, 2, 3))


def test_overlap_policies_while_a_run_is_active():
    assert decide("skip", [A, B], active=True, buffered=None).fire == []
    assert decide("allow_all", [A, B], active=True, buffered=None).fire == [A, B]
    buffered = decide("buffer_one", [A, B], active=True, buffered=None)
    assert (buffered.fire, buffered.buffered, buffered.skipped) == ([], A, [(B, "overlap")])
    cancel = decide("cancel_previous", [A, B], active=True, buffered=None)
    assert (cancel.fire, cancel.cancel_active, cancel.skipped) == ([B], True, [(A, "superseded")])


def test_overlap_policies_when_idle():
    assert decide("skip", [A, B], active=False, buffered=None).fire == [A]
    released = decide("buffer_one", [C], active=False, buffered=A)
    assert (released.fire, released.buffered) == ([A], C)
    assert decide("cancel_previous", [A], active=False, buffered=None).cancel_active is False


# ---------------------------------------------------------------- validation


@pytest.mark.parametrize(
    "changes",
    [
        {"cron": "61 * * * *"},
        {"cron": "* * *"},
        {"cron": "0 0 31 2 *"},
        {"cron": None, "every": 0},
        {"cron": None, "every": -5},
        {"cron": None, "every": 1.5},
        {"cron": None, "every": 10**30},
        {"catch_up_window": 1e300},
        {"cron": None, "every": None},
        {"every": 10},
        {"timezone": "Mars/Olympus"},
        {"timezone": "../etc/passwd"},
        {"start_at": T0, "end_at": T0 - timedelta(seconds=1)},
        {"start_at": datetime(2026, 1, 1)},
        {"overlap": "queue"},
        {"catch_up": "some"},
        {"jitter": -1},
        {"jitter": 300},  # as long as the gap between two ticks: they would fire out of order
        {"every": 60, "cron": None, "jitter": 60},
        {"id": "-starts-with-dash"},
        {"id": "has space"},
    ],
)
def test_invalid_definitions_are_refused(changes: dict):
    good = ScheduleSpec(id="s", task="t", cron="*/5 * * * *")
    validate(good)
    with pytest.raises(InvalidData):
        validate(good.with_changes(**changes))


END = T0 + timedelta(minutes=10)  # a schedule that ends ten minutes after its stored next tick


def test_the_latest_tick_of_a_schedule_that_has_ended_is_its_last():
    assert latest_tick(ScheduleSpec(id="s", task="t", every=60, end_at=END), T0 + timedelta(hours=1), T0) == END


@pytest.mark.parametrize("timing", [{"every": 60}, {"cron": "* * * * *"}])
@pytest.mark.parametrize("policy", ["latest", "none"])
def test_catch_up_keeps_its_policy_after_an_outage_that_outlived_the_end(policy, timing):
    spec = ScheduleSpec(id="s", task="t", end_at=END, catch_up=policy, overlap="allow_all", **timing)
    candidates = due_ticks(spec, T0, T0 + timedelta(hours=1, seconds=30), grace=60)
    assert candidates.due == ([END] if policy == "latest" else [])
    assert candidates.passed_over and candidates.next_tick is None


def test_catch_up_all_keeps_its_window_after_an_outage_that_outlived_the_end():
    spec = ScheduleSpec(id="s", task="t", every=60, end_at=END, catch_up="all", catch_up_window=3600)
    candidates = due_ticks(spec, T0, T0 + timedelta(days=3), grace=60)
    assert candidates.due == [] and candidates.next_tick is None  # every missed tick lies outside the window


def test_latest_with_skip_fires_the_newest_missed_tick_of_an_ended_schedule():
    spec = ScheduleSpec(id="s", task="t", every=60, end_at=END, catch_up="latest", overlap="skip")
    candidates = due_ticks(spec, T0, T0 + timedelta(hours=1), grace=60)
    assert decide(spec.overlap, candidates.due, False, None).fire == [END]


@pytest.mark.parametrize("policy", ["latest", "none"])
def test_a_newest_missed_tick_on_time_by_its_jitter_keeps_catch_up_on(policy):
    """Every minute, 50 s of jitter, no sweep for an hour; the sweep comes back as that hour's last tick is
    still on time by its jitter: it fires, and of the hour's missed ticks only `latest`'s newest one."""
    spec = ScheduleSpec(id="s", task="t", every=60, jitter=50, catch_up=policy, overlap="allow_all")
    newest = T0 + timedelta(hours=1)
    assert fire_time(spec, newest) > newest
    now = fire_time(spec, newest) + timedelta(seconds=60)
    candidates = due_ticks(spec, T0, now, grace=60)
    late = [tick for tick in candidates.due if fire_time(spec, tick) < now - timedelta(seconds=60)]
    assert late == ([] if policy == "none" else [newest - timedelta(minutes=1)])
    assert newest in candidates.due and candidates.passed_over


def test_with_jitter_every_tick_fires_once_while_a_sweeper_runs_every_second():
    spec = ScheduleSpec(id="sched-a", task="t", every=60, jitter=50, catch_up="none", overlap="allow_all")
    validate(spec)
    stored, fired, now, end = next_tick(spec, T0), [], T0, T0 + timedelta(hours=2)
    while now < end:  # the sweeper: take the row once its next fire time has come, fire, store where it goes on
        if stored is not None and fire_time(spec, stored) <= now:
            candidates = due_ticks(spec, stored, now, grace=60)
            fired += candidates.due
            stored = candidates.next_tick
        now += timedelta(seconds=1)
    expected = [T0 + timedelta(minutes=i) for i in range(1, 200) if fire_time(spec, T0 + timedelta(minutes=i)) < end]
    assert fired == expected


@pytest.mark.parametrize("policy", ["allow_all", "cancel_previous"])
def test_a_tick_buffered_before_the_policy_changed_fires_under_the_new_one(policy):
    decision = decide(policy, [], False, T0)
    assert decision.buffered is None and decision.fire == [T0]
    decision = decide(policy, [T0 + timedelta(minutes=1)], True, T0)
    assert decision.buffered is None
    assert decision.fire == ([T0, T0 + timedelta(minutes=1)] if policy == "allow_all" else [T0 + timedelta(minutes=1)])


def test_a_beat_crontab_on_both_a_day_of_month_and_a_day_of_week_is_refused_not_widened():
    """Celery fires `day_of_month="1-7", day_of_week="mon"` on the first Monday only; cron would fire on each of
    the first seven days and every Monday, so the entry is refused with its reason."""
    from celery import Celery
    from celery.schedules import crontab

    from zart.schedules import beat

    app = Celery("beat-days", set_as_current=False)
    app.conf.timezone = "UTC"
    app.conf.beat_schedule = {
        "first-monday": {"task": "proj.report", "schedule": crontab(0, 9, day_of_month="1-7", day_of_week="mon")},
        "mondays": {"task": "proj.report", "schedule": crontab(0, 9, day_of_week="mon")},
    }
    entries = {entry.name: entry for entry in beat.read_entries(app)}
    assert entries["first-monday"].spec is None and "both match" in entries["first-monday"].refused
    assert entries["mondays"].spec is not None and entries["mondays"].spec.cron == "0 9 * * mon"


def test_two_tasks_declaring_one_schedule_id_are_refused():
    """One id is one row: two tasks sharing it would overwrite each other's schedule at every worker start."""
    import zart
    from zart.registry import Registry

    registry = Registry()

    def first(ctx, data):
        return data

    def second(ctx, data):
        return data

    zart.task("t.first", schedule=zart.every(60, id="nightly"), registry=registry)(first)
    with pytest.raises(ValueError, match="nightly"):
        zart.task("t.second", schedule=zart.cron("0 3 * * *", id="nightly"), registry=registry)(second)
    zart.task("t.daily", schedule=zart.every(60), registry=registry)(first)
    with pytest.raises(ValueError, match="t.daily"):  # a default id (the task's name) counts too
        zart.task("t.third", schedule=zart.every(60, id="t.daily"), registry=registry)(second)
    zart.task("t.first", schedule=zart.every(60, id="nightly"), registry=registry)(first)  # re-registering is fine


def test_a_declared_schedule_whose_data_the_task_would_refuse_is_refused_at_import():
    """A schedule's data is the input of every execution it fires. Created over the API, data that breaks the
    task's schema or cannot be stored is refused; declared in code it was taken as it was: every tick ran the
    workflow on input its schema forbids, and data that is not JSON failed the worker's whole reconciliation,
    leaving every other schedule it declares unapplied."""
    from datetime import date

    import zart
    from zart.errors import InvalidData
    from zart.registry import Registry

    registry = Registry()
    schema = {"type": "object", "properties": {"kind": {"enum": ["full", "delta"]}}, "required": ["kind"]}

    def report(ctx, data):
        return data

    with pytest.raises(InvalidData, match=r"data\.kind is required"):
        zart.task("t.report", schema=schema, schedule=zart.cron("0 2 * * *"), registry=registry)(report)
    with pytest.raises(InvalidData, match="must be one of"):
        zart.task("t.report", schema=schema, schedule=zart.every(60, data={"kind": "all"}), registry=registry)(report)
    with pytest.raises(InvalidData, match="cannot be stored"):
        zart.task("t.other", schedule=zart.every(60, data={"since": date(2026, 1, 1)}), registry=registry)(report)
    assert registry.names() == []
    zart.task("t.report", schema=schema, schedule=zart.cron("0 2 * * *", data={"kind": "full"}), registry=registry)(
        report
    )
