"""Celery tasks of a separate "legacy" application as durable steps, run by that application's own workers."""

from __future__ import annotations

from typing import Any

from tests.harness import assert_nothing_stranded, poll
from tests.integration.test_core import finished, query, schedule
from tests.workflows import entries
from zart.service import ZartService


def remote_rows(service: Any, execution_id: str) -> list[dict[str, Any]]:
    return query(
        service,
        "SELECT step_name, state, attempt, sends, losses, queue, task_name, worker FROM remote_steps "
        "WHERE execution_id = :id ORDER BY step_name",
        id=execution_id,
    )


def test_celery_tasks_as_steps_in_sequence_and_in_parallel(service, zart_worker, legacy_worker, log_dir):
    sequence_id, journal = schedule(service, "c.sequence", log_dir)
    parallel_id, parallel_journal = schedule(service, "c.parallel", log_dir, n=5)
    assert finished(service, sequence_id)["output"] == {"a": 3, "b": 30}
    assert finished(service, parallel_id)["output"] == [0, 1, 4, 9, 16]
    assert entries(journal, "add") == 1 and entries(journal, "multiply") == 1
    assert [entries(parallel_journal, f"square-{n}") for n in range(5)] == [1] * 5
    steps = {s["name"]: s for s in service.steps(sequence_id)}
    assert (steps["add"]["kind"], steps["add"]["status"], steps["add"]["output"]) == ("remote", "completed", 3)
    rows = remote_rows(service, sequence_id)
    assert [(r["step_name"], r["state"], r["queue"], r["task_name"]) for r in rows] == [
        ("add", "succeeded", "legacy", "legacy.add"),
        ("multiply", "succeeded", "legacy", "legacy.multiply"),
    ]
    assert all(r["worker"] and r["worker"].startswith("legacy") for r in rows)


def test_the_zart_worker_runs_other_work_while_a_remote_step_runs(service, start_zart, legacy_worker, log_dir):
    start_zart(concurrency=1)
    release = log_dir / "release"
    blocked_id, journal = schedule(service, "c.blocking", log_dir, release=str(release))
    poll(lambda: entries(journal, "wait") == 1, what="the remote step to start")
    poll(lambda: service.status(blocked_id)["status"] == "waiting", what="the workflow to park")
    other_id, _ = schedule(service, "t.three-steps", log_dir)
    assert finished(service, other_id, timeout=15)["output"] == {"sum": 6}
    assert service.status(blocked_id)["status"] == "waiting"
    release.touch()
    assert finished(service, blocked_id)["output"] == {"value": "released", "after": 4}


def test_a_worker_without_the_integration_line_still_completes_the_step(service, zart_worker, start_legacy, log_dir):
    start_legacy("tests.legacy.app")
    execution_id, journal = schedule(service, "c.sequence", log_dir)
    assert finished(service, execution_id)["output"] == {"a": 3, "b": 30}
    assert entries(journal, "add") == 1
    # no integration: nobody reported the start, the fallback callback recorded the result
    assert [(r["state"], r["worker"]) for r in remote_rows(service, execution_id)] == [("succeeded", None)] * 2


def test_a_worker_without_the_integration_on_a_pickle_fleet_still_completes_the_step(
    service, zart_worker, start_legacy, log_dir
):
    """The fallback callbacks are JSON whatever the fleet's default serializer: zart's worker takes JSON only."""
    start_legacy("tests.legacy.pickled")
    execution_id, journal = schedule(service, "c.sequence", log_dir)
    assert finished(service, execution_id)["output"] == {"a": 3, "b": 30}
    assert entries(journal, "add") == 1


def test_a_failure_on_a_worker_without_the_integration_fails_the_step_clearly(
    service, zart_worker, start_legacy, log_dir
):
    start_legacy("tests.legacy.app")
    execution_id, journal = schedule(service, "c.always-fails", log_dir)
    row = finished(service, execution_id)
    assert row["status"] == "failed"
    assert row["error"]["type"] == "StepFailed" and row["error"]["cause"] == "TaskFailed"
    assert "without zart.celery.integrate" in row["error"]["message"]
    assert entries(journal, "always_fails") == 3


def test_inline_runs_the_task_body_in_the_workflow(service, zart_worker, log_dir):
    execution_id, journal = schedule(service, "c.inline", log_dir)
    assert finished(service, execution_id)["output"] == 42
    assert entries(journal, "add") == 1
    assert remote_rows(service, execution_id) == []
    assert service.steps(execution_id)[0]["kind"] == "step"


