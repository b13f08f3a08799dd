"""Hostile input on the HTTP API and the CLI: every request gets a documented 4xx (or exit code), never a
5xx or a traceback, and nothing in the store changes."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from urllib.parse import quote

import pytest
from sqlalchemy import text

from flask_app import create_app
from tests.cli.cli import ZART
from zart.store import db

HOSTILE_IDS = [
    "",
    "a" * 201,
    "x" * 20_000,
    "../../etc/passwd",
    "..%2F..%2Fetc%2Fpasswd",
    "1; DROP TABLE executions;--",
    "' OR '1'='1",
    "exec\x00id",
    "exec\nid",
    "\u202eexec",
    "😀",
    " leading-space",
    "-starts-with-dash",
]
MALFORMED_NAMES = ["", "n" * 201, "tab\tname", "nul\x00", "new\nline", "😀" * 300]
HOSTILE_NAMES = [*MALFORMED_NAMES, "'; DELETE FROM steps; --", "../../etc/passwd"]
MALFORMED_BODIES = [
    b"{",
    b"[1, 2",
    b"nul",
    b"\xff\xfe\x00",
    b'{"task": "t.three-steps", "data": {"x": NaN}}',
    b'{"task": "t.three-steps", "data": {"x": "\\u0000"}}',
    b'{"task": "t.three-steps", "data": {"x": "\\ud800"}}',
    b"[" * 5000 + b"]" * 5000,
]
WRONG_SCHEDULES = [
    {"task": "t.three-steps"},
    {"task": "t.three-steps", "data": [1, 2]},
    {"task": "t.three-steps", "data": "text"},
    {"task": "t.three-steps", "data": None},
    {"task": 42, "data": {}},
    {"task": ["t.three-steps"], "data": {}},
    {"task": "t.three-steps", "data": {}, "idempotency_key": 7},
    {"task": "t.three-steps", "data": {}, "extra": True},
    {"task": "no-such-task", "data": {}},
    {"task": "t.typed", "data": {"email": 5}},
]
BAD_LIST_QUERIES = [
    "limit=-1",
    "limit=0",
    "limit=501",
    "limit=99999999999999999999999",
    "limit=abc",
    "offset=-5",
    "offset=1e30",
    "offset=99999999999999999999999",
    "order=sideways",
    "status=bogus",
    "status=",
    "task=" + "t" * 300,
]
BAD_TIMEOUTS = ["-1", "3601", "1e308", "x", "99999999999999999999"]


def snapshot(database_url: str) -> dict[str, int]:
    """Row counts of everything a request could change."""
    tables = ("executions", "runs", "steps", "step_attempts", "events", "pause_rules", "admin_actions")
    with db.autocommit(database_url) as conn:
        return {t: conn.execute(text(f"SELECT count(*) FROM {t}")).scalar_one() for t in tables}


@pytest.fixture()
def unchanged(service) -> Iterator[None]:
    before = snapshot(service.settings.database_url)
    yield
    assert snapshot(service.settings.database_url) == before


@pytest.fixture()
def client(env):
    return create_app(settings=env.settings(ZART_MAX_BODY_BYTES="65536")).test_client()


def refused(response, *statuses: int) -> str:
    assert response.status_code in statuses, (response.status_code, response.get_data(as_text=True)[:300])
    body = response.get_json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}, body
    return body["error"]["code"]


def test_hostile_requests_get_documented_errors_and_change_nothing(client, unchanged):
    tried = 0
    for execution_id in HOSTILE_IDS:
        path = quote(execution_id, safe="")
        for method, url in (
            ("get", f"/api/v1/executions/{path}"),
            ("get", f"/api/v1/executions/{path}/wait?timeout=0"),
            ("post", f"/api/v1/executions/{path}/cancel"),
            ("post", f"/api/v1/events/{path}/approval"),
            ("get", f"/zart/admin/v1/executions/{path}/detail"),
            ("post", f"/zart/admin/v1/executions/{path}/restart"),
        ):
            refused(getattr(client, method)(url, json={}), 404, 405, 422)
            tried += 1
    for name in HOSTILE_NAMES:
        refused(client.post(f"/api/v1/events/exec-unknown/{quote(name, safe='')}", json={}), 404, 422)
        refused(client.post("/api/v1/executions", json={"task": name, "data": {}}), 422)
        tried += 2
        if name in MALFORMED_NAMES:  # a pause may name a task no worker has registered yet
            refused(client.post("/zart/admin/v1/pause", json={"task": name}), 422)
            tried += 1
    for body in MALFORMED_BODIES:
        assert refused(client.post("/api/v1/executions", data=body), 413, 422) in ("invalid_data", "payload_too_large")
        tried += 1
    for body in WRONG_SCHEDULES:
        assert refused(client.post("/api/v1/executions", json=body), 422) in ("invalid_data", "task_not_registered")
        tried += 1
    for query in BAD_LIST_QUERIES:
        assert refused(client.get(f"/api/v1/executions?{query}"), 422) == "invalid_data"
        tried += 1
    for timeout in BAD_TIMEOUTS:
        assert refused(client.get(f"/api/v1/executions/exec-x/wait?timeout={timeout}"), 422) == "invalid_data"
        tried += 1
    huge = {"task": "t.three-steps", "data": {"blob": "x" * 70_000}}
    assert refused(client.post("/api/v1/executions", json=huge), 413) == "payload_too_large"
    assert refused(client.post("/api/v1/events/exec-x/approval", json=huge), 413) == "payload_too_large"
    tried += 2
    print(f"\nhostile HTTP requests tried: {tried}")


CLI_CASES = [
    (["status", "../../etc/passwd"], (3,)),
    (["status", "1; DROP TABLE executions;--"], (3,)),
    (["status", "x" * 5000], (3,)),
    (["status", "exec-does-not-exist"], (3,)),
    (["cancel", "' OR '1'='1"], (3,)),
    (["wait", "exec-does-not-exist", "--timeout", "1"], (3,)),
    (["wait", "exec-x", "--timeout", "-1"], (1,)),
    (["wait", "exec-x", "--timeout", "abc"], (1,)),
    (["event", "exec-does-not-exist", "approval"], (3,)),
    (["event", "exec-x", "tab\tname"], (1,)),
    (["event", "exec-x", "approval", "--data", "{not json"], (1,)),
    (["schedule", "t.three-steps", "--data", "{"], (1,)),
    (["schedule", "t.three-steps", "--data", "[1, 2]"], (1,)),
    (["schedule", "t.three-steps", "--data", '{"x": NaN}'], (1,)),
    (["schedule", "t.three-steps", "--data", '{"x": "\\u0000"}'], (1,)),
    (["schedule", "no-such-task"], (1,)),
    (["schedule", "n" * 300], (1,)),
    (["schedule", "t.three-steps", "--id", "../escape"], (1,)),
    (["list", "--limit", "-1"], (1,)),
    (["list", "--limit", "100000"], (1,)),
    (["list", "--status", "bogus"], (1,)),
    (["list", "--offset", "-3"], (1,)),
    (["admin", "pause", "create"], (1,)),
    (["admin", "retry-step", "exec-does-not-exist", "b"], (3,)),
    (["no-such-command"], (1,)),
    (["status"], (1,)),
]


def test_hostile_cli_input_gets_contract_exit_codes_and_changes_nothing(env, unchanged, tmp_path):
    for argv, codes in CLI_CASES:
        done = subprocess.run(
            [str(ZART), *argv], env=env.variables(), cwd=tmp_path, capture_output=True, text=True, timeout=60
        )
        assert done.returncode in codes, (argv, done.returncode, done.stderr)
        assert "Traceback" not in done.stderr, (argv, done.stderr)
        assert done.stderr.strip(), argv  # says what was wrong
        assert done.stdout == "" or argv[0] == "no-such-command", (argv, done.stdout)
    print(f"\nhostile CLI invocations tried: {len(CLI_CASES)}")
    json.dumps(CLI_CASES)  # the corpus itself is plain data
