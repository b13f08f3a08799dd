"""Starting workflows and delivering events inside a Flask + Flask-SQLAlchemy app's own transaction.

The app (tests/apps/shop.py) commits an order and schedules its workflow with `connection=db.session`: the
execution exists exactly when the order does, and the doorbell rings only after the commit.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import redis
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session

import zart
from tests.apps import shop
from tests.harness import Environment, poll
from zart import appconfig
from zart.errors import ConfigurationError, NotWaitingForEvent
from zart.localservices import LocalRedis, free_port

SHOP_IMPORTS = "tests.workflows,tests.reliability_workflows,tests.apps.shop"


@pytest.fixture()
def private_redis(tmp_path: Path) -> Iterator[LocalRedis]:
    server = LocalRedis(tmp_path / "redis", free_port())
    server.start()
    yield server
    server.stop()


@pytest.fixture()
def configured(env: Environment, private_redis: LocalRedis) -> Iterator[LocalRedis]:
    """zart configured in code, as an app would: the test database, and a broker of this test's own."""
    appconfig.configure(database_url=env.database_url, broker_url=private_redis.url)
    yield private_redis
    appconfig.reset()


def queued(server: LocalRedis) -> int:
    return int(redis.Redis.from_url(server.url).llen("zart"))


def execution_row(env: Environment, execution_id: str) -> dict | None:
    with psycopg.connect(env.database_url.replace("+psycopg", "")) as conn:
        row = conn.execute("SELECT status, output, error FROM executions WHERE id = %s", (execution_id,)).fetchone()
    return None if row is None else {"status": row[0], "output": row[1], "error": row[2]}


def finished(env: Environment, execution_id: str) -> dict:
    """The execution once it reached a terminal status."""
    return poll(
        lambda: (lambda row: row if row and row["status"] in ("completed", "failed") else None)(
            execution_row(env, execution_id)
        ),
        what=f"{execution_id} to finish",
    )


def order_row(env: Environment, order_id: str) -> tuple | None:
    with psycopg.connect(env.database_url.replace("+psycopg", "")) as conn:
        return conn.execute("SELECT amount, status FROM shop_orders WHERE id = %s", (order_id,)).fetchone()


def test_a_committed_order_runs_its_workflow_on_a_worker(env, configured, start_worker, unique):
    start_worker(ZART_BROKER_URL=configured.url, ZART_IMPORTS=SHOP_IMPORTS)
    client = shop.create_app(env.database_url).test_client()
    order_id = unique("order")
    response = client.post("/orders", json={"id": order_id, "amount": 30})
    assert response.status_code == 201, response.get_json()
    execution_id = response.get_json()["execution_id"]
    assert finished(env, execution_id)["output"] == {"order_id": order_id, "status": "fulfilled"}
    assert order_row(env, order_id) == (30, "fulfilled")


def test_a_rolled_back_order_leaves_no_order_no_execution_and_no_message(env, configured, unique):
    client = shop.create_app(env.database_url).test_client()
    order_id = unique("refused")
    response = client.post("/orders", json={"id": order_id, "amount": 0})
    assert response.status_code == 422
    assert order_row(env, order_id) is None
    assert execution_row(env, f"fulfil-{order_id}") is None
    assert queued(configured) == 0
    # the same session goes on to commit other work: the rolled-back doorbell must not ride along
    accepted = unique("accepted")
    assert client.post("/orders", json={"id": accepted, "amount": 5}).status_code == 201
    assert queued(configured) == 1


def test_the_doorbell_rings_only_after_the_session_commits(env, configured, unique):
    engine = create_engine(env.database_url)
    execution_id = unique("session")
    with Session(engine) as session:
        session.execute(text("SELECT 1"))
        assert zart.schedule("t.three-steps", {"journal": "/dev/null"}, id=execution_id, connection=session)
        assert execution_row(env, execution_id) is None  # not visible outside the app's transaction
        assert queued(configured) == 0
        session.commit()
    assert execution_row(env, execution_id) == {"status": "pending", "output": None, "error": None}
    assert queued(configured) == 1
    engine.dispose()


