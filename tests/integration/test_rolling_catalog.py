"""What a worker records at start-up from its code (each task's queue, schema, timeout, its limits) is not put
back to an older release's by an old worker restarting during a rolling deploy."""

from __future__ import annotations

from zart.store import catalog, db, flow

IMPORTS = "tests.workflows,tests.catalog_declarations"


def recorded(env) -> tuple:
    with db.autocommit(env.database_url) as conn:
        task = catalog.get_task(conn, "t.catalogued")
        limit = flow.get_limit(conn, "t.catalogued")
    return (task["queue"], limit["concurrency"])


def last_seen(env):
    with db.autocommit(env.database_url) as conn:
        return catalog.get_task(conn, "t.catalogued")["last_seen_at"]


def test_rolling_deploy_an_older_worker_keeps_the_newer_queue_and_limits(env, start_worker, unique):
    """An old worker restarting after a new one wrote its task's old queue back to the catalog, so new executions
    of the task were routed to a queue the new workers may not serve (stranded), and its old limit back too. A
    module's set seen before and superseded now leaves the newer code's entries alone; a rollback with a new
    ZART_CODE_VERSION applies its own."""
    release = unique("release")

    def deploy(variant: str, version: str) -> None:
        start_worker(ZART_IMPORTS=IMPORTS, ZART_TEST_CATALOG=variant, ZART_CODE_VERSION=version).stop()

    deploy("old", release)
    assert recorded(env) == ("catalog-old", 1)
    deploy("new", f"{release}-2")  # release 2 reaches its first worker
    assert recorded(env) == ("catalog-new", 3)
    seen = last_seen(env)
    deploy("old", release)  # a worker of release 1 restarts: it still runs the task, and is seen to
    assert recorded(env) == ("catalog-new", 3)
    assert last_seen(env) > seen
    deploy("new", f"{release}-2")  # and one of release 2
    assert recorded(env) == ("catalog-new", 3)
    deploy("old", f"{release}-rollback")  # an operator rolls back to release 1
    assert recorded(env) == ("catalog-old", 1)


def test_rolling_deploy_an_older_worker_does_not_take_back_a_task_moved_to_another_module(env, start_worker, unique):
    """A release moved a task (with a new queue and limit) to another module, which its workers import instead of
    the old one: no newer set of the old module is ever recorded, and an old worker restarting put back the task's
    old queue and limit."""
    release = unique("release")
    start_worker(ZART_IMPORTS=IMPORTS, ZART_TEST_CATALOG="old", ZART_CODE_VERSION=release).stop()
    moved = "tests.workflows,tests.catalog_declarations_moved"
    start_worker(ZART_IMPORTS=moved, ZART_CODE_VERSION=f"{release}-2").stop()
    assert recorded(env) == ("catalog-moved", 5)
    start_worker(ZART_IMPORTS=IMPORTS, ZART_TEST_CATALOG="old", ZART_CODE_VERSION=release).stop()
    assert recorded(env) == ("catalog-moved", 5)
