"""A workflow changed between deploys: `zart replay` flags the executions the change would break, and
`ctx.patched` lets the old executions and the new ones both complete on the new code."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.harness import REPO, Environment, poll

DEPLOY_IMPORTS = "tests.workflows,tests.reliability_workflows,tests.apps.deploys"


def replay_command(env: Environment, version: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "zart", "replay", "--task", "deploy.checkout", *args],
        cwd=REPO,
        env=env.variables(ZART_IMPORTS=DEPLOY_IMPORTS, CHECKOUT_VERSION=version),
        capture_output=True,
        text=True,
        timeout=60,
    )


def replay(env: Environment, version: str, *args: str) -> tuple[int, dict]:
    done = replay_command(env, version, "--json", *args)
    assert done.stdout, done.stderr
    return done.returncode, json.loads(done.stdout)


def flagged(report: dict) -> dict[str, tuple]:
    return {r["execution_id"]: (r["position"], r["recorded"], r["reached"]) for r in report["nondeterministic"]}


def test_replay_flags_the_breaking_change_and_patched_keeps_old_and_new_runs_completing(
    env, service, start_worker, unique
):
    old_worker = start_worker(ZART_IMPORTS=DEPLOY_IMPORTS, CHECKOUT_VERSION="v1")
    waiting, finished = unique("old-waiting"), unique("old-finished")
    for execution_id in (waiting, finished):
        service.schedule("deploy.checkout", {"amount": 100}, execution_id=execution_id)
        poll(lambda: service.status(execution_id)["status"] == "waiting", what=f"{execution_id} to wait")  # noqa: B023
    service.send_event(finished, "approve", None)
    done, row = service.wait(finished, 30)
    assert done and row["output"] == {"charged": 100}
    old_worker.stop()

    # the unguarded change breaks both recorded runs, at the position where the tax step was inserted
    code, report = replay(env, "v2-unpatched")
    assert code == 1
    assert flagged(report) == {waiting: (1, "approve", "tax"), finished: (1, "approve", "tax")}
    text = replay_command(env, "v2-unpatched")
    assert text.returncode == 1
    assert (
        f"NON-DETERMINISTIC {waiting} (deploy.checkout, waiting): at position 1 the recorded run has 'approve', "
        "the code now reaches 'tax'"
    ) in text.stdout.splitlines()
    assert text.stdout.splitlines()[-1].startswith("Replayed 2 executions: 0 consistent, 2 non-deterministic")
    assert replay_command(env, "v2-patched", "--since", "1h", "--limit", "1").returncode == 0
    refused = replay_command(env, "v2-patched", "--since", "yesterday")
    assert refused.returncode == 1 and "neither an ISO date/time nor a duration" in refused.stderr
    # guarded by a patch, the same change replays them all
    code, report = replay(env, "v2-patched")
    assert (code, report["nondeterministic"], report["errors"]) == (0, [], [])
    assert report["consistent"] == 2

    start_worker(ZART_IMPORTS=DEPLOY_IMPORTS, CHECKOUT_VERSION="v2-patched")
    new = unique("new")
    service.schedule("deploy.checkout", {"amount": 100}, execution_id=new)
    poll(lambda: service.status(new)["status"] == "waiting", what="the new run to wait")
    for execution_id in (waiting, new):
        service.send_event(execution_id, "approve", None)
    assert service.wait(waiting, 30)[1]["output"] == {"charged": 100}  # the old run kept the old path
    assert service.wait(new, 30)[1]["output"] == {"charged": 110}  # the new run took the patched one
    code, report = replay(env, "v2-patched")
    assert (code, report["consistent"]) == (0, 3)

    # the patch deprecated: runs that took it replay, the ones that predate it are flagged
    code, report = replay(env, "v3")
    assert code == 1
    assert set(flagged(report)) == {waiting, finished}
    code, report = replay(env, "v1")
    assert code == 1 and flagged(report) == {new: (1, "__patch:add-tax", "approve")}


def test_replay_json_stays_json_when_workflow_code_prints(env, service, start_worker, unique):
    """What the workflow modules print (at import, in the handler) goes to stderr: it used to land on stdout
    among the JSON, which `zart replay --json | jq` in a CI gate could no longer read."""
    imports = "tests.workflows,tests.reliability_workflows,tests.apps.chatty"
    start_worker(ZART_IMPORTS=imports)
    execution_id = unique("chatty")
    service.schedule("chatty.greet", {"name": "ada"}, execution_id=execution_id)
    assert service.wait(execution_id, 30)[1]["output"] == "hello ada"
    done = subprocess.run(
        [sys.executable, "-m", "zart", "replay", "--task", "chatty.greet", "--json"],
        cwd=REPO,
        env=env.variables(ZART_IMPORTS=imports),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["consistent"] >= 1
    assert "chatty: replaying for ada" in done.stderr and "chatty: module imported" in done.stderr
