"""The real app against the session's Postgres and Redis; one worker serves the whole API suite."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from flask_app import create_app
from tests.harness import Environment, Worker, package_worker, poll
from zart.cli.serving import create_server, waitress_options

API = "/api/v1"


@pytest.fixture()
def app(env: Environment) -> Flask:
    return create_app(settings=env.settings())


@pytest.fixture()
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture(scope="package")
def api_worker(env: Environment, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Worker]:
    """The API is what these tests exercise, not worker start-up: one worker for all of them, stopped before
    other packages run (their tests count on owning every worker)."""
    with package_worker(env, tmp_path_factory, "api-worker") as worker:
        yield worker


@pytest.fixture()
def journal(log_dir: Path, unique: Callable[[str], str]) -> Callable[[], dict[str, str]]:
    """Input naming a fresh journal file, which the test workflows require."""
    return lambda: {"journal": str(log_dir / f"{unique('j')}.journal")}


def schedule(client: FlaskClient, task: str, data: dict[str, Any], **extra: Any) -> str:
    response = client.post(f"{API}/executions", json={"task": task, "data": data, **extra})
    assert response.status_code == 201, response.get_json()
    return str(response.get_json()["execution_id"])


def status_of(client: FlaskClient, execution_id: str) -> dict[str, Any]:
    response = client.get(f"{API}/executions/{execution_id}")
    assert response.status_code == 200, response.get_json()
    return dict(response.get_json())


def wait_until_status(client: FlaskClient, execution_id: str, status: str, timeout: float = 30) -> dict[str, Any]:
    return poll(
        lambda: (row := status_of(client, execution_id))["status"] == status and row,
        timeout,
        what=f"{execution_id} to be {status}",
    )


def assert_error(response: Any, status: int, code: str) -> dict[str, Any]:
    """The contract's error shape: JSON, exactly `{"error": {"code", "message"}}`."""
    assert response.status_code == status, (response.status_code, response.get_data(as_text=True)[:500])
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}, body
    assert body["error"]["code"] == code, body
    assert body["error"]["message"]
    return dict(body["error"])


@dataclass
class LiveServer:
    """A real waitress server in a thread of the test process."""

    url: str
    app: Flask
    _server: Any
    _thread: threading.Thread

    def stop(self) -> None:
        self._server.close()
        self._thread.join(timeout=10)


def serve(app: Flask, threads: int = 64, **bounds: float) -> LiveServer:
    options = waitress_options(threads, threads + 64, app.extensions["zart"].max_body_bytes)
    server = create_server(app, host="127.0.0.1", port=0, **options, **bounds)
    thread = threading.Thread(target=server.run, name="waitress", daemon=True)
    thread.start()
    return LiveServer(f"http://127.0.0.1:{server.effective_port}", app, server, thread)
