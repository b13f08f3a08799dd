"""An agent-style shell script drives a workflow end to end through the CLI alone."""

from __future__ import annotations

import json
import os
from pathlib import Path

from tests.cli.cli import ZART, run_script

SCRIPT = Path(__file__).with_name("agent_loop.sh")


def test_an_agent_script_schedules_waits_inspects_approves_and_collects_the_result(
    env, start_worker, journal, unique, tmp_path
):
    start_worker()
    execution_id = unique("agent")
    variables = env.variables()
    variables["PATH"] = f"{ZART.parent}{os.pathsep}{variables['PATH']}"

    done = run_script(["bash", str(SCRIPT), execution_id, journal()], tmp_path, variables)

    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.splitlines() == [
        f"Scheduled execution: {execution_id}",
        "Task: t.event",
        "Status: pending",
        f"Event delivered to {execution_id}: approval",
        "agent done",
    ]
    assert json.loads((tmp_path / "waited.json").read_text())["status"] == "waiting"
    result = json.loads((tmp_path / "result.json").read_text())
    assert result == {"status": "completed", "output": {"payload": {"approved": True, "reviewer": "agent"}}}
    final = json.loads((tmp_path / "final.json").read_text())
    assert (final["execution_id"], final["status"], final["steps_completed"]) == (execution_id, "completed", 3)
