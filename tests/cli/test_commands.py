"""Every execution command through the installed `zart` script: output lines and exit codes."""

from __future__ import annotations

import json

import pytest

from tests.cli.cli import ISO_UTC, scheduled_id, status_of
from tests.harness import poll
from tests.workflows import entries

pytestmark = pytest.mark.usefixtures("worker")


def test_schedule_prints_three_lines_and_wait_prints_the_output(zart, journal):
    scheduled = zart("schedule", "t.three-steps", "--data", journal())
    execution_id = scheduled_id(scheduled)
    assert execution_id.startswith("exec-")
    assert scheduled.lines == [f"Scheduled execution: {execution_id}", "Task: t.three-steps", "Status: pending"]
    assert scheduled.stderr == ""

    waited = zart("wait", execution_id, "--timeout", "30")
    assert waited.returncode == 0, waited.stderr
    assert waited.stdout == '{"status":"completed","output":{"sum":6}}\n'


def test_scheduling_the_same_id_twice_returns_the_existing_execution(zart, journal, unique):
    execution_id = unique("again")
    data = journal()
    assert scheduled_id(zart("schedule", "t.three-steps", "--data", data, "--id", execution_id)) == execution_id
    assert zart("wait", execution_id, "--timeout", "30").returncode == 0

    again = zart("schedule", "t.three-steps", "--data", data, "--id", execution_id)
    assert again.returncode == 0, again.stderr
    assert again.lines == [f"Scheduled execution: {execution_id}", "Task: t.three-steps", "Status: completed"]
    assert [entries(json.loads(data)["journal"], step) for step in "abc"] == [1, 1, 1]  # nothing ran twice


def test_an_id_taken_by_another_task_is_an_error(zart, journal, unique):
    execution_id = unique("taken")
    scheduled_id(zart("schedule", "t.three-steps", "--data", journal(), "--id", execution_id))
    clash = zart("schedule", "t.event", "--data", journal(), "--id", execution_id)
    assert clash.returncode == 1
    assert clash.stdout == ""
    assert clash.stderr.startswith("Error: ") and "already exists" in clash.stderr


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["t.no-such-task", "--data", "{}"], "no registered handler"),
        (["t.three-steps", "--data", "{not json"], "invalid JSON"),
        (["t.three-steps", "--data", "[1, 2]"], "must be a JSON object"),
        (["t.three-steps", "--data", "42"], "must be a JSON object"),
    ],
)
def test_unknown_task_or_bad_data_exits_1_and_writes_nothing(zart, unique, arguments, message):
    execution_id = unique("refused")
    refused = zart("schedule", *arguments, "--id", execution_id)
    assert refused.returncode == 1
    assert refused.stdout == ""
    assert message in refused.stderr
    assert any(line.startswith("Error: ") for line in refused.stderr.splitlines())
    assert zart("status", execution_id).returncode == 3


def test_status_of_a_completed_execution(zart, journal):
    execution_id = scheduled_id(zart("schedule", "t.three-steps", "--data", journal()))
    assert zart("wait", execution_id, "--timeout", "30").returncode == 0

    shown = zart("status", execution_id)
    assert shown.returncode == 0, shown.stderr
    fields = dict(line.split(": ", 1) for line in shown.lines)
    assert list(fields) == ["execution_id", "task", "status", "started_at", "completed_at", "steps", "output"]
    assert fields["execution_id"] == execution_id
    assert fields["task"] == "t.three-steps"
    assert fields["status"] == "completed"
    assert ISO_UTC.match(fields["started_at"]) and ISO_UTC.match(fields["completed_at"])
    assert fields["steps"] == "3 completed, 0 running"
    assert json.loads(fields["output"]) == {"sum": 6}


def test_status_of_a_waiting_execution_says_what_it_waits_for(zart, journal):
    execution_id = scheduled_id(zart("schedule", "t.event", "--data", journal()))
    poll(lambda: status_of(zart, execution_id) == "waiting", what="the execution to wait for its event")

    shown = zart("status", execution_id)
    assert shown.returncode == 0, shown.stderr
    assert "status: waiting" in shown.lines
    assert "steps: 1 completed, 0 running" in shown.lines
    assert "waiting_for: event approval" in shown.lines
    assert not any(line.startswith(("completed_at:", "output:", "error:")) for line in shown.lines)


