"""`zart schedules …` end to end: the real command against the session's Postgres (and a worker for firing)."""

from __future__ import annotations

import os

import pytest

from tests.harness import REPO, poll

BAD = [
    (["--cron", "*/5 * * *"], "cron"),
    (["--cron", "*/5 * * * *", "--tz", "Europe/Atlantis"], "timezone"),
    (["--every", "0"], "every"),
    (["--every", "-3"], "every"),
    (["--every", "60", "--start", "2026-05-01T00:00:00Z", "--end", "2026-04-01T00:00:00Z"], "end_at"),
    (["--every", "60", "--start", "2026-05-01T00:00:00"], "timezone offset"),
    (["--every", "60", "--overlap", "sometimes"], "overlap"),
]


@pytest.mark.parametrize(("options", "mentioned"), BAD)
def test_bad_input_exits_1_and_creates_nothing(zart, unique, options, mentioned):
    schedule_id = unique("bad")
    result = zart("schedules", "create", schedule_id, "--task", "t.scheduled", *options)
    assert result.returncode == 1, result
    assert mentioned in result.stderr and result.stdout == ""
    assert zart("schedules", "show", schedule_id).returncode == 3


BEAT_APP_WITH_BAD_DATA = """
from celery import Celery
app = Celery("badbeat", broker="memory://")
app.conf.beat_schedule = {
    "typed-bad": {"task": "t.typed", "schedule": 60.0, "kwargs": {"amount": "ten"}},
    "typed-nul": {"task": "t.typed", "schedule": 60.0, "kwargs": {"amount": 1, "note": "a\\u0000b"}},
}
"""


def test_import_beat_dry_run_refuses_what_the_import_would_refuse(zart, unique, tmp_path):
    """A dry run checked only the definition: it said "would create" (exit 0) for entries whose data breaks
    the task's schema or cannot be stored, which the import itself then refused (exit 1)."""
    (tmp_path / "badbeat.py").write_text(BEAT_APP_WITH_BAD_DATA)
    path = f"{REPO}{os.pathsep}{tmp_path}"
    prefix = unique("bb") + "-"
    dry = zart("schedules", "import-beat", "-A", "badbeat", "--prefix", prefix, "--dry-run", "--json", PYTHONPATH=path)
    assert dry.returncode == 1, dry
    reasons = {e["name"]: (e["result"], e.get("reason", "")) for e in dry.json()["entries"]}
    assert reasons["typed-bad"][0] == "refused" and "amount" in reasons["typed-bad"][1]
    assert reasons["typed-nul"][0] == "refused" and "U+0000" in reasons["typed-nul"][1]
    assert zart("schedules", "show", f"{prefix}typed-bad").returncode == 3


BEAT_APP_WITH_OPTIONS = """
from celery import Celery
app = Celery("optbeat", broker="memory://")
app.conf.beat_schedule = {
    "expiring": {"task": "optbeat.ping", "schedule": 60.0,
                 "options": {"queue": "optbeat", "expires": 30, "priority": 5}},
    "routed": {"task": "optbeat.ping", "schedule": 60.0,
               "options": {"exchange": "pings", "routing_key": "ping.high", "headers": {"team": "ops"}}},
    "plain": {"task": "optbeat.ping", "schedule": 60.0, "options": {"queue": "optbeat"}},
    "zart-task": {"task": "t.scheduled", "schedule": 60.0, "kwargs": {"seconds": 0}, "options": {"queue": "fast"}},
}

@app.task(name="optbeat.ping")
def ping():
    return "pong"
"""


