"""Liveness, readiness and Prometheus metrics, always at the root."""

from __future__ import annotations

import os
import signal
import threading
import time
from typing import Any

import psycopg

from flask_app import create_app
from tests.api.conftest import API, assert_error, schedule
from tests.harness import poll
from zart.localservices import free_port


def unreachable_app(env, **which: str):
    return create_app(settings=env.settings(**which))


def test_healthz_answers_without_touching_the_database(env):
    client = unreachable_app(env, DATABASE_URL=f"postgresql://postgres@127.0.0.1:{free_port()}/none").test_client()
    response = client.get("/healthz")
    assert response.status_code == 200 and response.get_json() == {"status": "ok"}


def test_readyz_reports_both_dependencies(client):
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ready", "checks": {"database": "ok", "broker": "ok"}}


def test_readyz_is_503_when_the_database_is_unreachable(env):
    client = unreachable_app(env, DATABASE_URL=f"postgresql://postgres@127.0.0.1:{free_port()}/none").test_client()
    error = assert_error(client.get("/readyz"), 503, "service_unavailable")
    assert "database" in error["message"] and "broker" not in error["message"]


def test_readyz_is_503_when_the_broker_is_unreachable(env):
    client = unreachable_app(env, ZART_BROKER_URL=f"redis://127.0.0.1:{free_port()}/0").test_client()
    error = assert_error(client.get("/readyz"), 503, "service_unavailable")
    assert "broker" in error["message"] and "database" not in error["message"]


def test_api_routes_report_an_unreachable_database_as_503(env):
    client = unreachable_app(env, DATABASE_URL=f"postgresql://postgres@127.0.0.1:{free_port()}/none").test_client()
    response = client.get(f"{API}/stats")
    assert_error(response, 503, "database_unavailable")
    assert response.headers["Retry-After"]


def test_metrics_expose_http_metrics_and_zart_gauges(client):
    schedule(client, "t.typed", {"amount": 1})
    client.get(f"{API}/executions/exec-missing")
    response = client.get("/metrics")
    assert response.status_code == 200 and response.mimetype == "text/plain"
    text = response.get_data(as_text=True)
    assert 'flask_http_request_total{method="GET",status="404"}' in text
    assert 'url_rule="/api/v1/executions/<execution_id>"' in text  # grouped by rule, not by ID
    assert "exec-missing" not in text
    for status in ("pending", "running", "waiting", "completed", "failed", "cancelled"):
        assert f'zart_executions{{status="{status}"}}' in text
    assert "zart_oldest_pending_age_seconds" in text
    assert "zart_database_up 1.0" in text
    assert "zart_wait_requests_in_flight 0.0" in text


def test_metrics_still_answer_when_the_database_does_not(env):
    client = unreachable_app(env, DATABASE_URL=f"postgresql://postgres@127.0.0.1:{free_port()}/none").test_client()
    response = client.get("/metrics")
    assert response.status_code == 200
    assert "zart_database_up 0.0" in response.get_data(as_text=True)


def test_metrics_show_queue_depth_and_oldest_pending_age_by_task(client, env, unique):
    from sqlalchemy import text

    from zart.store import db, executions

    task, other = unique("queue"), unique("queue")
    with db.transaction(env.database_url) as conn:  # never published: they stay pending for the scrape
        for n in range(3):
            executions.insert_execution(conn, execution_id=f"{task}-{n}", task=task, data={})
        executions.insert_execution(conn, execution_id=f"{other}-0", task=other, data={})
        conn.execute(
            text("UPDATE executions SET created_at = now() - interval '90 seconds' WHERE id = :id"), {"id": f"{task}-0"}
        )
    samples = {}
    for line in client.get("/metrics").get_data(as_text=True).splitlines():
        if line.startswith("zart_queue_"):
            name, _, value = line.rpartition(" ")
            samples[name] = float(value)
    assert samples[f'zart_queue_depth{{task="{task}"}}'] == 3
    assert samples[f'zart_queue_depth{{task="{other}"}}'] == 1
    assert 90 <= samples[f'zart_queue_oldest_pending_age_seconds{{task="{task}"}}'] < 120
    assert samples[f'zart_queue_oldest_pending_age_seconds{{task="{other}"}}'] < 30


