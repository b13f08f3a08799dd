"""A cancel whose cascade to the children was cut short (a database blip, the process gone) is finished by the
next cancel of the same execution, which still answers that it had finished."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

import zart
from zart.engine.runner import RunnerConfig, run_execution
from zart.errors import ExecutionAlreadyFinished, StoreUnavailable
from zart.registry import Registry
from zart.service import ZartService
from zart.store import cancel as cancel_store
from zart.store import db, executions

registry = Registry()


@zart.task("cascade.kid", registry=registry)
def kid(ctx: zart.Context, data: dict) -> Any:
    return ctx.wait_for_event("go")


@zart.task("cascade.parent", registry=registry)
def parent(ctx: zart.Context, data: dict) -> Any:
    return ctx.wait_all([ctx.schedule(f"kid-{i}", kid, {}) for i in range(2)])


def status(url: str, execution_id: str) -> str:
    with db.autocommit(url) as conn:
        return str(executions.get_execution(conn, execution_id)["status"])


def test_a_repeated_cancel_finishes_a_cascade_cut_short(env, monkeypatch):
    settings = env.settings()
    service = ZartService(settings, publish=lambda _id: True, registry=registry)
    config = RunnerConfig(settings.database_url, 30.0, 0.0, "cascade-runner")
    url = settings.database_url
    parent_id = f"cascade-{uuid.uuid4().hex[:10]}"
    service.schedule("cascade.parent", {}, execution_id=parent_id)
    run_execution(parent_id, config, lambda *_: True, registry)
    kids = [f"{parent_id}~kid-{i}" for i in range(2)]
    for child in kids:
        run_execution(child, config, lambda *_: True, registry)
    assert [status(url, e) for e in (parent_id, *kids)] == ["waiting"] * 3

    real_cancel = cancel_store.cancel
    blips = []

    def cancel_with_a_blip(conn: Any, execution_id: str) -> Any:
        if execution_id in kids and not blips:
            blips.append(execution_id)
            raise StoreUnavailable("the database went away for a moment")
        return real_cancel(conn, execution_id)

    monkeypatch.setattr(cancel_store, "cancel", cancel_with_a_blip)
    with pytest.raises(StoreUnavailable):
        service.cancel(parent_id, triggered_by="ops")
    assert status(url, parent_id) == "cancelled"
    assert any(status(url, child) == "waiting" for child in kids)  # the cascade stopped at the blip

    with pytest.raises(ExecutionAlreadyFinished):
        service.cancel(parent_id, triggered_by="ops")  # what an operator does after an error
    assert [status(url, child) for child in kids] == ["cancelled", "cancelled"]


@zart.task("cascade.forgetful", registry=registry)
def forgetful(ctx: zart.Context, data: dict) -> Any:
    """Starts a grandchild and finishes without waiting for it."""
    ctx.schedule("grandchild", kid, {})
    return "done"


@zart.task("cascade.root", registry=registry)
def root(ctx: zart.Context, data: dict) -> Any:
    ctx.schedule("child", forgetful, {})
    return ctx.wait_for_event("stop")


def test_a_cancel_reaches_a_grandchild_under_a_child_that_already_finished(env):
    """The child finished, leaving its grandchild running: cancelling the root still cancels the grandchild (it
    would otherwise run, or wait for its event, with nobody left to want it, and keep the tree from retention)."""
    settings = env.settings()
    service = ZartService(settings, publish=lambda _id: True, registry=registry)
    config = RunnerConfig(settings.database_url, 30.0, 0.0, "cascade-runner")
    url = settings.database_url
    root_id = f"cascade-{uuid.uuid4().hex[:10]}"
    child, grandchild = f"{root_id}~child", f"{root_id}~child~grandchild"
    service.schedule("cascade.root", {}, execution_id=root_id)
    for execution_id in (root_id, child, grandchild):
        run_execution(execution_id, config, lambda *_: True, registry)
    assert [status(url, e) for e in (root_id, child, grandchild)] == ["waiting", "completed", "waiting"]

    service.cancel(root_id, triggered_by="ops")
    assert [status(url, e) for e in (root_id, child, grandchild)] == ["cancelled", "completed", "cancelled"]
