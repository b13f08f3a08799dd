"""Postgres going away behind PgBouncer: the API answers the contract's 503 while it is gone, never a 500."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from flask_app import create_app
from tests.harness import poll
from tests.pooler.conftest import pooled_environment
from zart.localservices import LocalPgBouncer, free_port


class QuickPgBouncer(LocalPgBouncer):
    """Answers a client waiting for a server connection with an error after 2 s (PgBouncer's default is 120 s)."""

    def _config(self) -> str:
        return super()._config() + "query_wait_timeout = 2\n"


@pytest.fixture()
def quick_bouncer(postgres, services_dir) -> Iterator[LocalPgBouncer]:
    port = free_port()
    bouncer = QuickPgBouncer(services_dir / f"pgbouncer-{port}", port, postgres, pool_size=4)
    bouncer.start()
    yield bouncer
    bouncer.stop()


def test_postgres_down_behind_the_pooler_answers_503_then_recovers(direct_env, postgres, quick_bouncer, log_dir):
    """PgBouncer accepts a client connection while Postgres is down, so the pool's ping of the connection it had
    just opened in place of a stale one failed too, and the pool gave up with an error of its own (a 500 with a
    traceback)."""
    env = pooled_environment(direct_env, quick_bouncer)
    client = create_app(settings=env.settings()).test_client()
    made = client.post("/api/v1/executions", json={"task": "t.event", "data": {"journal": str(log_dir / "j")}})
    assert made.status_code == 201, made.get_json()
    path = f"/api/v1/executions/{made.get_json()['execution_id']}"
    answers: list[tuple[int, Any]] = []

    def answered(status: int) -> bool:
        response = client.get(path)
        answers.append((response.status_code, response.get_json().get("error")))
        return response.status_code == status

    assert answered(200)  # the pool holds a connection to PgBouncer now
    postgres.stop()
    try:
        poll(lambda: not answered(200), 30, what="the API to notice that Postgres is gone")
    finally:
        postgres.restart()
    poll(lambda: answered(200), 60, interval=0.2, what="the API to answer again")
    assert {status for status, _ in answers} == {200, 503}, answers
    assert all(error["code"] == "database_unavailable" for status, error in answers if status == 503), answers
