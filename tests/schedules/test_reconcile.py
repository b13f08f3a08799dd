"""Schedules declared in code are reconciled when workers start: created once, updated when changed, disabled
when removed, never duplicated; runtime changes to them are refused."""

from __future__ import annotations

import contextlib

import pytest

from tests.harness import poll
from tests.schedules.conftest import fired
from zart.errors import ScheduleDeclaredInCode, ScheduleNotFound
from zart.schedules.spec import ScheduleSpec
from zart.store import db

IMPORTS = "tests.workflows,tests.schedule_declarations"
SCHEDULE_ID = "declared-report"


def declared_rows(env) -> list[dict]:
    from sqlalchemy import text

    with db.autocommit(env.database_url) as conn:
        result = conn.execute(
            text("SELECT id, interval_seconds, cron, enabled FROM schedules WHERE task = 't.declared'")
        )
        return [dict(row._mapping) for row in result]


def test_declarations_are_created_updated_and_disabled_never_duplicated(env, start_worker, schedules, unique):
    release = unique("release")  # a set seen before (by another test) and superseded would not apply again

    def workers(variant: str, count: int = 1) -> list:
        started = [
            start_worker(ready=False, ZART_IMPORTS=IMPORTS, ZART_TEST_SCHEDULE=variant, ZART_CODE_VERSION=release)
            for _ in range(count)
        ]
        return [worker.wait_ready() for worker in started]

    first = workers("every-2s")
    row = schedules.get(SCHEDULE_ID)
    assert (row["source"], row["interval_seconds"], row["enabled"], row["declared_in"]) == (
        "code",
        2,
        True,
        "tests.schedule_declarations",
    )
    poll(lambda: len(fired(env, SCHEDULE_ID)) >= 2, timeout=20, what="the declared schedule to fire")
    for worker in first:
        worker.stop()
    next_tick = schedules.get(SCHEDULE_ID)["next_tick"]

    together = workers("every-2s", count=2)  # unchanged, reconciled by two workers at once
    assert declared_rows(env) == [{"id": SCHEDULE_ID, "interval_seconds": 2, "cron": None, "enabled": True}]
    assert schedules.get(SCHEDULE_ID)["next_tick"] >= next_tick  # kept, not recomputed: no tick skipped
    with pytest.raises(ScheduleDeclaredInCode):
        schedules.update(SCHEDULE_ID, {"every": 60})
    with pytest.raises(ScheduleDeclaredInCode):
        schedules.delete(SCHEDULE_ID)
    for worker in together:
        worker.stop()

    changed = workers("hourly-berlin")
    row = schedules.get(SCHEDULE_ID)
    assert (row["cron"], row["interval_seconds"], row["timezone"], row["jitter"]) == (
        "0 * * * *",
        None,
        "Europe/Berlin",
        5,
    )
    assert row["next_tick"].minute == 0 and row["next_tick"].second == 0
    for worker in changed:
        worker.stop()

    workers("removed")
    assert declared_rows(env) == [{"id": SCHEDULE_ID, "interval_seconds": None, "cron": "0 * * * *", "enabled": False}]
    assert schedules.get(SCHEDULE_ID)["upcoming"] == []
    assert SCHEDULE_ID not in [s["id"] for s in schedules.list(limit=500)[0]]
    assert schedules.delete(SCHEDULE_ID)["deleted"] is True  # a disabled declaration may be deleted


def test_a_runtime_schedule_with_a_declared_id_is_left_alone(env, start_worker, schedules, unique):
    with contextlib.suppress(ScheduleNotFound):  # left disabled by the test before, if it ran
        schedules.delete(SCHEDULE_ID)
    schedules.create(ScheduleSpec(id=SCHEDULE_ID, task="t.scheduled", every=3600), source="api")
    try:
        start_worker(ZART_IMPORTS=IMPORTS, ZART_TEST_SCHEDULE="every-2s", ZART_CODE_VERSION=unique("release"))
        row = schedules.get(SCHEDULE_ID)
        assert (row["source"], row["task"], row["interval_seconds"]) == ("api", "t.scheduled", 3600)
    finally:
        schedules.delete(SCHEDULE_ID)


def test_a_declaration_removed_from_a_module_imported_through_another_is_disabled(env, start_worker, schedules, unique):
    """ZART_IMPORTS names a module that imports the one declaring the schedule: when the declaration is removed
    (its task stays), the schedule is disabled, not left firing forever."""
    via = "tests.workflows,tests.schedule_declarations_via"
    release = unique("release")
    with contextlib.suppress(ScheduleNotFound):  # left disabled by another test, if it ran
        schedules.delete(SCHEDULE_ID)
    start_worker(ZART_IMPORTS=via, ZART_TEST_SCHEDULE="every-2s", ZART_CODE_VERSION=release).stop()
    row = schedules.get(SCHEDULE_ID)
    assert (row["enabled"], row["declared_in"]) == (True, "tests.schedule_declarations")
    start_worker(ZART_IMPORTS=via, ZART_TEST_SCHEDULE="removed", ZART_CODE_VERSION=release).stop()
    assert declared_rows(env) == [{"id": SCHEDULE_ID, "interval_seconds": 2, "cron": None, "enabled": False}]
    schedules.delete(SCHEDULE_ID)


