"""`zart server` and `flask --app flask_app run` start the real API as a user would, in their own process."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import urllib.error
import urllib.parse
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
def running(argv: list[str], env: dict[str, str], log: Path, port: int, host: str = "127.0.0.1") -> Iterator[str]:
    with open(log, "wb") as output:
        process = subprocess.Popen(argv, cwd=REPO, env=env, stdout=output, stderr=subprocess.STDOUT)
    base = f"http://{host}:{port}"
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


def test_a_dashboard_form_from_one_server_process_is_accepted_by_another(env, tmp_path, service, unique):
    """Without tokens, several processes behind one address (gunicorn workers, replicas) must accept each
    other's session cookie, or a form shown by one is refused as forged by the next."""
    execution_id = unique("two-servers")
    # it waits for an event nobody sends: still active when the form is posted, even if a worker runs it
    service.schedule("t.named-event", {"event": "never"}, execution_id=execution_id)
    ports = free_port(), free_port()
    argv = [[sys.executable, "-m", "zart", "server", "--port", str(port), "--threads", "8"] for port in ports]
    with (
        running(argv[0], env.variables(), tmp_path / "first.log", ports[0]) as first,
        running(argv[1], env.variables(), tmp_path / "second.log", ports[1]) as second,
    ):
        with urllib.request.urlopen(f"{first}/ui/executions/{execution_id}/cancel", timeout=5) as response:
            cookie = response.headers["Set-Cookie"].split(";", 1)[0]
            csrf = re.search(r'name="csrf" value="([^"]+)"', response.read().decode()).group(1)
        request = urllib.request.Request(
            f"{second}/ui/executions/{execution_id}/cancel",
            data=urllib.parse.urlencode({"csrf": csrf}).encode(),
            headers={"Cookie": cookie},
        )
        with urllib.request.urlopen(request, timeout=5) as response:  # the redirect to the detail page is followed
            assert response.status == 200
    assert service.status(execution_id)["status"] == "cancelled"


def test_without_tokens_the_server_answers_its_own_address_and_loopback_names_only(env, tmp_path):
    """Bound to 127.0.0.2 (any loopback address works on Linux), it answers that address and the loopback
    names; a page whose own domain was made to resolve to the server (DNS rebinding) is refused."""
    port = free_port()
    argv = [sys.executable, "-m", "zart", "server", "--host", "127.0.0.2", "--port", str(port), "--threads", "8"]
    with running(argv, env.variables(), tmp_path / "server.log", port, host="127.0.0.2") as base:

        def stats_as(host: str) -> tuple[int, dict]:
            request = urllib.request.Request(f"{base}/api/v1/stats", headers={"Host": host})
            try:
                with urllib.request.urlopen(request, timeout=5) as response:
                    return response.status, json.loads(response.read())
            except urllib.error.HTTPError as error:
                return error.code, json.loads(error.read())

        assert stats_as(f"127.0.0.2:{port}")[0] == 200
        assert stats_as(f"localhost:{port}")[0] == 200
        status, body = stats_as(f"rebound.example:{port}")
        assert status == 403 and body["error"]["code"] == "forbidden", body