def test_readyz_is_503_when_the_database_has_no_zart_schema(env, postgres):
    """A DATABASE_URL naming the wrong (or a never migrated) database: every API call would fail."""
    with psycopg.connect(f"postgresql://postgres@127.0.0.1:{postgres.port}/postgres", autocommit=True) as admin:
        if not admin.execute("SELECT 1 FROM pg_database WHERE datname = 'zart_unmigrated'").fetchone():
            admin.execute("CREATE DATABASE zart_unmigrated")
    empty = f"postgresql+psycopg://postgres@127.0.0.1:{postgres.port}/zart_unmigrated"
    client = unreachable_app(env, DATABASE_URL=empty).test_client()
    assert_error(client.get(f"{API}/stats"), 503, "database_unavailable")
    error = assert_error(client.get("/readyz"), 503, "service_unavailable")
    assert "database" in error["message"] and "broker" not in error["message"]


def test_api_routes_report_every_pooled_connection_in_use_as_503(env):
    """A database slow to answer (or a pooler queueing for it) holds each request's connection: past the pool's
    size a request waited for one and then failed with the pool's own timeout error, a 500 with a traceback."""
    from zart.store import db

    url = f"{env.database_url}?connect_timeout=4"  # an engine of its own, not shared with the other tests
    client = create_app(settings=env.settings(DATABASE_URL=url)).test_client()
    assert client.get(f"{API}/stats").status_code == 200
    engine = db.get_engine(client.application.extensions["zart"].service.settings.database_url)
    held = [engine.connect() for _ in range(engine.pool.size() + engine.pool._max_overflow)]  # type: ignore[attr-defined]
    try:
        error = assert_error(client.get(f"{API}/stats"), 503, "database_unavailable")
        assert "pool is in use" in error["message"]
    finally:
        for conn in held:
            conn.close()
    assert client.get(f"{API}/stats").status_code == 200


def test_a_frozen_database_fails_api_requests_within_the_bound_instead_of_hanging(env, postgres):
    """A database that stops answering without closing its connections (a stopped process or VM, a partition)
    held an API request forever: psycopg has no read timeout, and the kernel keeps acknowledging for a stopped
    process. Here the backend serving the API's pooled connection and the postmaster are stopped."""
    from sqlalchemy import text

    from zart.store import db

    url = f"{env.database_url}?connect_timeout=3"  # an engine of its own, not shared with the other tests
    client = create_app(settings=env.settings(DATABASE_URL=url, ZART_API_DATABASE_TIMEOUT="2")).test_client()
    assert client.get(f"{API}/stats").status_code == 200  # the pool keeps that connection for the next request
    with db.autocommit(client.application.extensions["zart"].service.settings.database_url) as conn:
        backend = conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
    postmaster = int((postgres.data_dir / "postmaster.pid").read_text().split()[0])
    answers: list[Any] = []
    caller = threading.Thread(target=lambda: answers.append(client.get(f"{API}/stats")), daemon=True)
    for pid in (postmaster, backend):
        os.kill(pid, signal.SIGSTOP)
    try:
        started = time.monotonic()
        caller.start()
        caller.join(30)
        elapsed = time.monotonic() - started
        assert answers, "the request was still waiting on the stopped database after 30 s"
    finally:
        for pid in (backend, postmaster):
            os.kill(pid, signal.SIGCONT)
    error = assert_error(answers[0], 503, "database_unavailable")
    assert "no answer within 2s" in error["message"], error
    assert elapsed < 15, elapsed  # the bound, then at most the connection attempt that replaces the cut one
    print(f"\nanswered {answers[0].status_code} after {elapsed:.1f}s: {error['message']}")
    poll(lambda: client.get(f"{API}/stats").status_code == 200, 15, what="the API to answer again")
