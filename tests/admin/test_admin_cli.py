"""The operator controls through the installed `zart admin` command: same results, contract exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli.cli import Cli
from tests.harness import poll
from tests.reliability.journal import body_runs


@pytest.fixture()
def zart(env, tmp_path: Path) -> Cli:
    workdir = tmp_path / "cwd"
    workdir.mkdir()
    return Cli(env, workdir)


def runs_of(journal: Path, execution_id: str, step: str) -> int:
    return sum(1 for run in body_runs(journal) if run.execution_id == execution_id and run.step == step)


def test_retry_step_rerun_restart_and_detail_through_the_cli(zart, service, worker, log_dir, unique):
    journal, flag = log_dir / "bodies.journal", log_dir / "flag"
    execution_id = unique("cli-dead")
    data = json.dumps({"journal": str(journal), "flag": str(flag)})
    assert zart("schedule", "a.dead-step", "--data", data, "--id", execution_id).returncode == 0
    assert zart("wait", execution_id, "--timeout", "30").returncode == 1

    detail = zart("admin", "detail", execution_id, "--json").json()
    assert {s["name"]: s["retryable"] for s in detail["steps"]} == {"a": False, "b": True}
    refused = zart("admin", "retry-step", execution_id, "a")
    assert refused.returncode == 1 and "only a step whose exhausted retries" in refused.stderr
    assert zart("admin", "retry-step", execution_id, "nope").returncode == 1
    assert zart("admin", "retry-step", "exec-missing", "b").returncode == 3

    flag.touch()
    retried = zart("admin", "retry-step", execution_id, "b", "--triggered-by", "alice")
    assert retried.returncode == 0 and retried.lines == [f"Retrying step b of {execution_id} (run 0)"]
    assert zart("wait", execution_id, "--timeout", "30").returncode == 0
    assert runs_of(journal, execution_id, "a") == 1

    rerun = zart("admin", "rerun", execution_id, "--step", "b", "--json")
    assert rerun.returncode == 0
    assert rerun.json()["steps_to_run"] == ["b", "c"] and rerun.json()["steps_preserved"] == ["a"]
    assert zart("wait", execution_id, "--timeout", "30").returncode == 0
    assert runs_of(journal, execution_id, "a") == 1 and runs_of(journal, execution_id, "c") == 2

    restarted = zart("admin", "restart", execution_id, "--data", data)
    assert restarted.returncode == 0 and restarted.lines == [f"Restarted {execution_id} as run 2"]
    assert zart("wait", execution_id, "--timeout", "30").returncode == 0
    assert runs_of(journal, execution_id, "a") == 2

    runs = zart("admin", "runs", execution_id, "--json").json()["runs"]
    assert [(r["run_index"], r["trigger"], r["status"]) for r in runs] == [
        (0, "initial", "completed"),
        (1, "selective_rerun", "completed"),
        (2, "restart", "completed"),
    ]
    human = zart("admin", "detail", execution_id, "--run", "0")
    assert human.returncode == 0 and "retry-step" in human.stdout and "alice" in human.stdout
    assert zart("admin", "runs", "exec-missing").returncode == 3


def test_pause_rules_through_the_cli(zart, service, worker, log_dir, unique):
    journal = str(log_dir / "j")
    assert zart("admin", "pause", "create").returncode == 1  # names nothing
    assert zart("admin", "pause", "create", "--step-pattern", "*").returncode == 1  # would pause everything
    created = zart("admin", "pause", "create", "--task", "t.three-steps", "--step-pattern", "b", "--json")
    assert created.returncode == 0
    rule_id = created.json()["rule_id"]
    execution_id = unique("cli-pause")
    zart("schedule", "t.three-steps", "--data", json.dumps({"journal": journal}), "--id", execution_id)
    poll(lambda: service.status(execution_id)["status"] == "waiting", what="the execution to park before b")
    detail = zart("admin", "detail", execution_id, "--json").json()
    assert detail["held_by"]["rule_id"] == rule_id
    assert any(line.startswith(f"Held by: pause rule {rule_id}") for line in zart("status", execution_id).lines)
    listed = zart("admin", "pause", "list", "--json").json()["rules"]
    assert [r["rule_id"] for r in listed if r["task"] == "t.three-steps"] == [rule_id]  # (others: other tests')
    assert zart("admin", "pause", "resume", rule_id).lines == [f"Resumed pause rule: {rule_id}"]
    assert zart("admin", "pause", "resume", rule_id).returncode == 1  # already resumed
    assert zart("wait", execution_id, "--timeout", "10").returncode == 0
    assert zart("admin", "pause", "delete", rule_id).returncode == 0
    assert zart("admin", "pause", "delete", rule_id).returncode == 1