def test_status_verbose_shows_every_step_and_attempt(zart, journal):
    execution_id = scheduled_id(zart("schedule", "t.retry-fixed", "--data", journal()))
    assert zart("wait", execution_id, "--timeout", "30").returncode == 0

    shown = zart("status", execution_id, "--verbose")
    assert shown.returncode == 0, shown.stderr
    assert "step flaky (step): completed, 3 attempts" in shown.lines
    attempts = [line.split() for line in shown.lines if line.strip().startswith("#")]
    assert [(row[0], row[3]) for row in attempts] == [("#1", "failed"), ("#2", "failed"), ("#3", "completed")]
    assert all(ISO_UTC.match(row[1]) and ISO_UTC.match(row[2]) for row in attempts)
    assert attempts[0][4:] == ["ConnectionError:", "flaky", "failure", "1"]


def test_cancel_then_wait_exits_1(zart, journal):
    execution_id = scheduled_id(zart("schedule", "t.event", "--data", journal()))
    poll(lambda: status_of(zart, execution_id) == "waiting", what="the execution to wait for its event")

    cancelled = zart("cancel", execution_id)
    assert cancelled.returncode == 0, cancelled.stderr
    assert cancelled.stdout == f"Cancelled execution: {execution_id}\n"

    waited = zart("wait", execution_id)
    assert waited.returncode == 1
    assert waited.json() == {"status": "cancelled"}

    twice = zart("cancel", execution_id)
    assert twice.returncode == 1
    assert twice.stderr == f"Error: execution {execution_id} already finished as cancelled\n"


def test_wait_on_a_failed_execution_prints_the_error_and_exits_1(zart):
    execution_id = scheduled_id(zart("schedule", "t.fails"))
    waited = zart("wait", execution_id, "--timeout", "30")
    assert waited.returncode == 1
    assert waited.json() == {"status": "failed", "error": {"type": "KeyError", "message": "'missing-thing'"}}
    assert "error: KeyError: 'missing-thing'" in zart("status", execution_id).lines


def test_wait_exits_2_only_when_it_times_out(zart, journal):
    execution_id = scheduled_id(zart("schedule", "t.event", "--data", journal()))
    waited = zart("wait", execution_id, "--timeout", "0.5")
    assert waited.returncode == 2
    assert waited.json()["status"] in ("pending", "running", "waiting")
    assert f"Timeout reached: execution {execution_id} is still" in waited.stderr


def test_wait_with_a_timeout_that_is_not_a_number_is_refused(zart, journal):
    """`--timeout nan` passed the range check and waited for good, re-reading the execution in a busy loop."""
    execution_id = scheduled_id(zart("schedule", "t.event", "--data", journal()))
    waited = zart("wait", execution_id, "--timeout", "nan", timeout=20)
    assert waited.returncode == 1 and waited.stdout == ""
    assert "timeout" in waited.stderr


def test_event_resumes_a_waiting_execution(zart, journal):
    execution_id = scheduled_id(zart("schedule", "t.event", "--data", journal()))
    poll(lambda: status_of(zart, execution_id) == "waiting", what="the execution to wait for its event")

    wrong = zart("event", execution_id, "something-else")
    assert wrong.returncode == 1
    assert wrong.stderr.startswith("Error: ") and "is not waiting for event 'something-else'" in wrong.stderr

    delivered = zart("event", execution_id, "approval", "--data", '{"approved": true, "by": "jane"}')
    assert delivered.returncode == 0, delivered.stderr
    assert delivered.stdout == f"Event delivered to {execution_id}: approval\n"
    assert delivered.stderr == ""

    waited = zart("wait", execution_id, "--timeout", "30")
    assert waited.returncode == 0, waited.stderr
    assert waited.json() == {"status": "completed", "output": {"payload": {"approved": True, "by": "jane"}}}


