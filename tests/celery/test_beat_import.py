"""Replacing beat end to end: `zart schedules import-beat` on a real Celery app, then zart's sweepers fire its
tasks on a plain `celery worker` of that app, exactly once per tick, with the results recorded by zart."""

from __future__ import annotations

from tests.celery.conftest import Process, celery_worker_argv
from tests.cli.cli import Cli
from tests.harness import poll
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
    for schedule_id in ("ping-every-two-seconds", "add-hourly"):
        assert zart("schedules", "delete", schedule_id).returncode == 0