def test_import_beat_names_the_entry_options_a_schedule_cannot_carry(zart, unique, tmp_path):
    """An entry's `expires`, `priority`, routing (`exchange`, `routing_key`), `headers` ... were dropped without
    a word (and a zart task's queue too): the schedule then sends the task differently from beat. Each is now
    named, in a warning per entry and in the entry's `dropped_options`."""
    (tmp_path / "optbeat.py").write_text(BEAT_APP_WITH_OPTIONS)
    path, prefix = f"{REPO}{os.pathsep}{tmp_path}", unique("ob") + "-"
    dry = zart("schedules", "import-beat", "-A", "optbeat", "--prefix", prefix, "--dry-run", "--json", PYTHONPATH=path)
    assert dry.returncode == 0, dry
    entries = {e["name"]: e for e in dry.json()["entries"]}
    assert {name: (e["result"], e["dropped_options"]) for name, e in entries.items()} == {
        "expiring": ("would create", ["expires", "priority"]),
        "routed": ("would create", ["exchange", "headers", "routing_key"]),
        "plain": ("would create", []),
        "zart-task": ("would create", ["queue"]),
    }
    warnings = [line for line in dry.stderr.splitlines() if line.startswith("Warning: ")]
    assert len(warnings) == 3, dry.stderr
    assert "'expiring'" in warnings[0] and "expires, priority" in warnings[0]
    text = zart("schedules", "import-beat", "-A", "optbeat", "--prefix", prefix, "--dry-run", PYTHONPATH=path)
    assert text.returncode == 0 and "exchange, headers, routing_key" in text.stderr


def test_import_beat_refuses_an_entry_whose_options_are_not_a_mapping(zart, unique, tmp_path):
    """`options` given as a list stopped the whole import with Python's own error (`dictionary update sequence
    element #0 ...`), naming no entry and importing none of the others; the entry is refused instead."""
    (tmp_path / "listbeat.py").write_text(
        "from celery import Celery\n"
        "app = Celery('listbeat', broker='memory://')\n"
        "app.conf.beat_schedule = {'odd': {'task': 'listbeat.ping', 'schedule': 60.0, 'options': ['queue']}}\n"
        "@app.task(name='listbeat.ping')\n"
        "def ping():\n"
        "    return 'pong'\n"
    )
    path, prefix = f"{REPO}{os.pathsep}{tmp_path}", unique("lb") + "-"
    dry = zart("schedules", "import-beat", "-A", "listbeat", "--prefix", prefix, "--dry-run", "--json", PYTHONPATH=path)
    assert dry.returncode == 1 and "Traceback" not in dry.stderr, dry
    [entry] = dry.json()["entries"]
    assert entry["result"] == "refused" and "options must be a mapping" in entry["reason"]


def _beat_app(name: str, entries: dict[str, str]) -> str:
    lines = "".join(f"    {entry!r}: {{'task': 't.scheduled', 'schedule': {every}, 'kwargs': {{'seconds': 0}}}},\n"
                    for entry, every in entries.items())
    head = f"from celery import Celery\napp = Celery({name!r}, broker='memory://')\n"
    return f"{head}app.conf.beat_schedule = {{\n{lines}}}\n"


def test_import_beat_disables_the_schedule_of_an_entry_removed_since_the_last_import(zart, service, unique, tmp_path):
    """An entry removed from beat_schedule stops firing under beat; its imported schedule went on firing
    after every later import. A re-import now disables it (kept, with its history), and enables it again if
    the entry comes back; a dry run says so and changes nothing; another app's imports are left alone."""
    path, prefix = f"{REPO}{os.pathsep}{tmp_path}", unique("gb") + "-"
    (tmp_path / "gonebeat.py").write_text(_beat_app("gonebeat", {"daily": "86400.0", "hourly": "3600.0"}))
    (tmp_path / "otherbeat.py").write_text(_beat_app("otherbeat", {"weekly": "604800.0"}))

    def imported(app: str, *extra: str) -> dict[str, tuple[str, str]]:
        result = zart("schedules", "import-beat", "-A", app, "--prefix", prefix, "--json", *extra, PYTHONPATH=path)
        assert result.returncode == 0, result
        return {e["schedule_id"]: e["result"] for e in result.json()["entries"]}

    from zart.schedule_service import ScheduleService

    schedules = ScheduleService(service)  # reads and clean-up in process: the command under test is the import

    def enabled(name: str) -> bool:
        return schedules.get(f"{prefix}{name}")["enabled"]

    assert imported("gonebeat") == {f"{prefix}daily": "created", f"{prefix}hourly": "created"}
    assert imported("otherbeat") == {f"{prefix}weekly": "created"}
    (tmp_path / "gonebeat.py").write_text(_beat_app("gonebeat", {"daily": "86400.0"}))
    assert imported("gonebeat", "--dry-run") == {f"{prefix}daily": "unchanged", f"{prefix}hourly": "would disable"}
    assert enabled("hourly")
    assert imported("gonebeat") == {f"{prefix}daily": "unchanged", f"{prefix}hourly": "disabled"}
    assert not enabled("hourly") and enabled("daily") and enabled("weekly")
    assert imported("gonebeat") == {f"{prefix}daily": "unchanged"}  # already disabled: nothing more to say
    (tmp_path / "gonebeat.py").write_text(_beat_app("gonebeat", {"daily": "86400.0", "hourly": "3600.0"}))
    assert imported("gonebeat") == {f"{prefix}daily": "unchanged", f"{prefix}hourly": "enabled"}
    shown = schedules.get(f"{prefix}hourly")
    assert shown["enabled"] and shown["next_tick"] is not None
    for name in ("daily", "hourly", "weekly"):
        schedules.delete(f"{prefix}{name}")


