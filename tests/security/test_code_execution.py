"""No API request runs code the workflow code did not name.

A function child's reference (`module:qualname`) decides what a worker calls, so it must never come from input
an API can replace, and a worker must refuse any reference outside the deployed workflow packages.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from flask_app import create_app
from tests.harness import poll

ADMIN = "/zart/admin/v1"
API = "/api/v1"


@pytest.fixture()
def client(env):
    return create_app(settings=env.settings()).test_client()


def finished(client, execution_id: str) -> dict[str, Any]:
    response = client.get(f"{API}/executions/{execution_id}/wait?timeout=30")
    assert response.status_code == 200, response.get_json()
    return dict(response.get_json())


def hostile_call(marker: Path) -> dict[str, Any]:
    """What the review sent: a child input naming `builtins:eval` with code that leaves a file behind."""
    return {
        "step": "child-eu",
        "function": "builtins:eval",
        "args": [f"open({str(marker)!r}, 'w').write('ran')"],
        "kwargs": {},
        "retry": {"max_retries": 0, "delay": 0.0, "max_delay": None, "backoff": 1.0, "jitter": False},
    }


def test_restarting_a_function_child_with_new_input_is_refused_and_runs_nothing(client, worker, log_dir):
    marker = log_dir / "pwned"
    parent = client.post(
        f"{API}/executions", json={"task": "t.fan-out", "data": {"journal": str(log_dir / "j"), "seconds": 0.05}}
    ).get_json()["execution_id"]
    assert finished(client, parent)["status"] == "completed"
    child = f"{parent}~child-eu"

    response = client.post(f"{ADMIN}/executions/{child}/restart", json={"data": hostile_call(marker), "force": True})

    assert response.status_code == 409, response.get_json()
    assert response.get_json()["error"]["code"] == "child_execution"
    runs = client.get(f"{ADMIN}/executions/{child}/runs").get_json()["runs"]
    assert [run["run_index"] for run in runs] == [0]
    assert not marker.exists()


def test_a_child_restarted_without_new_input_keeps_the_function_its_parent_named(client, worker, log_dir):
    journal = log_dir / "j"
    parent = client.post(
        f"{API}/executions", json={"task": "t.fan-out", "data": {"journal": str(journal), "seconds": 0.05}}
    ).get_json()["execution_id"]
    assert finished(client, parent)["status"] == "completed"
    child = f"{parent}~child-eu"

    response = client.post(f"{ADMIN}/executions/{child}/restart", json={})

    assert response.status_code == 200, response.get_json()
    poll(lambda: finished(client, child)["status"] == "completed", what="the restarted child")
    assert finished(client, child)["output"]["region"] == "eu"
    assert journal.read_text().count("child-eu ") == 2


def hostile_references(marker: Path) -> list[tuple[str, list[Any]]]:
    """References a stored row might carry (written by hand, or by a version before the column), each with
    arguments that would leave `marker` behind if the function ran."""
    code = f"open({str(marker)!r}, 'w').write('ran')"
    return [
        ("builtins:eval", [code]),
        ("builtins:exec", [code]),
        ("os:system", [f"touch {marker}"]),
        ("subprocess:run", [["touch", str(marker)]]),
        ("pathlib:Path.touch", [str(marker)]),
        ("tests.workflows:os.system", [f"touch {marker}"]),  # a module the workflow module imported
        ("tests.workflows:Path.touch", [str(marker)]),  # a class it imported
        ("tests.workflows:note.__globals__", []),
        ("tests.harness:poll", [code]),  # importable, but not a workflow module
        ("zart.registry:import_modules", [["antigravity"]]),
        ("tests.workflows:eval", [code]),
        ("tests.workflows", [code]),
        ("", []),
    ]


def test_a_worker_resolves_only_functions_defined_in_workflow_modules(service, worker, log_dir, unique):
    from zart.store import db, executions

    marker = log_dir / "pwned"
    cases = hostile_references(marker)
    ids = []
    with db.transaction(service.settings.database_url) as conn:
        for reference, args in cases:
            execution_id = unique("hostile-child")
            ids.append(execution_id)
            executions.insert_execution(
                conn,
                execution_id=execution_id,
                task="zart.child-function",
                data={"step": "s", "args": args, "kwargs": {}, "retry": {"max_retries": 0, "delay": 0.0}},
                function_ref=reference,
            )
    for execution_id in ids:
        service.publish(execution_id)

    outcomes = [service.wait(execution_id, 30)[1] for execution_id in ids]

    assert [row["status"] for row in outcomes] == ["failed"] * len(cases)
    assert {row["error"]["type"] for row in outcomes} == {"UnsafeFunctionReference"}
    assert not marker.exists()


def test_a_workflow_that_names_a_function_outside_its_modules_fails_before_any_child_exists(
    client, worker, log_dir
):
    parent = client.post(
        f"{API}/executions", json={"task": "t.schedules-foreign", "data": {"journal": str(log_dir / "j")}}
    ).get_json()["execution_id"]

    result = finished(client, parent)

    assert result["status"] == "failed"
    assert result["error"]["type"] == "UnsafeFunctionReference"
    assert "ZART_IMPORTS" in result["error"]["message"]
    assert client.get(f"{API}/executions/{parent}~foreign").status_code == 404
