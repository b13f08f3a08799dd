"""`--json` speaks the HTTP API's field names, `--quiet` silences stdout, and global flags go anywhere."""

from __future__ import annotations

import pytest

from tests.cli.cli import ISO_UTC, scheduled_id, status_of
from tests.harness import poll
from zart import __version__, views

pytestmark = pytest.mark.usefixtures("worker")

STATUS_FIELDS = list(views.STATUS_FIELDS)  # pinned to the contract by tests/unit/test_views.py


def waiting_execution(zart, journal) -> str:
    execution_id = scheduled_id(zart("schedule", "t.event", "--data", journal()))
    poll(lambda: status_of(zart, execution_id) == "waiting", what="the execution to wait for its event")
    return execution_id


def test_json_output_uses_the_api_field_names(zart, journal):
    scheduled = zart("schedule", "t.event", "--data", journal(), "--json").json()
    assert list(scheduled) == ["execution_id", "task", "status", "created_at"]
    assert scheduled["task"] == "t.event" and scheduled["status"] == "pending"
    assert ISO_UTC.match(scheduled["created_at"])
    execution_id = scheduled["execution_id"]
    poll(lambda: status_of(zart, execution_id) == "waiting", what="the execution to wait for its event")

    status = zart("status", execution_id, "--json").json()
    assert list(status) == STATUS_FIELDS
    assert status["status"] == "waiting" and status["waiting_for_event"] == "approval"
    assert status["steps_completed"] == 1 and status["completed_at"] is None

    verbose = zart("status", execution_id, "--json", "--verbose").json()
    assert list(verbose) == [*STATUS_FIELDS, "steps"]
    assert [(s["name"], s["kind"], s["status"]) for s in verbose["steps"]] == [
        ("prepare", "step", "completed"),
        ("approval", "event", "waiting"),
    ]
    assert [a["outcome"] for a in verbose["steps"][0]["attempt_history"]] == ["completed"]

    delivered = zart("event", execution_id, "approval", "--data", '"yes"', "--json").json()
    assert delivered == {"status": "delivered", "execution_id": execution_id, "event_name": "approval"}

    waited = zart("wait", execution_id, "--timeout", "30", "--json").json()
    assert list(waited) == ["execution_id", "status", "output", "error", "completed_at"]
    assert waited["status"] == "completed" and waited["output"] == {"payload": "yes"} and waited["error"] is None

    listed = zart("list", "--task", "t.event", "--limit", "1", "--json").json()
    assert list(listed) == ["executions", "total", "limit", "offset", "next_cursor"]
    assert listed["limit"] == 1 and listed["offset"] == 0 and listed["total"] >= 1
    assert listed["executions"][0]["execution_id"] == execution_id

    other = waiting_execution(zart, journal)
    assert zart("cancel", other, "--json").json() == {"execution_id": other, "status": "cancelled"}


def test_json_wait_that_times_out_has_the_api_202_body_and_exits_2(zart, journal):
    execution_id = waiting_execution(zart, journal)
    waited = zart("wait", execution_id, "--timeout", "0.2", "--json")
    assert waited.returncode == 2
    assert waited.json() == {
        "execution_id": execution_id,
        "status": "waiting",
        "message": "Timeout reached. Execution is still running.",
    }


def test_quiet_leaves_stdout_empty(zart, journal, unique):
    execution_id = unique("quiet")
    scheduled = zart("schedule", "t.event", "--data", journal(), "--quiet", "--id", execution_id)
    assert (scheduled.returncode, scheduled.stdout) == (0, "")
    poll(lambda: status_of(zart, execution_id) == "waiting", what="the execution to wait for its event")
    for arguments in (
        ["status", execution_id, "--verbose"],
        ["list"],
        ["tasks"],
        ["wait", execution_id, "--timeout", "0.1"],
        ["event", execution_id, "approval"],
        ["wait", execution_id, "--timeout", "30"],
    ):
        result = zart("--quiet", *arguments)
        assert result.stdout == "", arguments
        assert result.returncode == (2 if arguments[-1] == "0.1" else 0), (arguments, result.stderr)

    assert zart("status", execution_id, "--quiet", "--json").json()["status"] == "completed"
    other = waiting_execution(zart, journal)
    cancelled = zart("cancel", other, "--quiet")
    assert (cancelled.returncode, cancelled.stdout) == (0, "")
    assert status_of(zart, other) == "cancelled"