def test_import_beat_claims_the_schedules_an_import_made_before_it_recorded_the_app(zart, service, unique, tmp_path):
    """Schedules imported before imports recorded their app are claimed by the first import that finds their
    entry, so a later removal of the entry disables them too."""
    from zart.schedule_service import ScheduleService
    from zart.schedules.spec import ScheduleSpec

    path, prefix = f"{REPO}{os.pathsep}{tmp_path}", unique("ob") + "-"
    (tmp_path / "oldbeat.py").write_text(_beat_app("oldbeat", {"daily": "86400.0", "hourly": "3600.0"}))
    for name, every in (("daily", 86400), ("hourly", 3600)):  # as an earlier import left them: no app recorded
        spec = ScheduleSpec(id=f"{prefix}{name}", task="t.scheduled", every=every, data={"seconds": 0})
        ScheduleService(service).create(spec, source="beat")

    def imported() -> dict[str, str]:
        result = zart("schedules", "import-beat", "-A", "oldbeat", "--prefix", prefix, "--json", PYTHONPATH=path)
        assert result.returncode == 0, result
        return {e["schedule_id"]: e["result"] for e in result.json()["entries"]}

    assert imported() == {f"{prefix}daily": "unchanged", f"{prefix}hourly": "unchanged"}
    (tmp_path / "oldbeat.py").write_text(_beat_app("oldbeat", {"daily": "86400.0"}))
    assert imported() == {f"{prefix}daily": "unchanged", f"{prefix}hourly": "disabled"}
    for name in ("daily", "hourly"):
        assert zart("schedules", "delete", f"{prefix}{name}").returncode == 0


def test_import_beat_refuses_crontabs_read_in_the_beat_hosts_local_time(zart, unique, tmp_path):
    """With `enable_utc` off and no `timezone`, Celery reads crontabs in the local time of the host beat runs on;
    the import took them for UTC, so every such schedule fired hours off without a word. zart cannot know that
    host's zone: the crontab entries are refused with the fix (name the zone); intervals are unaffected."""
    (tmp_path / "localbeat.py").write_text(
        "from celery import Celery\n"
        "from celery.schedules import crontab\n"
        "app = Celery('localbeat', broker='memory://')\n"
        "app.conf.enable_utc = False\n"
        "app.conf.beat_schedule = {\n"
        "    'morning': {'task': 't.scheduled', 'schedule': crontab(minute=0, hour=7), 'kwargs': {'seconds': 0}},\n"
        "    'often': {'task': 't.scheduled', 'schedule': 300.0, 'kwargs': {'seconds': 0}},\n"
        "}\n"
    )
    path, prefix = f"{REPO}{os.pathsep}{tmp_path}", unique("lt") + "-"
    dry = zart("schedules", "import-beat", "-A", "localbeat", "--prefix", prefix, "--dry-run", "--json",
               PYTHONPATH=path)
    assert dry.returncode == 1, dry
    entries = {e["name"]: e for e in dry.json()["entries"]}
    assert entries["often"]["result"] == "would create"
    assert entries["morning"]["result"] == "refused" and "timezone" in entries["morning"]["reason"]


def test_unknown_target_exits_1(zart, unique):
    schedule_id = unique("orphan")
    result = zart("schedules", "create", schedule_id, "--task", "no.such-task", "--every", "60")
    assert result.returncode == 1 and "no.such-task" in result.stderr
    assert zart("schedules", "show", schedule_id, "--json").returncode == 3


