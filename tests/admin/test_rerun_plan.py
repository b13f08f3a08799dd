"""A rerun's preview names every step that will run again: the named ones and later, and any earlier step that had
not completed (only checkpoints are copied), such as a child still running when a later step failed."""

from __future__ import annotations

import uuid
from typing import Any

import zart
from zart.admin import AdminService
from zart.engine.runner import RunnerConfig, run_execution
from zart.registry import Registry
from zart.retry import RetryPolicy
from zart.service import ZartService
from zart.store import db, executions

registry = Registry()


def down() -> int:
    raise RuntimeError("y is down")


@zart.task("plan.kid", registry=registry)
def kid(ctx: zart.Context, data: dict) -> Any:
    return ctx.wait_for_event("go")


@zart.task("plan.parent", registry=registry)
def parent(ctx: zart.Context, data: dict) -> Any:
    handle = ctx.schedule("x", kid, {})
    ctx.step("y", down, retry=RetryPolicy.none())
    return ctx.wait_all([handle])


def test_the_preview_names_an_earlier_step_that_had_not_completed_and_the_rerun_runs_it_again(env):
    service = ZartService(env.settings(), publish=lambda _id: True, registry=registry)
    admin = AdminService(service)
    config = RunnerConfig(service.settings.database_url, 30.0, 0.0, "plan-runner")
    parent_id = f"plan-{uuid.uuid4().hex[:10]}"
    service.schedule("plan.parent", {}, execution_id=parent_id)
    run_execution(parent_id, config, lambda *_: True, registry)
    run_execution(f"{parent_id}~x", config, lambda *_: True, registry)  # the child parks on its event
    assert service.status(parent_id)["status"] == "failed"

    plan = admin.rerun_plan(parent_id, ["y"], [])
    assert (plan["steps_to_run"], plan["steps_preserved"]) == (["x", "y"], [])

    admin.rerun(parent_id, ["y"], [], False, "ops")
    run_execution(parent_id, config, lambda *_: True, registry)
    with db.autocommit(service.settings.database_url) as conn:
        old_child = executions.get_execution(conn, f"{parent_id}~x")
        new_child = executions.get_execution(conn, f"{parent_id}~r1~x")
    assert (old_child["status"], new_child["status"]) == ("cancelled", "pending")  # as the preview said: x again