def test_quiet_still_reports_errors_on_stderr(zart, unique):
    missing = unique("missing")
    result = zart("--quiet", "status", missing)
    assert (result.returncode, result.stdout) == (3, "")
    assert result.stderr == f"Error: No execution found with ID {missing}\n"


def test_global_flags_work_before_and_after_the_subcommand(zart, journal, env, unique):
    execution_id = scheduled_id(zart("schedule", "t.three-steps", "--data", journal()))
    assert zart("wait", execution_id, "--timeout", "30").returncode == 0
    broken = f"postgresql://postgres@127.0.0.1:1/{unique('nowhere')}"

    before = zart("--json", "--database-url", env.database_url, "status", execution_id, DATABASE_URL=broken)
    after = zart("status", execution_id, "--json", "--database-url", env.database_url, DATABASE_URL=broken)
    assert before.returncode == after.returncode == 0, (before.stderr, after.stderr)
    assert before.json() == after.json()
    assert after.json()["status"] == "completed"

    mixed = zart("--quiet", "wait", execution_id, "--json")
    assert mixed.json()["status"] == "completed"


@pytest.mark.parametrize("position", ["before", "after"])
def test_version_and_help_work_before_and_after_the_subcommand(zart, position):
    def run(flag: str):
        return zart(flag, "status") if position == "before" else zart("status", "x", flag)

    version = run("--version")
    assert (version.returncode, version.stdout) == (0, f"zart, version {__version__}\n")
    shown = run("--help")
    assert shown.returncode == 0
    expected = "Usage: zart [OPTIONS] COMMAND" if position == "before" else "Usage: zart status [OPTIONS] EXECUTION_ID"
    assert shown.stdout.startswith(expected)
    for flag in ("--database-url", "--json", "--quiet", "--version", "--help"):
        assert flag in shown.stdout


def test_colour_only_on_a_terminal(zart, journal):
    execution_id = scheduled_id(zart("schedule", "t.three-steps", "--data", journal()))
    assert zart("wait", execution_id, "--timeout", "30").returncode == 0

    piped = zart("status", execution_id)
    assert "status: completed" in piped.lines and "\x1b[" not in piped.stdout
    shown = zart.on_terminal("status", execution_id)
    assert "status: \x1b[" in shown and "completed\x1b[0m" in shown
    table = zart.on_terminal("list", "--limit", "3")
    assert table.startswith("\x1b[1mEXECUTION ID")


def test_a_quiet_worker_prints_no_banner_on_stdout(env, tmp_path, unique):
    """The worker's work is visible in its logs (stderr); --quiet keeps Celery's banner off stdout."""
    import signal
    import subprocess

    from tests.cli.cli import ZART

    stdout, stderr = tmp_path / "stdout", tmp_path / "stderr"
    with stdout.open("wb") as out, stderr.open("wb") as err:
        worker = subprocess.Popen(
            [str(ZART), "--quiet", "worker", "--concurrency", "1", "--hostname", f"{unique('quiet')}@%h"],
            env=env.variables(),
            stdout=out,
            stderr=err,
            start_new_session=True,
        )
        try:
            poll(lambda: b" ready." in stderr.read_bytes(), 30, what="the quiet worker to be ready")
        finally:
            worker.send_signal(signal.SIGTERM)
            worker.wait(timeout=30)
    assert stdout.read_bytes() == b""