def test_create_list_trigger_and_delete(zart, worker, unique):
    schedule_id = unique("cli")
    created = zart(
        "schedules",
        "create",
        schedule_id,
        "--task",
        "t.scheduled",
        "--cron",
        "0 3 * * *",
        "--tz",
        "Europe/Berlin",
        "--data",
        '{"seconds": 0}',
        "--json",
    )
    assert created.returncode == 0, created.stderr
    view = created.json()
    assert view["source"] == "cli" and view["timezone"] == "Europe/Berlin" and len(view["upcoming"]) == 5

    fired = zart("schedules", "trigger", schedule_id, "--json")
    assert fired.returncode == 0, fired.stderr
    execution_id = fired.json()["fired"][0]["execution_id"]
    assert zart("wait", execution_id, "--timeout", "30").returncode == 0
    detail = zart("admin", "detail", execution_id)
    assert f"schedule: {schedule_id} (tick " in detail.stdout, detail.stdout

    def listed() -> str | None:
        result = zart("schedules", "list", "--task", "t.scheduled", "--limit", "500")
        line = next((line for line in result.lines if line.startswith(schedule_id)), "")
        return line if "completed" in line else None

    line = poll(listed, timeout=20, what="the last outcome in the list")
    assert "0 3 * * *" in line and "active" in line

    paused = zart("schedules", "pause", schedule_id)
    assert paused.returncode == 0 and "state: paused" in paused.stdout
    assert zart("schedules", "delete", schedule_id).returncode == 0
    assert zart("schedules", "trigger", schedule_id).returncode == 3


@pytest.mark.release_only  # passes alone, failed once late in the full suite; under investigation
def test_import_beat_reads_a_celery_app_and_the_schedules_fire(zart, worker, env):
    dry = zart("schedules", "import-beat", "-A", "tests.beat_app", "--prefix", "dry-", "--dry-run", "--json")
    assert dry.returncode == 1, dry.stderr  # refusals make the exit code say so
    entries = {e["name"]: e for e in dry.json()["entries"]}
    assert {n: e["result"] for n, e in entries.items()} == {
        "nightly report": "would create",
        "weekday-mornings": "would create",
        "every-two-seconds": "would create",
        "every-five-minutes": "would create",
        "sunrise": "refused",
        "half-second": "refused",
        "cleanup": "would create",
        "not-a-task": "refused",
    }
    assert "solar" in entries["sunrise"]["reason"] and "whole seconds" in entries["half-second"]["reason"]
    assert "neither a zart task nor a task of the Celery app" in entries["not-a-task"]["reason"]
    assert entries["nightly report"]["timing"] == "cron 30 2 * * * (Europe/Berlin)"
    assert entries["weekday-mornings"]["timing"] == "cron */15 9-17 * * mon-fri (Europe/Berlin)"
    assert zart("schedules", "show", "dry-every-two-seconds").returncode == 3, "a dry run created a schedule"

    imported = zart("schedules", "import-beat", "-A", "tests.beat_app", "--prefix", "beat-")
    assert imported.returncode == 1 and "3 of 8 entries refused" in imported.stderr
    assert "beat-nightly-report" in imported.stdout
    again = zart("schedules", "import-beat", "-A", "tests.beat_app", "--prefix", "beat-", "--json")
    assert {e["result"] for e in again.json()["entries"] if e["result"] != "refused"} == {"unchanged"}

    shown = zart("schedules", "show", "beat-nightly-report", "--json").json()
    assert (shown["source"], shown["cron"], shown["timezone"], shown["data"]) == (
        "beat",
        "30 2 * * *",
        "Europe/Berlin",
        {"seconds": 0},
    )

    def fired_twice() -> bool:
        view = zart("schedules", "show", "beat-every-two-seconds", "--json").json()
        return view["last_status"] == "completed" and view["last_tick"] is not None

    cleanup = zart("schedules", "show", "beat-cleanup", "--json").json()
    assert (cleanup["target_kind"], cleanup["task"], cleanup["data"]) == (
        "celery",
        "beatproj.cleanup",
        {"queue": "beatproj"},
    )
    poll(fired_twice, timeout=30, what="the imported interval schedule to fire")
    for name in ("nightly-report", "weekday-mornings", "every-two-seconds", "every-five-minutes", "cleanup"):
        assert zart("schedules", "delete", f"beat-{name}").returncode == 0
    assert zart("schedules", "import-beat", "-A", "no_such_module.celery").returncode == 1