@pytest.mark.parametrize(
    "command",
    [
        ["status"],
        ["status", "--verbose"],
        ["cancel"],
        ["wait", "--timeout", "1"],
        ["event", "--data", "{}"],
    ],
)
def test_every_command_that_takes_an_id_exits_3_when_it_does_not_exist(zart, unique, command):
    missing = unique("missing")
    name, *options = command
    arguments = [name, missing, "approval"] if name == "event" else [name, missing]
    result = zart(*arguments, *options)
    assert result.returncode == 3
    assert result.stdout == ""
    assert result.stderr == f"Error: No execution found with ID {missing}\n"


def test_list_prints_an_aligned_table_and_pages_like_the_api(zart, journal):
    ids = [scheduled_id(zart("schedule", "t.three-steps", "--data", journal())) for _ in range(3)]
    for execution_id in ids:
        assert zart("wait", execution_id, "--timeout", "30").returncode == 0

    table = zart("list", "--task", "t.three-steps", "--status", "completed", "--limit", "500")
    assert table.returncode == 0, table.stderr
    header, *rows, footer = table.lines
    assert header.split() == ["EXECUTION", "ID", "TASK", "STATUS", "CREATED", "STARTED"]
    columns = [header.index(title) for title in ("TASK", "STATUS", "CREATED", "STARTED")]
    for row in rows:
        assert [row[c - 2 : c] for c in columns] == ["  "] * 4, row  # every column starts where its title does
        assert row[columns[0] :].startswith("t.three-steps") and row[columns[1] :].startswith("completed")
    listed = [row.split()[0] for row in rows]
    assert [listed.index(i) for i in ids] == sorted((listed.index(i) for i in ids), reverse=True)  # newest first
    assert footer == f"(1-{len(rows)} of {len(rows)})"

    everything = zart("list", "--task", "t.three-steps", "--limit", "500", "--order", "asc", "--json").json()
    oldest_first = [e["execution_id"] for e in everything["executions"]]
    assert [oldest_first.index(i) for i in ids] == sorted(oldest_first.index(i) for i in ids)
    page = zart("list", "--task", "t.three-steps", "--limit", "2", "--offset", "1", "--order", "asc", "--json")
    assert page.json() == {
        "executions": everything["executions"][1:3],
        "total": everything["total"],
        "limit": 2,
        "offset": 1,
        "next_cursor": page.json()["next_cursor"],
    }


@pytest.mark.parametrize(
    "options",
    [["--status", "sleeping"], ["--limit", "0"], ["--limit", "501"], ["--offset", "-1"], ["--order", "up"]],
)
def test_list_refuses_bad_filters_with_a_usage_error(zart, options):
    refused = zart("list", *options)
    assert refused.returncode == 1
    assert refused.stdout == ""
    assert "Error: Invalid value for" in refused.stderr


def test_tasks_lists_the_catalog(zart):
    shown = zart("tasks")
    assert shown.returncode == 0, shown.stderr
    assert shown.lines[0].split() == ["TASK", "QUEUE", "REGISTERED", "BY", "LAST", "SEEN"]
    names = [line.split()[0] for line in shown.lines[1:]]
    assert {"t.three-steps", "t.event", "t.fails"} <= set(names)
    assert names == sorted(names)

    catalog = zart("tasks", "--json").json()
    assert {"t.three-steps", "t.event"} <= {task["name"] for task in catalog["tasks"]}
    assert all(ISO_UTC.match(task["last_seen_at"]) for task in catalog["tasks"])


@pytest.mark.parametrize(
    "arguments",
    [["no-such-command"], ["status"], ["schedule"], ["wait", "x", "--timeout", "soon"], ["list", "--bogus"]],
)
def test_usage_errors_exit_1_with_clicks_message(zart, arguments):
    result = zart(*arguments)
    assert result.returncode == 1
    assert result.stdout == ""
    assert "Usage: zart" in result.stderr or "Error: No such command" in result.stderr
    assert any(line.startswith("Error: ") for line in result.stderr.splitlines())
