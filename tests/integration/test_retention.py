"""Retention: the sweeper's policy and on-demand pruning (service, CLI, admin route) on a database of their own,
so deleting "everything finished before X" touches only what these tests made."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from sqlalchemy import text

from tests.cli.cli import Cli
from tests.harness import Environment, Worker, fresh_database, poll
from zart.admin import AdminService
from zart.errors import ExecutionNotFound, InvalidData
from zart.migrate import upgrade
from zart.registry import Registry
from zart.service import ZartService
from zart.store import counts, db, executions

TABLES = ("executions", "runs", "steps", "step_attempts", "events")
ADMIN = "/zart/admin/v1"


@pytest.fixture(scope="module")
def renv(postgres, redis_server) -> Environment:
    url = fresh_database(postgres.port, "zart_retention")
    upgrade(url)
    return Environment(database_url=url, broker_url=redis_server.url, extra={"ZART_QUEUE": "zart-retention"})


@pytest.fixture(scope="module")
def rworker(renv: Environment, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Worker]:
    """A worker whose own sweeper prunes nothing, so each test decides when pruning happens."""
    directory = tmp_path_factory.mktemp("retention-worker")
    directory.chmod(0o777)
    worker = Worker(renv, directory, ZART_RETENTION="off")
    try:
        yield worker.wait_ready()
    finally:
        worker.stop()


@pytest.fixture()
def rservice(renv: Environment) -> ZartService:
    return ZartService(renv.settings(), registry=Registry())


def finished(service: ZartService, execution_id: str) -> dict:
    done, row = service.wait(execution_id, 30)
    assert done, row
    return row


def backdate(renv: Environment, ids: list[str], days: int = 40) -> None:
    """Make executions look as if they finished `days` ago (children included)."""
    with db.transaction(renv.database_url) as conn:
        conn.execute(
            text(
                "UPDATE executions SET completed_at = completed_at - make_interval(days => :days) "
                "WHERE id = ANY(:ids) OR parent_id = ANY(:ids)"
            ),
            {"ids": ids, "days": days},
        )


def rows_of(renv: Environment, ids: list[str]) -> dict[str, int]:
    """Rows in each table that belong to these executions or their children."""
    with db.autocommit(renv.database_url) as conn:
        family = [
            r[0]
            for r in conn.execute(
                text("SELECT id FROM executions WHERE id = ANY(:ids) OR parent_id = ANY(:ids)"), {"ids": ids}
            )
        ]
        return {
            table: conn.execute(
                text(f"SELECT count(*) FROM {table} WHERE execution_id = ANY(:ids)"), {"ids": family or ids}
            ).scalar_one()
            if table != "executions"
            else len(family)
            for table in TABLES
        }


def assert_counts_exact(renv: Environment) -> None:
    with db.autocommit(renv.database_url) as conn:
        raw = dict(conn.execute(text("SELECT status, count(*) FROM executions GROUP BY status")).all())
        assert {s: n for s, n in counts.by_status(conn).items() if n} == raw


def test_prune_deletes_finished_trees_whole_and_dry_run_changes_nothing(renv, rworker, rservice, tmp_path):
    admin = AdminService(rservice)
    journal = str(tmp_path / "j")
    fan_out = rservice.schedule("t.fan-out", {"journal": journal, "seconds": 0.1}).execution["execution_id"]
    three = [rservice.schedule("t.three-steps", {"journal": journal}).execution["execution_id"] for _ in range(2)]
    failed = rservice.schedule("t.fails", {}).execution["execution_id"]
    waiting = rservice.schedule("t.event", {"journal": journal}).execution["execution_id"]
    for execution_id in (fan_out, *three, failed):
        finished(rservice, execution_id)
    poll(lambda: rservice.status(waiting)["status"] == "waiting", what="the event waiter to park")
    everything = [fan_out, *three, failed, waiting]
    backdate(renv, everything)
    before = rows_of(renv, everything)
    assert before["executions"] == 7 and before["steps"] > 0 and before["runs"] == 7

    dry = admin.prune(30 * 86400, None, True, "test")
    assert dry["total"] == 6 and dry["pruned"] == {"completed": 5, "failed": 1, "cancelled": 0}
    assert rows_of(renv, everything) == before  # a dry run deletes nothing
    assert admin.prune(50 * 86400, None, True, "test")["total"] == 0  # not old enough

    done = admin.prune(30 * 86400, ["completed"], False, "test")
    assert done["pruned"] == {"completed": 5} and done["total"] == 5
    assert rows_of(renv, [fan_out, *three]) == dict.fromkeys(TABLES, 0)  # children, steps, runs went too
    assert rservice.status(failed)["status"] == "failed"
    assert rservice.status(waiting)["status"] == "waiting"  # an active execution is never pruned
    with pytest.raises(ExecutionNotFound):
        rservice.status(fan_out)
    assert_counts_exact(renv)
    rservice.cancel(waiting)


def test_a_parent_goes_only_with_all_its_children(renv, rservice):
    admin = AdminService(rservice)
    with db.transaction(renv.database_url) as conn:
        executions.insert_execution(conn, execution_id="ret-parent", task="t.any", data={})
        executions.insert_execution(
            conn, execution_id="ret-parent~child", task="t.any", data={}, parent_id="ret-parent"
        )
        executions.finish(conn, "ret-parent", status="failed", token=None, error={"type": "X", "message": "x"})
    backdate(renv, ["ret-parent"], days=400)  # older than anything the other tests leave behind
    assert admin.prune(300 * 86400, ["failed"], False, "test")["total"] == 0  # its child is still pending
    assert rservice.status("ret-parent~child")["status"] == "pending"

    with db.transaction(renv.database_url) as conn:
        executions.finish(conn, "ret-parent~child", status="cancelled", token=None)
    backdate(renv, ["ret-parent"], days=400)
    assert admin.prune(300 * 86400, ["failed"], False, "test")["total"] == 2  # the parent's status decides; both go
    assert rows_of(renv, ["ret-parent"])["executions"] == 0
    assert_counts_exact(renv)


def test_a_child_revived_while_a_prune_runs_is_not_deleted_under_its_restart(renv, rservice):
    """A restart of a finished child commits while a prune that saw the whole tree finished is deleting it: the
    prune must leave the tree (the child is active again), not delete the execution the restart just revived."""
    import threading

    from zart.store import admin as admin_store

    admin = AdminService(rservice)
    root, child = "ret-revived", "ret-revived~child"
    with db.transaction(renv.database_url) as conn:
        executions.insert_execution(conn, execution_id=root, task="t.any", data={})
        executions.insert_execution(conn, execution_id=child, task="t.any", data={}, parent_id=root)
        executions.finish(conn, child, status="cancelled", token=None)
        executions.finish(conn, root, status="completed", token=None, output={})
    backdate(renv, [root], days=1000)

    pruned: list[dict] = []
    with db.transaction(renv.database_url) as conn:  # the restart of the child, as AdminService.restart writes it
        assert admin_store.lock_execution(conn, child) is not None
        admin_store.start_new_run(conn, child, "restart", None, "ops", None)
        pruner = threading.Thread(target=lambda: pruned.append(admin.prune(900 * 86400, ["completed"], False, "t")))
        pruner.start()

        def prune_done_or_blocked() -> bool:
            with db.autocommit(renv.database_url) as probe:
                waiting = probe.execute(text("SELECT count(*) FROM pg_locks WHERE NOT granted")).scalar_one()
            return not pruner.is_alive() or waiting > 0

        poll(prune_done_or_blocked, what="the prune to finish or wait for the child's row")
    pruner.join(30)
    assert not pruner.is_alive()
    assert rservice.status(child)["status"] == "pending"  # the restart's new run is there to be run
    assert rservice.status(root)["status"] == "completed"  # and its tree was left whole
    assert pruned and pruned[0]["total"] == 0

    rservice.cancel(child)
    assert admin.prune(900 * 86400, ["completed"], False, "test")["total"] == 2  # finished again: both go
    assert rows_of(renv, [root])["executions"] == 0
    assert_counts_exact(renv)


def test_bad_prune_requests_change_nothing(rservice):
    admin = AdminService(rservice)
    with pytest.raises(InvalidData):
        admin.prune(86400, ["running"], False, "test")
    with pytest.raises(InvalidData):
        admin.prune(0, None, False, "test")


def test_the_sweeper_applies_the_retention_policy(renv, rservice, tmp_path):
    worker = Worker(renv, tmp_path, ZART_RETENTION="completed=1s")
    try:
        worker.wait_ready()
        completed = rservice.schedule("t.three-steps", {"journal": str(tmp_path / "j")}).execution["execution_id"]
        failed = rservice.schedule("t.fails", {}).execution["execution_id"]
        finished(rservice, completed)
        finished(rservice, failed)

        def gone() -> bool:
            try:
                rservice.status(completed)
            except ExecutionNotFound:
                return True
            return False

        poll(gone, timeout=20, what="the sweeper to prune the completed execution")
        assert rows_of(renv, [completed]) == dict.fromkeys(TABLES, 0)
        assert rservice.status(failed)["status"] == "failed"  # the policy keeps failures (no rule for them)
        assert_counts_exact(renv)
    finally:
        worker.stop()


def test_prune_from_the_cli_and_the_admin_route(renv, rservice, tmp_path):
    from flask_app import create_app

    ids = []
    with db.transaction(renv.database_url) as conn:
        for n in range(3):
            ids.append(f"ret-cli-{n}")
            executions.insert_execution(conn, execution_id=ids[-1], task="t.any", data={})
            executions.finish(conn, ids[-1], status="cancelled", token=None)
    backdate(renv, ids, days=1000)
    workdir = tmp_path / "cwd"
    workdir.mkdir()
    zart = Cli(renv, workdir)

    dry = zart("admin", "prune", "--older-than", "900d", "--status", "cancelled", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout == "Would prune 3 executions (cancelled 3)\n"
    for bad in (["--older-than", "soon"], ["--older-than", "0d"], ["--older-than", "1d", "--status", "running"]):
        refused = zart("admin", "prune", *bad)
        assert refused.returncode == 1 and refused.stdout == "", refused
    assert rows_of(renv, ids)["executions"] == 3

    client = create_app(settings=renv.settings()).test_client()
    for body in ({"older_than": "eventually"}, {"older_than": "1d", "statuses": ["waiting"]}, {}):
        response = client.post(f"{ADMIN}/prune", json=body)
        assert response.status_code == 422 and response.get_json()["error"]["code"] == "invalid_data", body
    response = client.post(f"{ADMIN}/prune", json={"older_than": "1100d", "statuses": ["cancelled"]})
    assert response.get_json() == {
        "dry_run": False,
        "older_than_seconds": 1100 * 86400.0,
        "pruned": {"cancelled": 0},
        "total": 0,
    }
    pruned = zart("admin", "prune", "--older-than", "900d", "--json")
    assert json.loads(pruned.stdout)["pruned"]["cancelled"] == 3
    assert rows_of(renv, ids)["executions"] == 0
    assert_counts_exact(renv)


def test_retention_policy_parsing():
    from zart.errors import ConfigurationError
    from zart.retention.policy import DEFAULT_RETENTION, describe, parse_policy

    assert describe(parse_policy(None)) == DEFAULT_RETENTION
    assert parse_policy("off") == {} and parse_policy("OFF") == {}
    assert parse_policy("12h") == {"completed": 43200.0, "failed": 43200.0, "cancelled": 43200.0}
    assert parse_policy(" completed = 7d , failed=2w") == {"completed": 7 * 86400.0, "failed": 14 * 86400.0}
    for bad in ("completed=7", "running=1d", "completed=1d,completed=2d", "7 days", "completed=-1d", "0d"):
        with pytest.raises(ConfigurationError):
            parse_policy(bad)


def test_a_large_prune_runs_batch_after_batch_to_the_end(renv, rservice):
    """More roots than one batch holds, in several statuses: every one goes, and nothing else."""
    from zart.pruning import BATCH

    total = BATCH * 2 + 50
    with db.transaction(renv.database_url) as conn:
        conn.execute(
            text(
                "INSERT INTO executions (id, task, status, input, created_at, updated_at, completed_at) "
                "SELECT 'ret-bulk-' || g, 't.any', CASE WHEN g % 10 = 0 THEN 'failed' ELSE 'completed' END, '{}', "
                "now() - interval '3000 days', now(), now() - make_interval(days => 2000 + g % 7) "
                "FROM generate_series(1, :total) g"
            ),
            {"total": total},
        )
    done = AdminService(rservice).prune(1500 * 86400, None, False, "test")
    assert done["pruned"] == {"completed": total - total // 10, "failed": total // 10, "cancelled": 0}
    assert rows_of(renv, [f"ret-bulk-{n}" for n in range(1, total + 1)])["executions"] == 0
    assert_counts_exact(renv)


def test_a_sweep_that_found_nothing_due_asks_again_only_when_the_oldest_root_is_due(postgres):
    """An idle database costs the sweeper no statement per pass: after finding nothing due it leaves the status
    alone until its oldest finished root is due, and deletes that root then."""
    from zart import pruning

    url = fresh_database(postgres.port, "zart_retention_rest")
    upgrade(url)
    age = 4.0
    with db.transaction(url) as conn:
        conn.execute(
            text(
                "INSERT INTO executions (id, task, status, input, created_at, updated_at, completed_at) "
                "VALUES ('rest-1', 't.any', 'completed', '{}', now(), now(), now() - interval '1 second')"
            )
        )
    policy = {"completed": age}
    assert pruning.sweep(url, policy) == 0  # due in about three seconds: the sweep rests until then
    with db.transaction(url) as conn:  # due now, but a resting sweep does not ask
        conn.execute(text("UPDATE executions SET completed_at = completed_at - interval '1 hour' WHERE id = 'rest-1'"))
    assert pruning.sweep(url, policy) == 0
    with db.autocommit(url) as conn:
        assert conn.execute(text("SELECT count(*) FROM executions")).scalar_one() == 1
    swept: list[int] = []

    def pruned() -> bool:
        swept.append(pruning.sweep(url, policy))
        return sum(swept) == 1

    poll(pruned, timeout=10, what="the sweep to delete the root once it is due")
    with db.autocommit(url) as conn:
        assert conn.execute(text("SELECT count(*) FROM executions")).scalar_one() == 0
