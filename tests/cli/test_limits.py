"""`zart limits …` and the schedule flags for flow control, through the real command."""

from __future__ import annotations

import json


def test_limits_set_show_pause_resume_and_refusals(zart, unique):
    name = unique("cli-limit")
    created = zart("--json", "limits", "set", name, "--concurrency", "3", "--rate", "100/m", "--burst", "5")
    assert created.returncode == 0, created.stderr
    view = created.json()
    assert (view["concurrency"], view["rate"], view["burst"], view["source"]) == (3, "100/m", 5, "runtime")

    changed = zart("--json", "limits", "set", name, "--concurrency", "none")
    assert changed.returncode == 0, changed.stderr
    assert (changed.json()["concurrency"], changed.json()["rate"]) == (None, "100/m")  # the rest is kept

    for bad in (["--rate", "100/fortnight"], ["--concurrency", "-1"], ["--concurrency", "two"], ["--burst", "0"]):
        refused = zart("limits", "set", name, *bad)
        assert refused.returncode == 1, (bad, refused.stdout, refused.stderr)
        assert "Error" in refused.stderr, refused.stderr
    assert zart("--json", "limits", "show", name).json()["rate"] == "100/m"  # nothing changed

    paused = zart("--json", "limits", "pause", name)
    assert paused.returncode == 0 and paused.json()["paused"] is True
    listed = zart("--json", "limits", "list").json()["limits"]
    assert [entry["paused"] for entry in listed if entry["name"] == name] == [True]
    text = zart("limits", "list")
    assert name in text.stdout and "PAUSED" in text.stdout
    assert zart("--json", "limits", "resume", name).json()["paused"] is False

    assert zart("limits", "show", unique("missing")).returncode == 1
    deleted = zart("--json", "limits", "delete", name)
    assert deleted.returncode == 0 and deleted.json()["deleted"] is True


def test_schedule_refuses_bad_flow_options(zart):
    data = json.dumps({"journal": "/dev/null", "customer": {"name": "no id"}})
    missing_key = zart("schedule", "flow.keyed", "--data", data)
    assert missing_key.returncode == 1 and "customer.id" in missing_key.stderr
    assert zart("schedule", "flow.plain", "--debounce", "5").returncode == 1  # debounce needs a dedup key
    assert zart("schedule", "flow.plain", "--dedup-key", "k", "--debounce", "-1").returncode == 1
    assert zart("schedule", "flow.plain", "--priority", "high").returncode == 1


def test_schedule_with_a_dedup_key_returns_the_active_execution(zart, unique):
    key = unique("dedup")
    first = zart("--json", "schedule", "flow.plain", "--dedup-key", key, "--debounce", "30")
    again = zart("--json", "schedule", "flow.plain", "--dedup-key", key, "--priority", "5")
    assert first.returncode == again.returncode == 0, (first.stderr, again.stderr)
    assert first.json()["execution_id"] == again.json()["execution_id"]
    assert zart("cancel", first.json()["execution_id"]).returncode == 0