def test_a_declared_start_in_a_repeated_local_hour_is_unchanged_when_reconciled_again(env, schedules, unique):
    """Python never finds a local time inside a DST fold equal to the same instant in another zone: a start
    declared at 02:30 on Berlin's autumn change looked changed at every worker start, so the schedule's next tick
    was recomputed each time (dropping a due or missed tick instead of catching it up)."""
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from zart.schedules.declare import every
    from zart.schedules.reconcile import reconcile

    schedule_id = unique("folded-start")
    spec = every(3600, id=schedule_id, start=datetime(2026, 10, 25, 2, 30, tzinfo=ZoneInfo("Europe/Berlin"))).bind(
        "t.scheduled"
    )
    assert reconcile(env.database_url, [(spec, "tests.folded")], [], schedule_id).created == [schedule_id]
    again = reconcile(env.database_url, [(spec, "tests.folded")], [], schedule_id)
    assert (again.unchanged, again.updated) == ([schedule_id], [])
    reconcile(env.database_url, [], ["tests.folded"], schedule_id)  # disabled, so it may be deleted
    schedules.delete(schedule_id)


def test_rolling_deploy_an_older_worker_restarting_after_a_newer_one_changes_nothing(
    env, start_worker, schedules, unique
):
    """In a rolling deploy old and new workers run side by side, and an old one may (re)start after a new one: it
    rewrote the schedule to its older definition, and brought back the schedule a newer release removed. A set of
    declarations seen before and superseded is now left alone; a deliberate rollback gives its code a
    ZART_CODE_VERSION not used before, and its older declarations apply."""
    with contextlib.suppress(ScheduleNotFound):  # left disabled by another test, if it ran
        schedules.delete(SCHEDULE_ID)
    # One version for the whole test stands for ZART_CODE_VERSION left unset (the releases then differ by their
    # declarations only) while keeping this test apart from the others, which declare the same sets.
    release = unique("release")

    def deploy(variant: str, version: str = release) -> None:
        start_worker(ZART_IMPORTS=IMPORTS, ZART_TEST_SCHEDULE=variant, ZART_CODE_VERSION=version).stop()

    def state() -> tuple:
        row = schedules.get(SCHEDULE_ID)
        return (row["interval_seconds"], row["cron"], row["enabled"])

    deploy("every-2s")  # release 1 everywhere
    deploy("hourly-berlin")  # release 2 reaches its first worker
    deploy("every-2s")  # a worker of release 1 restarts
    assert state() == (None, "0 * * * *", True)
    deploy("removed")  # release 3 removes the schedule
    deploy("every-2s")  # workers of the older releases restart
    deploy("hourly-berlin")
    assert state() == (None, "0 * * * *", False)
    assert SCHEDULE_ID not in [s["id"] for s in schedules.list(limit=500)[0]]

    deploy("every-2s", version=f"{release}-rollback")  # an operator rolls back to release 1
    assert state() == (2, None, True)
    deploy("removed", version=f"{release}-cleanup")  # disabled, so it may be deleted
    schedules.delete(SCHEDULE_ID)


def test_rolling_deploy_an_older_worker_does_not_take_back_a_schedule_moved_to_another_module(
    env, start_worker, schedules, unique
):
    """A release renamed the module declaring a schedule: its workers no longer import the old module, so no newer
    set of that module is ever recorded, and an old worker restarting took the schedule back to its old module
    and definition."""
    with contextlib.suppress(ScheduleNotFound):  # left disabled by another test, if it ran
        schedules.delete(SCHEDULE_ID)
    release = unique("release")
    moved = "tests.workflows,tests.schedule_declarations_moved"
    start_worker(ZART_IMPORTS=IMPORTS, ZART_TEST_SCHEDULE="every-2s", ZART_CODE_VERSION=release).stop()
    start_worker(ZART_IMPORTS=moved, ZART_TEST_SCHEDULE="moved", ZART_CODE_VERSION=f"{release}-2").stop()
    start_worker(ZART_IMPORTS=IMPORTS, ZART_TEST_SCHEDULE="every-2s", ZART_CODE_VERSION=release).stop()
    row = schedules.get(SCHEDULE_ID)
    assert (row["task"], row["cron"], row["enabled"], row["declared_in"]) == (
        "t.declared-moved",
        "0 * * * *",
        True,
        "tests.schedule_declarations_moved",
    )
    start_worker(ZART_IMPORTS=moved, ZART_TEST_SCHEDULE="removed", ZART_CODE_VERSION=f"{release}-3").stop()
    schedules.delete(SCHEDULE_ID)
