"""`zart server` and `flask --app flask_app run` start the real API as a user would, in their own process."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.harness import REPO, poll
from zart.localservices import free_port


def get(url: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())
    except OSError:
        return 0, {}


@contextmanager
def running(argv: list[str], env: dict[str, str], log: Path, port: int) -> Iterator[str]:
    with open(log, "wb") as output:
        process = subprocess.Popen(argv, cwd=REPO, env=env, stdout=output, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        poll(lambda: get(f"{base}/healthz")[0] == 200 or process.poll() is not None, 30, what="the server")
        assert process.poll() is None, log.read_text()
        yield base
    finally:
        process.terminate()
        process.wait(timeout=15)


@pytest.mark.parametrize("launcher", ["zart", "flask"])
def test_the_server_starts_and_serves_the_api(env, tmp_path, launcher):
    port = free_port()
    argv = {
        "zart": [sys.executable, "-m", "zart", "server", "--port", str(port), "--threads", "16"],
        "flask": [sys.executable, "-m", "flask", "--app", "flask_app", "run", "--port", str(port)],
    }[launcher]
    variables = env.variables(ZART_API_TOKENS="server-token")
    with running(argv, variables, tmp_path / "server.log", port) as base:
        assert get(f"{base}/readyz") == (200, {"status": "ready", "checks": {"database": "ok", "broker": "ok"}})
        status, body = get(f"{base}/api/v1/stats")
        assert status == 401 and body["error"]["code"] == "unauthorized"
        request = urllib.request.Request(f"{base}/api/v1/stats", headers={"Authorization": "Bearer server-token"})
        with urllib.request.urlopen(request, timeout=5) as response:
            assert set(json.loads(response.read())) >= {"pending", "completed"}
        if launcher == "zart":
            assert "zart API on http://127.0.0.1" in (tmp_path / "server.log").read_text()
