"""Admission under limits, interleavings built row by row at the store (no worker, no broker): a paused
execution does not keep others from a free slot, `cancel_newest` cancels only a newcomer, a debounced input
brings its own concurrency key, and a child comes under its task's limit."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import text

from zart.dispatch.duties import Round, dispatch_held_executions
from zart.errors import InvalidData
from zart.flow.handoff import dispatch_held
from zart.store import db, executions, pause
from zart.store import flow as flow_store


def _limit(conn: Any, name: str, **columns: Any) -> None:
    spec = {"name": name, "concurrency": None, "rate": None, "period_seconds": None, "burst": None,
            "key_path": None, "key_concurrency": None, "key_strategy": "wait", **columns}
    flow_store.set_limit(conn, spec, "test")


def test_a_paused_execution_at_the_head_of_a_limit_does_not_keep_the_others_from_a_free_slot(env, unique):
    """Limit of 1; X (older) and Y held behind a holder; an operator pauses X alone. When the holder finishes,
    the hand-on and the sweeper ring Y, and Y is admitted, not refused as queued behind X."""
    limit = unique("flow.hol")
    url = env.database_url
    holder, x, y = f"{limit}-holder", f"{limit}-x", f"{limit}-y"
    with db.autocommit(url) as conn:
        _limit(conn, limit, concurrency=1)
        for execution_id in (holder, x, y):
            executions.insert_execution(conn, execution_id=execution_id, task="flow.hol", data={}, limit_name=limit)
        assert flow_store.claim(conn, holder, "t0", "test", 30)["verdict"] == "claimed"
        assert flow_store.claim(conn, x, "t1", "test", 30)["held_reason"] == "concurrency"
        assert flow_store.claim(conn, y, "t2", "test", 30)["verdict"] == "held"
    rule_id = unique("rule")
    with db.transaction(url) as conn:
        pause.create_rule(conn, rule_id=rule_id, execution_id=x, task=None, step_pattern=None,
                          applies_to_all=False, reason="look at x", expires_at=None, created_by="test")
    with db.autocommit(url) as conn:
        assert executions.finish(conn, holder, status="completed", token="t0", output=1) is not None
        rung: list[str] = []
        dispatch_held(conn, [limit], lambda i, _d: rung.append(i), 0.0)  # the holder's hand-on
        assert rung == [y]
        assert flow_store.claim(conn, x, "t3", "test", 30) is None  # X: held by its rule
    assert y in dispatch_held_executions(url, Round(env.settings(), None))  # the sweeper's safety net too
    with db.autocommit(url) as conn:
        admitted = flow_store.claim(conn, y, "t4", "test", 30)
    assert admitted["verdict"] == "claimed", f"Y is held ({admitted['held_reason']}) with a free slot"
    with db.transaction(url) as conn:  # a rule left active would show in other tests' listings
        pause.delete_rule(conn, rule_id)


def test_cancel_newest_holds_an_older_execution_back_from_a_park_instead_of_cancelling_it(env, unique):
    """A (older) runs, then parks on a sleep (a park gives its key slot back); B, the newcomer, is admitted
    meanwhile. When A wakes the key is busy: A waits for it; only a newcomer is cancelled."""
    limit = unique("flow.newest")
    url = env.database_url
    a, b = f"{limit}-a", f"{limit}-b"
    with db.autocommit(url) as conn:
        _limit(conn, limit, key_path="customer_id", key_concurrency=1, key_strategy="cancel_newest")
        executions.insert_execution(conn, execution_id=a, task="flow.x", data={"customer_id": "acme"},
                                    limit_name=limit)
        assert flow_store.claim(conn, a, "ta", "test", 30)["verdict"] == "claimed"
        # A sleeps one step (ctx.sleep): parked, due at once for the test
        assert executions.park(conn, a, "ta", wake_at=None, waiting_for={"kind": "sleep"}, attempt=1,
                               status="waiting")
        conn.execute(text("UPDATE executions SET wake_at = now() WHERE id = :id"), {"id": a})
        executions.insert_execution(conn, execution_id=b, task="flow.x", data={"customer_id": "acme"},
                                    limit_name=limit)
        assert flow_store.claim(conn, b, "tb", "test", 30)["verdict"] == "claimed"  # the newcomer runs
        woken = flow_store.claim(conn, a, "ta2", "test", 30)
        newcomer = f"{limit}-c"
        executions.insert_execution(conn, execution_id=newcomer, task="flow.x", data={"customer_id": "acme"},
                                    limit_name=limit)
        late = flow_store.claim(conn, newcomer, "tc", "test", 30)
    assert (woken["verdict"], woken["held_reason"]) == ("held", "key"), woken
    assert late["verdict"] == "cancel"


def test_a_debounced_schedule_that_replaces_the_input_brings_its_concurrency_key(env, unique):
    """flow.keyed allows one execution per customer.id. A debounced schedule for customer c1 is replaced, within
    its window, by one for c2 (the last input wins): it runs under c2's key, so it waits while another c2
    execution runs; a replacing input without the key is refused and changes nothing."""
    from zart.registry import Registry
    from zart.service import ZartService

    silent = ZartService(env.settings(), publish=lambda *_: True, registry=Registry())
    dedup = unique("debounce")
    first = silent.schedule("flow.keyed", {"journal": "/dev/null", "customer": {"id": "c1"}}, dedup_key=dedup,
                            debounce=60.0).execution["execution_id"]
    again = silent.schedule("flow.keyed", {"journal": "/dev/null", "customer": {"id": "c2"}}, dedup_key=dedup,
                            debounce=60.0)
    assert again.execution["execution_id"] == first and not again.created
    with pytest.raises(InvalidData, match="customer.id"):
        silent.schedule("flow.keyed", {"journal": "/dev/null"}, dedup_key=dedup, debounce=60.0)
    other = silent.schedule("flow.keyed", {"journal": "/dev/null", "customer": {"id": "c2"}}).execution["execution_id"]
    try:
        with db.autocommit(env.database_url) as conn:
            assert flow_store.claim(conn, other, "t-other", "test", 30)["verdict"] == "claimed"  # c2 busy
            conn.execute(text("UPDATE executions SET wake_at = now() WHERE id = :id"), {"id": first})
            row = conn.execute(text("SELECT input, flow_key FROM executions WHERE id = :id"), {"id": first}).one()
            admitted = flow_store.claim(conn, first, "t-first", "test", 30)
        assert row.input["customer"]["id"] == "c2"  # the last input won
        assert row.flow_key == "c2", f"runs c2's input under key {row.flow_key!r}"
        assert admitted["verdict"] == "held"
    finally:
        for execution_id in (first, other):
            silent.cancel(execution_id)


def test_a_child_of_a_task_under_a_shared_limit_comes_under_that_limit(env, unique):
    """flow.queue-a is admitted under the shared limit flow.shared (`limit="flow.shared"`), whether the service
    schedules it or a parent starts it as a child."""
    import zart
    from tests.flow_workflows import queue_a
    from zart.engine.runner import RunnerConfig, run_execution
    from zart.registry import Registry
    from zart.service import ZartService

    registry = Registry()
    parent_task = unique("flow.parent")

    @zart.task(parent_task, registry=registry)
    def parent(ctx: zart.Context, data: dict) -> dict:
        ctx.schedule("child", queue_a, {"journal": "/dev/null"})
        return {}

    silent = ZartService(env.settings(), publish=lambda *_: True, registry=registry)
    parent_id = silent.schedule(parent_task, {}).execution["execution_id"]
    config = RunnerConfig(database_url=env.database_url, lease_seconds=30, short_wait_hint=0, worker_name="test")
    try:
        run_execution(parent_id, config, lambda *_: None, registry=registry)
        with db.autocommit(env.database_url) as conn:
            child = conn.execute(text("SELECT id, flow_limit FROM executions WHERE parent_id = :p"),
                                 {"p": parent_id}).one()
        direct = silent.schedule("flow.queue-a", {"journal": "/dev/null"}).execution["execution_id"]
        with db.autocommit(env.database_url) as conn:
            direct_limit = conn.execute(text("SELECT flow_limit FROM executions WHERE id = :i"),
                                        {"i": direct}).scalar_one()
        assert direct_limit == "flow.shared"
        assert child.flow_limit == "flow.shared", f"the child runs under limit {child.flow_limit!r}"
    finally:
        with db.autocommit(env.database_url) as conn:
            conn.execute(text("UPDATE executions SET status = 'cancelled' WHERE (id = :p OR parent_id = :p "
                              "OR task = 'flow.queue-a') AND status IN ('pending', 'running', 'waiting')"),
                         {"p": parent_id})


def test_two_schedules_of_one_key_at_once_under_cancel_in_progress_leave_the_newest(env, unique):
    """A is scheduled in an app's open transaction; B, of the same key, is scheduled meanwhile. B's look for
    older executions waits for A's commit, then supersedes A (neither used to see the other)."""
    import threading

    from sqlalchemy import create_engine

    from tests.harness import poll
    from zart.registry import Registry
    from zart.service import ZartService

    silent = ZartService(env.settings(), publish=lambda *_: True, registry=Registry())
    data = {"journal": "/dev/null", "release": "/dev/null", "customer_id": unique("key")}
    engine = create_engine(env.database_url)
    newest: list[str] = []
    try:
        with engine.connect() as app_conn:
            older = silent.schedule("flow.supersede", data, connection=app_conn).execution["execution_id"]
            second = threading.Thread(
                target=lambda: newest.append(silent.schedule("flow.supersede", data).execution["execution_id"])
            )
            second.start()

            def waits_for_its_turn() -> bool:
                with db.autocommit(env.database_url) as conn:
                    waiting = conn.execute(text(
                        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                        "AND wait_event = 'advisory' AND datname = current_database()"
                    )).scalar_one()
                return bool(newest) or waiting > 0

            poll(waits_for_its_turn, what="the second schedule to finish or wait for the first one's commit")
            app_conn.commit()
            second.join(30)
        assert newest, "the second schedule did not finish"
        with db.autocommit(env.database_url) as conn:
            statuses = dict(conn.execute(text("SELECT id, status FROM executions WHERE id = ANY(:ids)"),
                                         {"ids": [older, newest[0]]}).all())
        assert statuses == {older: "cancelled", newest[0]: "pending"}
    finally:
        for execution_id in newest:
            silent.cancel(execution_id)
        engine.dispose()
