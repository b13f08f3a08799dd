"""Replacing beat end to end: `zart schedules import-beat` on a real Celery app, then zart's sweepers fire its
tasks on a plain `celery worker` of that app, exactly once per tick, with the results recorded by zart."""

from __future__ import annotations

from tests.celery.conftest import Process, celery_worker_argv
from tests.cli.cli import Cli
from tests.harness import REPO, poll
from tests.schedules.conftest import fired


def test_imported_beat_entries_fire_on_a_plain_celery_worker(env, tmp_path, log_dir, start_zart, processes, service):
    zart = Cli(env, tmp_path)
    start_zart()
    fleet = Process(env.variables(), log_dir, "beatfleet", celery_worker_argv("tests.beat_fleet", "beatfleet", 2))
    processes.append(fleet.wait_for(b" ready."))

    imported = zart("schedules", "import-beat", "-A", "tests.beat_fleet", "--json")
    assert imported.returncode == 0, imported.stderr
    assert {e["schedule_id"]: e["result"] for e in imported.json()["entries"]} == {
        "ping-every-two-seconds": "created",
        "add-hourly": "created",
    }
    ping = zart("schedules", "show", "ping-every-two-seconds", "--json").json()
    assert (ping["target_kind"], ping["args"], ping["data"]) == ("celery", ["pong"], {"queue": "beatfleet"})

    def completed() -> list[dict]:
        return [run for run in fired(env, "ping-every-two-seconds") if run["status"] == "completed"]

    poll(lambda: len(completed()) >= 2, timeout=40, what="two ticks run by the plain Celery worker")
    zart("schedules", "pause", "ping-every-two-seconds")
    runs = fired(env, "ping-every-two-seconds")
    assert len({run["scheduled_for"] for run in runs}) == len(runs)  # one execution per tick
    output = service.status(completed()[0]["id"])["output"]
    assert output == {"task": "beatfleet.ping", "result": "pong"}

    triggered = zart("schedules", "trigger", "add-hourly", "--json").json()["fired"][0]["execution_id"]
    assert zart("wait", triggered, "--timeout", "40").returncode == 0
    assert service.status(triggered)["output"] == {"task": "beatfleet.add", "result": 5}
    created = zart(
        "schedules",
        "create",
        "add-from-cli",
        "--task",
        "beatfleet.add",
        "--celery",
        "--kwargs",
        '{"a": 1, "b": 1}',
        "--queue",
        "beatfleet",
        "--every",
        "3600",
    )
    assert created.returncode == 0, created.stderr
    by_cli = zart("schedules", "trigger", "add-from-cli", "--json").json()["fired"][0]["execution_id"]
    assert zart("wait", by_cli, "--timeout", "40").returncode == 0
    assert service.status(by_cli)["output"] == {"task": "beatfleet.add", "result": 2}
    for schedule_id in ("ping-every-two-seconds", "add-hourly", "add-from-cli"):
        assert zart("schedules", "delete", schedule_id).returncode == 0


def test_a_scheduled_execution_goes_to_its_workflows_queue(env, service):
    from datetime import UTC, datetime, timedelta

    from zart.schedule_service import ScheduleService
    from zart.schedules.spec import ScheduleSpec
    from zart.store import db, executions

    schedules = ScheduleService(service)
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)
    schedules.create(ScheduleSpec(id="etl-hourly", task="c.etl", every=3600, start_at=start, data={"journal": "-"}))
    try:
        outcome = schedules.backfill("etl-hourly", start, start, overlap="allow_all")
        with db.autocommit(env.database_url) as conn:
            assert executions.queue_of(conn, outcome.fired[0].execution_id) == "etl"
        service.cancel(outcome.fired[0].execution_id)
    finally:
        schedules.delete("etl-hourly")


BEAT_APP_WITH_TUPLES = """
from celery import Celery
app = Celery("tuplebeat", broker="memory://")
app.conf.task_routes = {"tuplebeat.*": {"queue": "tuplebeat"}}
app.conf.beat_schedule = {
    "resize": {"task": "tuplebeat.resize", "schedule": 3600.0, "args": ((640, 480),), "kwargs": {"keep": (1, 2)}},
    "report": {"task": "t.scheduled", "schedule": 3600.0, "kwargs": {"seconds": 0, "window": (0, 10)}},
    "split": {"task": "tuplebeat.resize", "schedule": 3600.0, "args": "abc"},
}

@app.task(name="tuplebeat.resize")
def resize(*args, **kwargs):
    return args
"""


def test_importing_entries_with_tuples_again_changes_nothing(env, tmp_path, unique):
    """A tuple inside args or kwargs (common in a Python config) is stored as a JSON array, so a second import
    compared a list with the tuple and refused the entry as "a different schedule"; args given as a string
    were split into characters (Celery itself refuses them)."""
    (tmp_path / "tuplebeat.py").write_text(BEAT_APP_WITH_TUPLES)
    zart = Cli(env, tmp_path)
    path, prefix = f"{REPO}:{tmp_path}", unique("tb") + "-"

    def imported() -> dict[str, tuple[str, str]]:
        result = zart("schedules", "import-beat", "-A", "tuplebeat", "--prefix", prefix, "--json", PYTHONPATH=path)
        assert result.returncode == 1, result  # "split" is refused
        return {e["name"]: (e["result"], e.get("reason", "")) for e in result.json()["entries"]}

    first = imported()
    assert (first["resize"][0], first["report"][0]) == ("created", "created")
    assert first["split"][0] == "refused" and "args must be a list" in first["split"][1]
    again = imported()
    assert (again["resize"], again["report"]) == (("unchanged", ""), ("unchanged", ""))
    shown = zart("schedules", "show", f"{prefix}resize", "--json").json()
    assert (shown["args"], shown["kwargs"]) == ([[640, 480]], {"keep": [1, 2]})
    for name in ("resize", "report"):
        assert zart("schedules", "delete", f"{prefix}{name}").returncode == 0


BEAT_APP_WITH_CLASHING_NAMES = """
from celery import Celery
app = Celery("clashbeat", broker="memory://")
app.conf.beat_schedule = {
    "nightly report": {"task": "t.scheduled", "schedule": 3600.0},
    "nightly/report": {"task": "t.scheduled", "schedule": 60.0},
}
"""


def test_two_entries_that_become_the_same_schedule_id_are_refused_by_the_dry_run_too(env, tmp_path, unique):
    """Both names become `nightly-report`: the dry run said both would be created (exit 0), and the import
    then created one and refused the other as "a different schedule already has the id"."""
    (tmp_path / "clashbeat.py").write_text(BEAT_APP_WITH_CLASHING_NAMES)
    zart = Cli(env, tmp_path)
    path, prefix = f"{REPO}:{tmp_path}", unique("cb") + "-"
    dry = zart(
        "schedules", "import-beat", "-A", "clashbeat", "--prefix", prefix, "--dry-run", "--json", PYTHONPATH=path
    )
    assert dry.returncode == 1, dry
    results = {e["name"]: (e["result"], e.get("reason", "")) for e in dry.json()["entries"]}
    assert results["nightly report"] == ("would create", "")
    assert results["nightly/report"][0] == "refused" and "'nightly report'" in results["nightly/report"][1]
    assert zart("schedules", "show", f"{prefix}nightly-report").returncode == 3