def test_a_savepoint_released_inside_the_session_rings_nothing_until_the_outer_commit(env, configured, unique):
    engine = create_engine(env.database_url)
    dropped, kept = unique("sp-dropped"), unique("sp-kept")
    with Session(engine) as session:
        with session.begin_nested():  # released here: the outer transaction is still open
            zart.schedule("t.three-steps", {"journal": "/dev/null"}, id=dropped, connection=session)
        assert queued(configured) == 0  # a released savepoint is not a commit
        session.rollback()
    assert execution_row(env, dropped) is None and queued(configured) == 0
    with Session(engine) as session:
        with session.begin_nested():
            zart.schedule("t.three-steps", {"journal": "/dev/null"}, id=kept, connection=session)
        assert queued(configured) == 0
        session.commit()
    assert execution_row(env, kept) is not None and queued(configured) == 1
    engine.dispose()


def test_what_a_rolled_back_savepoint_scheduled_rings_no_doorbell_at_the_commit(env, configured, unique):
    engine = create_engine(env.database_url)
    undone, kept = unique("sp-undone"), unique("sp-kept")
    with Session(engine) as session:
        savepoint = session.begin_nested()
        zart.schedule("t.three-steps", {"journal": "/dev/null"}, id=undone, connection=session)
        savepoint.rollback()
        zart.schedule("t.three-steps", {"journal": "/dev/null"}, id=kept, connection=session)
        session.commit()
    with engine.connect() as conn:
        conn.begin()
        savepoint = conn.begin_nested()
        zart.schedule("t.three-steps", {"journal": "/dev/null"}, id=undone + "-c", connection=conn)
        savepoint.rollback()
        zart.schedule("t.three-steps", {"journal": "/dev/null"}, id=kept + "-c", connection=conn)
        conn.commit()
    assert execution_row(env, undone) is None and execution_row(env, undone + "-c") is None
    # a connection's doorbells ring in order, from one thread, once its commit is seen: the last one comes last
    poll(lambda: queued(configured) >= 2, what="the kept executions' doorbells")
    messages = redis.Redis.from_url(configured.url).lrange("zart", 0, -1)
    assert len(messages) == 2 and kept.encode() in messages[-1] and (kept + "-c").encode() in messages[0]
    engine.dispose()


def test_a_plain_connection_joins_too_and_publishes_once_its_commit_is_done(env, configured, unique):
    engine = create_engine(env.database_url)
    kept, dropped = unique("conn-kept"), unique("conn-dropped")
    with engine.connect() as conn:
        zart.schedule("t.three-steps", {"journal": "/dev/null"}, id=dropped, connection=conn)
        conn.rollback()
        zart.schedule("t.three-steps", {"journal": "/dev/null"}, id=kept, connection=conn)
        assert queued(configured) == 0
        conn.commit()
    poll(lambda: queued(configured) == 1, what="the doorbell after the commit")
    assert execution_row(env, kept) is not None and execution_row(env, dropped) is None
    message = redis.Redis.from_url(configured.url).lrange("zart", 0, -1)[0]
    assert kept.encode() in message
    engine.dispose()


def test_a_connection_of_an_autocommit_engine_rings_at_once(env, configured, unique):
    """Each statement commits by itself there, and the app never calls commit: the doorbell cannot wait for it."""
    engine = create_engine(env.database_url, isolation_level="AUTOCOMMIT")
    execution_id = unique("autocommit")
    with engine.connect() as conn:
        zart.schedule("t.three-steps", {"journal": "/dev/null"}, id=execution_id, connection=conn)
        assert execution_row(env, execution_id) is not None  # committed already
        assert queued(configured) == 1
    engine.dispose()


def test_an_app_whose_pool_is_all_in_use_can_still_schedule(env, configured, unique):
    """Checking which database the app's engine reaches must not need a second connection from the app's pool:
    with every one held by a request in its transaction, that check would wait for the pool's timeout."""
    engine = create_engine(env.database_url, pool_size=1, max_overflow=0, pool_timeout=3)
    execution_id = unique("full-pool")
    with Session(engine) as session:
        session.execute(text("SELECT 1"))  # the pool's only connection, held by this transaction
        zart.schedule("t.three-steps", {"journal": "/dev/null"}, id=execution_id, connection=session)
        session.commit()
    assert execution_row(env, execution_id) is not None and queued(configured) == 1
    engine.dispose()


