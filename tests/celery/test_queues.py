"""Workflows routed to queues: each `zart worker -Q` pool runs only its own workflows, and every doorbell
(the first publication, the sweeper's re-publications) goes to the workflow's queue."""

from __future__ import annotations

from tests.integration.test_core import finished, schedule
from zart.registry import Registry
from zart.service import ZartService


def test_two_worker_pools_each_run_only_their_own_workflows(service, start_pool, log_dir):
    start_pool("zart", TEST_POOL="main")
    start_pool("etl", TEST_POOL="etl")
    etl = [schedule(service, "c.etl", log_dir)[0] for _ in range(4)]
    main = [schedule(service, "c.default-pool", log_dir)[0] for _ in range(4)]
    assert [finished(service, execution_id)["output"] for execution_id in etl] == ["etl"] * 4
    assert [finished(service, execution_id)["output"] for execution_id in main] == ["main"] * 4


def test_the_sweepers_republications_go_to_the_workflows_queue(env, start_pool, log_dir):
    silent = ZartService(env.settings(), publish=lambda _id: True, registry=Registry())  # only the sweeper rings
    start_pool("zart", TEST_POOL="main")
    start_pool("etl", TEST_POOL="etl")
    execution_id, _ = schedule(silent, "c.etl", log_dir)
    assert finished(silent, execution_id)["output"] == "etl"


def test_a_worker_takes_ready_executions_of_its_own_queues_only(env, service, start_pool, log_dir):
    silent = ZartService(env.settings(), publish=lambda *_: True, registry=Registry())  # rings nothing
    start_pool("zart", TEST_POOL="main", ZART_REDISPATCH_AFTER="600")
    etl, _ = schedule(silent, "c.etl", log_dir)
    main, _ = schedule(silent, "c.default-pool", log_dir)
    rung, _ = schedule(service, "c.default-pool", log_dir)
    assert finished(service, rung)["output"] == "main"
    assert finished(service, main, timeout=10)["output"] == "main"  # taken without a doorbell
    assert service.status(etl)["status"] == "pending"  # another queue's: left to its own workers
    start_pool("etl", TEST_POOL="etl")
    assert finished(service, etl)["output"] == "etl"


def test_a_function_child_runs_on_its_parents_queue(service, start_pool, log_dir):
    """A plain function a routed workflow schedules runs in that workflow's pool (which imports its module):
    with no pool on the default queue, its doorbell sent there would never be taken."""
    start_pool("etl", TEST_POOL="etl")
    execution_id = service.schedule("c.etl-function-child", {}).execution["execution_id"]
    assert finished(service, execution_id)["output"] == ["etl"]


def test_a_backlog_left_on_the_default_queue_never_holds_back_another_queues_lost_doorbells(
    env, start_pool, log_dir
):
    """The sweeper weighs each queue's messages against the ready rows routed to that queue: doorbells left on
    the default queue (its pool stopped) never keep it from ringing again a lost doorbell of a running pool's."""
    import redis

    from zart.celery.doorbell import Publisher, doorbell_app

    broker = redis.Redis.from_url(env.broker_url)
    silent = ZartService(env.settings(), publish=lambda *_: True, registry=Registry())  # rings nothing
    backlog = [f"gone-{n}" for n in range(100)]  # more messages than ready rows: nobody serves that queue now
    assert Publisher(doorbell_app(env.broker_url, "zart", env.database_url)).publish_many(backlog)
    try:
        start_pool("etl", TEST_POOL="etl")
        execution_id, _ = schedule(silent, "c.etl", log_dir)
        assert finished(silent, execution_id)["output"] == "etl"
    finally:
        broker.delete("zart")


def test_the_task_list_shows_each_tasks_queue(service, env, tmp_path):
    from flask_app import create_app
    from tests.cli.cli import Cli

    queues = {task["name"]: task["queue"] for task in service.tasks()}
    assert queues["c.etl"] == "etl" and queues["c.default-pool"] is None
    client = create_app(settings=env.settings()).test_client()
    listed = {task["name"]: task["queue"] for task in client.get("/api/v1/tasks").get_json()["tasks"]}
    assert listed["c.etl"] == "etl" and listed["c.default-pool"] is None
    shown = Cli(env, tmp_path)("tasks")
    assert shown.returncode == 0, shown.stderr
    (line,) = [line for line in shown.lines if line.startswith("c.etl ")]
    assert line.split()[1] == "etl"