def test_status_verbose_and_admin_detail_show_the_celery_task(service, env, zart_worker, legacy_worker, log_dir):
    from flask_app import create_app
    from tests.cli.cli import Cli

    release = log_dir / "release"
    execution_id, journal = schedule(service, "c.blocking", log_dir, release=str(release))
    poll(lambda: remote_rows(service, execution_id)[:1] and remote_rows(service, execution_id)[0]["state"] == "started",
         what="the remote step to be reported started")
    (row,) = query(service, "SELECT token FROM remote_steps WHERE execution_id = :id", id=execution_id)
    assert_nothing_stranded(service.settings.database_url)  # a workflow parked on a remote step is alive
    shown = Cli(env, log_dir)("status", execution_id, "--verbose")
    assert shown.returncode == 0, shown.stderr
    line = next(line for line in shown.lines if "celery task" in line)
    assert "legacy.wait_for_file" in line and "queue legacy" in line and row["token"] in line
    assert "worker legacy" in line and line.endswith(": started")

    client = create_app(settings=env.settings()).test_client()
    detail = client.get(f"/zart/admin/v1/executions/{execution_id}/detail").get_json()
    (step,) = detail["steps"]
    assert step["kind"] == "remote" and step["status"] == "waiting"
    remote = step["remote"]
    assert (remote["task_name"], remote["queue"], remote["task_id"], remote["state"]) == (
        "legacy.wait_for_file", "legacy", row["token"], "started"
    )
    assert remote["worker"].startswith("legacy") and remote["started_at"] and remote["heartbeat_at"]
    release.touch()
    assert finished(service, execution_id)["status"] == "completed"
    detail = client.get(f"/zart/admin/v1/executions/{execution_id}/detail").get_json()
    assert [s["remote"]["state"] for s in detail["steps"]] == ["succeeded", "succeeded"]


def test_remote_steps_are_spans_in_the_execution_trace(service, start_zart, legacy_worker, log_dir):
    """Scheduled without tracing (this process has none): the first traced run adopts the trace, every later
    run joins it, and each Celery task sent is a `zart.remote` span under the run that sent it."""
    import json

    spans_file = log_dir / "spans.jsonl"
    # no hold: each result wakes the run again, so the trace spans several runs
    start_zart(OTEL_TRACES_EXPORTER="zart_jsonl", ZART_TRACES_FILE=str(spans_file), ZART_REMOTE_HOLD="0")
    execution_id, _ = schedule(service, "c.sequence", log_dir)
    assert finished(service, execution_id)["output"] == {"a": 3, "b": 30}

    def spans() -> list[dict[str, Any]]:
        lines = spans_file.read_text().splitlines() if spans_file.exists() else []
        return [json.loads(line) for line in lines]

    def written() -> tuple[list[dict[str, Any]], list[dict[str, Any]]] | None:
        """The runs' and the remote steps' spans once all are in the file: each process writes a span as it
        ends, and a run that parked may end its span after a later run, in another process, has completed."""
        found = spans()
        runs = [s for s in found if s["name"] == "zart.run c.sequence"]
        remote = [s for s in found if s["name"].startswith("zart.remote ")]
        parents = {s["parent_span_id"] for s in remote}
        completed = any(run["attributes"].get("zart.outcome") == "completed" for run in runs)
        if not completed or len(remote) < 2 or not parents <= {run["span_id"] for run in runs}:
            return None
        return runs, remote

    runs, remote = poll(written, what="the spans of every run that sent a task, and of the last run")
    assert len({run["trace_id"] for run in runs}) == 1 and len(runs) >= 2  # one trace across runs
    assert sorted(s["attributes"]["zart.remote.task"] for s in remote) == ["legacy.add", "legacy.multiply"]
    assert all(s["trace_id"] == runs[0]["trace_id"] for s in remote)


def test_replay_of_a_run_waiting_on_a_remote_step_is_consistent_and_writes_nothing(
    service, env, zart_worker, legacy_worker, log_dir
):
    """`zart replay` stops where the record ends: a run parked on a Celery task still running (alone, or beside
    another task) replays as consistent, and the replay neither parks, fails nor re-sends anything."""
    release = log_dir / "release"
    single, journal = schedule(service, "c.blocking", log_dir, release=str(release))
    beside, _ = schedule(service, "c.blocking-beside-another", log_dir, release=str(release))
    for execution_id in (single, beside):
        poll(lambda e=execution_id: service.status(e)["status"] == "waiting", what="the run to park on its task")
    before = {e: (remote_rows(service, e), service.status(e)) for e in (single, beside)}
    replayer = ZartService(env.settings())  # knows the workflows' code, as `zart replay -I ...` does
    results = {r["execution_id"]: r for r in replayer.replay(task="c.blocking", limit=100)}
    results.update({r["execution_id"]: r for r in replayer.replay(task="c.blocking-beside-another", limit=100)})
    outcomes = [(results[e]["outcome"], results[e]["message"]) for e in (single, beside)]
    assert outcomes == [("consistent", None), ("consistent", None)]
    assert {e: (remote_rows(service, e), service.status(e)) for e in (single, beside)} == before
    release.touch()
    assert finished(service, single)["output"] == {"value": "released", "after": 4}
    assert finished(service, beside)["output"] == ["released", 4]