def test_redis_down_at_commit_still_runs_when_it_returns(env, configured, start_worker, unique):
    client = shop.create_app(env.database_url).test_client()
    configured.stop()
    order_id = unique("offline")
    response = client.post("/orders", json={"id": order_id, "amount": 12})
    assert response.status_code == 201  # the app's commit does not depend on the broker
    execution_id = response.get_json()["execution_id"]
    assert execution_row(env, execution_id)["status"] == "pending"
    configured.start()
    start_worker(ZART_BROKER_URL=configured.url, ZART_IMPORTS=SHOP_IMPORTS)
    assert finished(env, execution_id)["status"] == "completed"
    assert order_row(env, order_id) == (12, "fulfilled")


def test_an_event_delivered_in_a_rolled_back_transaction_is_not_delivered(
    env, configured, start_worker, unique, log_dir
):
    start_worker(ZART_BROKER_URL=configured.url, ZART_IMPORTS=SHOP_IMPORTS)
    execution_id = zart.schedule("t.event", {"journal": str(log_dir / "e.j"), "timeout": 60}, id=unique("ev"))
    poll(lambda: (execution_row(env, execution_id) or {}).get("status") == "waiting", what="the event wait")
    engine = create_engine(env.database_url)
    with Session(engine) as session:
        zart.send_event(execution_id, "approval", {"by": "nobody"}, connection=session)
        session.rollback()
    assert execution_row(env, execution_id)["status"] == "waiting"
    with Session(engine) as session:
        zart.send_event(execution_id, "approval", {"by": "ada"}, connection=session)
        with pytest.raises(NotWaitingForEvent):  # in the same transaction, it is already delivered
            zart.send_event(execution_id, "approval", {"by": "again"}, connection=session)
        session.rollback()
    with Session(engine) as session:
        zart.send_event(execution_id, "approval", {"by": "ada"}, connection=session)
        session.commit()
    assert finished(env, execution_id)["output"] == {"payload": {"by": "ada"}}
    engine.dispose()


def on_psycopg2(database_url: str) -> str:
    """The same database through psycopg2, SQLAlchemy's default driver for `postgresql://` (many Flask apps')."""
    return database_url.replace("postgresql+psycopg://", "postgresql+psycopg2://", 1)


def test_an_app_on_the_psycopg2_driver_schedules_and_delivers_events_in_its_own_transactions(
    env, configured, start_worker, unique, log_dir
):
    start_worker(ZART_BROKER_URL=configured.url, ZART_IMPORTS=SHOP_IMPORTS)
    client = shop.create_app(on_psycopg2(env.database_url)).test_client()
    order_id = unique("pg2-order")
    response = client.post("/orders", json={"id": order_id, "amount": 7})
    assert response.status_code == 201, response.get_json()
    assert finished(env, response.get_json()["execution_id"])["output"] == {"order_id": order_id, "status": "fulfilled"}
    execution_id = zart.schedule("t.event", {"journal": str(log_dir / "pg2.j"), "timeout": 60}, id=unique("pg2-ev"))
    poll(lambda: (execution_row(env, execution_id) or {}).get("status") == "waiting", what="the event wait")
    engine = create_engine(on_psycopg2(env.database_url))
    assert engine.dialect.driver == "psycopg2"
    with Session(engine) as session:
        zart.send_event(execution_id, "approval", {"by": "ada"}, connection=session)
        session.commit()
    assert finished(env, execution_id)["output"] == {"payload": {"by": "ada"}}
    engine.dispose()


def test_a_connection_to_another_database_is_refused_and_writes_nothing(env, postgres, configured, unique):
    with psycopg.connect(f"postgresql://postgres@127.0.0.1:{postgres.port}/postgres", autocommit=True) as admin:
        if not admin.execute("SELECT 1 FROM pg_database WHERE datname = 'shop_elsewhere'").fetchone():
            admin.execute("CREATE DATABASE shop_elsewhere")
    other = create_engine(f"postgresql+psycopg://postgres@127.0.0.1:{postgres.port}/shop_elsewhere")
    execution_id = unique("elsewhere")
    with Session(other) as session, pytest.raises(ConfigurationError, match="shop_elsewhere"):
        zart.schedule("t.three-steps", {}, id=execution_id, connection=session)
    assert execution_row(env, execution_id) is None
    with pytest.raises(TypeError, match="Session"):
        zart.schedule("t.three-steps", {}, connection="postgresql://elsewhere")
    other.dispose()
