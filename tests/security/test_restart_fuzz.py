"""Property: whatever an admin token sends to restart and rerun, workers run only what the workflow code names.

Restart and rerun bodies are generated (hostile function references, code strings, forged child inputs, odd
shapes) against a finished fan-out and its function children, with a real worker running whatever they start.
Afterwards no hostile code ran, every child still names the function its parent's code scheduled, and every step
body that ran is one the workflow defines. Examples: ZART_FUZZ_EXAMPLES (default 25).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from flask_app import create_app
from tests.harness import poll
from zart.store import db

ADMIN = "/zart/admin/v1"
API = "/api/v1"
EXAMPLES = int(os.environ.get("ZART_FUZZ_EXAMPLES", "25"))
NAMED_BY_THE_WORKFLOW = {"parent-replay", "parent-resumed", "child-eu", "child-us", "summary"}
SCHEDULED_FUNCTION = "tests.workflows:blocking_child"


def hostile_values(marker: Path) -> st.SearchStrategy[Any]:
    code = f"open({str(marker)!r}, 'w').write('ran')"
    references = st.sampled_from(
        [
            "builtins:eval",
            "builtins:exec",
            "os:system",
            "subprocess:run",
            "tests.workflows:os.system",
            "tests.workflows:note",
            "tests.harness:poll",
            SCHEDULED_FUNCTION,
        ]
    )
    scalars = st.one_of(
        st.none(), st.booleans(), st.integers(-(2**31), 2**31), st.text(max_size=20), st.just(code), references
    )
    return st.recursive(
        scalars,
        lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)),
        max_leaves=12,
    )


def restart_data(marker: Path) -> st.SearchStrategy[Any]:
    value = hostile_values(marker)
    forged_call = st.fixed_dictionaries(
        {
            "function": value,
            "step": st.sampled_from(["child-eu", "child-us", "x"]),
            "args": st.lists(value, max_size=3),
        },
        optional={"kwargs": st.dictionaries(st.text(max_size=8), value, max_size=2), "retry": value},
    )
    # never a "journal" key: the workflow writes wherever its input says, and that is the workflow's own business
    other = st.dictionaries(st.text(max_size=8).filter(lambda k: k not in ("journal", "seconds")), value, max_size=4)
    return st.one_of(st.none(), forged_call, other, value)


def test_no_restart_or_rerun_runs_anything_the_workflow_did_not_name(env, service, worker, log_dir):
    client = create_app(settings=env.settings()).test_client()
    marker = log_dir / "pwned"
    journal = log_dir / "fan-out.journal"
    parent = client.post(
        f"{API}/executions", json={"task": "t.fan-out", "data": {"journal": str(journal), "seconds": 0}}
    )
    parent_id = parent.get_json()["execution_id"]
    assert client.get(f"{API}/executions/{parent_id}/wait?timeout=30").get_json()["status"] == "completed"
    targets = [parent_id, f"{parent_id}~child-eu", f"{parent_id}~child-us"]
    statuses: list[int] = []

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
        database=None,
    )
    @given(
        target=st.sampled_from(targets),
        operation=st.sampled_from(["restart", "rerun"]),
        data=restart_data(marker),
        force=st.booleans(),
        steps=st.lists(st.sampled_from(["child-eu", "child-us", "summary", "x", "__now_1"]), max_size=3),
    )
    def attempt(target: str, operation: str, data: Any, force: bool, steps: list[str]) -> None:
        if operation == "restart":
            body: dict[str, Any] = {"force": force} if data is None else {"data": data, "force": force}
        else:
            body = {"steps": steps, "force": force}
        response = client.post(f"{ADMIN}/executions/{target}/{operation}", json=body)
        statuses.append(response.status_code)
        assert response.status_code in (200, 404, 409, 422), (body, response.get_json())

    attempt()

    def settled() -> bool:
        return all(row["status"] not in ("pending", "running") for row in family(service, parent_id))

    poll(settled, timeout=60, interval=0.3, what="every restarted run to settle")
    rows = family(service, parent_id)
    children = [row for row in rows if row["id"] != parent_id]
    assert not marker.exists()
    assert children and {(row["task"], row["function_ref"]) for row in children} == {
        ("zart.child-function", SCHEDULED_FUNCTION)
    }
    assert {line.split(" ")[0] for line in journal.read_text().splitlines()} <= NAMED_BY_THE_WORKFLOW
    assert not any((row["error"] or {}).get("type") == "UnsafeFunctionReference" for row in rows)
    assert 200 in statuses  # the generated requests did start runs


def family(service, parent_id: str) -> list[dict[str, Any]]:
    with db.autocommit(service.settings.database_url) as conn:
        found = conn.execute(
            text("SELECT id, task, status, function_ref, error FROM executions WHERE id = :id OR parent_id = :id"),
            {"id": parent_id},
        )
        return [dict(row._mapping) for row in found]
