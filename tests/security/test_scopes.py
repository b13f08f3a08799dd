"""Token scopes: every operation in the OpenAPI document names the scope it needs, and the server enforces
exactly that (403 `forbidden` below it), for every token kind; ambiguous token entries are refused at start."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from flask_app import create_app
from flask_app.auth import SCOPE_EXTENSION, SCOPES, Token, allows, encode_tokens
from tests.harness import REPO
from zart.errors import ConfigurationError

TOKENS = "reader:read:r-secret,writer:write:w-secret,boss:admin:a-secret,legacy:l-secret,bare-secret"
BY_SCOPE = {"read": "r-secret", "write": "w-secret", "admin": "a-secret"}
FULL_RIGHTS = ["l-secret", "bare-secret"]  # entries written before scopes existed keep every right

# The scope each known operation needs; a new operation must document one (checked below) and may be added here.
EXPECTED = {
    ("get", "/api/v1/executions"): "read",
    ("post", "/api/v1/executions"): "write",
    ("get", "/api/v1/executions/{execution_id}"): "read",
    ("get", "/api/v1/executions/{execution_id}/wait"): "read",
    ("post", "/api/v1/executions/{execution_id}/cancel"): "write",
    ("post", "/api/v1/events/{execution_id}/{event_name}"): "write",
    ("get", "/api/v1/stats"): "read",
    ("get", "/api/v1/tasks"): "read",
    ("get", "/metrics"): "read",
    ("get", "/zart/admin/v1/executions/{execution_id}/detail"): "read",
    ("get", "/zart/admin/v1/executions/{execution_id}/runs"): "read",
    ("post", "/zart/admin/v1/executions/{execution_id}/retry-step"): "admin",
    ("post", "/zart/admin/v1/executions/{execution_id}/restart"): "admin",
    ("post", "/zart/admin/v1/executions/{execution_id}/rerun"): "admin",
    ("post", "/zart/admin/v1/executions/{execution_id}/rerun/preview"): "read",
    ("get", "/zart/admin/v1/pause"): "read",
    ("post", "/zart/admin/v1/pause"): "admin",
    ("post", "/zart/admin/v1/pause/{rule_id}"): "admin",
    ("delete", "/zart/admin/v1/pause/{rule_id}"): "admin",
    ("post", "/zart/admin/v1/prune"): "admin",
    ("get", "/zart/admin/v1/stranded"): "read",
    ("get", "/api/v1/schedules"): "read",
    ("post", "/api/v1/schedules"): "admin",
    ("get", "/api/v1/schedules/{schedule_id}"): "read",
    ("patch", "/api/v1/schedules/{schedule_id}"): "admin",
    ("delete", "/api/v1/schedules/{schedule_id}"): "admin",
    ("post", "/api/v1/schedules/{schedule_id}/pause"): "admin",
    ("post", "/api/v1/schedules/{schedule_id}/resume"): "admin",
    ("post", "/api/v1/schedules/{schedule_id}/trigger"): "admin",
    ("post", "/api/v1/schedules/{schedule_id}/backfill"): "admin",
}
METHODS = ("get", "post", "put", "patch", "delete")
# path parameters that name nothing, so a permitted request fails harmlessly (404, 422) and changes nothing
PLACEHOLDERS = {
    "execution_id": "exec-no-such",
    "event_name": "no-such-event",
    "rule_id": "pause-no-such",
    "schedule_id": "no-such-schedule",
    "name": "no-such-limit",
}


@pytest.fixture(scope="module")
def secured(env):
    return create_app(settings=env.settings(ZART_API_TOKENS=TOKENS)).test_client()


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def operations(client) -> list[tuple[str, str, dict]]:
    spec = client.get("/openapi.json", headers=bearer(BY_SCOPE["read"])).get_json()
    return [
        (method, path, operation)
        for path, item in spec["paths"].items()
        for method, operation in item.items()
        if method in METHODS and operation.get("security", spec.get("security")) != []
    ]


def concrete(path: str) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: PLACEHOLDERS[m.group(1)], path)


def send(client, method: str, path: str, secret: str):
    query = "?timeout=0" if path.endswith("/wait") else ""
    body = {} if method in ("post", "put", "patch") else None
    return getattr(client, method)(concrete(path) + query, json=body, headers=bearer(secret))


def test_every_protected_operation_documents_its_scope_and_the_refusal(secured):
    found = operations(secured)
    assert len(found) >= len(EXPECTED)
    for method, path, operation in found:
        assert operation.get(SCOPE_EXTENSION) in SCOPES, (method, path)
        assert "403" in operation["responses"], (method, path)
        if (method, path) in EXPECTED:
            assert operation[SCOPE_EXTENSION] == EXPECTED[(method, path)], (method, path)
    assert set(EXPECTED) <= {(method, path) for method, path, _ in found}


def test_every_operation_enforces_exactly_the_scope_it_documents(secured):
    for method, path, operation in operations(secured):
        needed = operation[SCOPE_EXTENSION]
        for held, secret in [*BY_SCOPE.items(), *(("admin", s) for s in FULL_RIGHTS)]:
            response = send(secured, method, path, secret)
            if allows(held, needed):
                assert response.status_code not in (401, 403), (method, path, held, response.get_json())
            else:
                assert response.status_code == 403, (method, path, held, response.status_code)
                assert response.get_json()["error"]["code"] == "forbidden"
                assert needed in response.get_json()["error"]["message"]
        assert send(secured, method, path, "not-a-token").status_code == 401


def test_a_refused_write_changes_nothing(secured, service):
    before = service.stats()
    response = secured.post(
        "/api/v1/executions", json={"task": "t.typed", "data": {"amount": 1}}, headers=bearer(BY_SCOPE["read"])
    )
    assert response.status_code == 403
    assert service.stats() == before


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ("s3cret", Token("api", b"s3cret", "admin")),
        ("ops:s3cret", Token("ops", b"s3cret", "admin")),
        ("ops:read:s3cret", Token("ops", b"s3cret", "read")),
        ("ci@example.com:write:x", Token("ci@example.com", b"x", "write")),
    ],
)
def test_token_entries(entry, expected):
    assert encode_tokens([entry]) == (expected,)


@pytest.mark.parametrize(
    "entries",
    [
        ["ops:reader:s3cret"],  # a middle part that is not a scope: a name, or a secret with a colon?
        ["read:s3cret"],  # a scope word where the name goes
        ["ops:read:sec:ret"],  # a secret with a colon
        ["ops:"],
        [":s3cret"],
        ["ops::s3cret"],
        ["bad name:s3cret"],
        ["a:read:same", "b:admin:same"],  # one secret, two scopes
    ],
)
def test_ambiguous_token_entries_are_refused_without_echoing_secrets(entries):
    with pytest.raises(ConfigurationError) as refused:
        encode_tokens(entries)
    assert not any(entry in str(refused.value) for entry in entries)


def test_the_server_refuses_to_start_on_an_ambiguous_token_entry(env):
    result = subprocess.run(
        [sys.executable, "-m", "zart", "server", "--port", "1"],
        cwd=REPO,
        env=env.variables(ZART_API_TOKENS="ops:reader:hunter2"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "ZART_API_TOKENS entry 1" in result.stderr and "hunter2" not in result.stderr


def test_the_audit_trail_records_the_token_and_keeps_the_claimed_name_apart(env, service):
    client = create_app(settings=env.settings(ZART_API_TOKENS=TOKENS)).test_client()
    scheduled = client.post(
        "/api/v1/executions", json={"task": "t.typed", "data": {"amount": 1}}, headers=bearer(BY_SCOPE["write"])
    )
    execution_id = scheduled.get_json()["execution_id"]
    restarted = client.post(
        f"/zart/admin/v1/executions/{execution_id}/restart",
        json={"force": True, "triggered_by": "someone-else"},
        headers=bearer(BY_SCOPE["admin"]),
    )
    assert restarted.status_code == 200, restarted.get_json()

    detail = client.get(f"/zart/admin/v1/executions/{execution_id}/detail", headers=bearer(BY_SCOPE["read"]))
    body = detail.get_json()
    assert [(run["trigger"], run["triggered_by"]) for run in body["runs"]] == [
        ("initial", "writer"),
        ("restart", "boss"),
    ]
    assert [(a["action"], a["triggered_by"], a["on_behalf_of"]) for a in body["actions"]] == [
        ("restart", "boss", "someone-else")
    ]


def test_every_schedule_change_over_http_names_the_token_that_made_it(env, service, unique):
    """A schedule decides what the workers run (a Celery target: which fleet task): creating or changing one
    over HTTP lands in the audit trail under the token's name, as every other change does."""
    from tests.integration.test_core import query

    client = create_app(settings=env.settings(ZART_API_TOKENS=TOKENS)).test_client()
    admin, schedule_id = bearer(BY_SCOPE["admin"]), unique("audited")
    base = f"/api/v1/schedules/{schedule_id}"
    created = client.post(
        "/api/v1/schedules",
        json={"schedule_id": schedule_id, "task": "t.typed", "every": 3600, "data": {"amount": 1}, "paused": True},
        headers=admin,
    )
    assert created.status_code == 201, created.get_json()
    assert client.patch(base, json={"every": 7200}, headers=admin).status_code == 200
    assert client.post(f"{base}/resume", headers=bearer("l-secret")).status_code == 200
    assert client.post(f"{base}/pause", headers=admin).status_code == 200
    assert client.post(f"{base}/trigger", headers=admin).status_code == 200
    assert client.delete(base, headers=admin).status_code == 200

    rows = query(
        service,
        "SELECT action, triggered_by FROM admin_actions WHERE details->>'schedule_id' = :id ORDER BY id",
        id=schedule_id,
    )
    assert [(row["action"], row["triggered_by"]) for row in rows] == [
        ("schedule-create", "boss"),
        ("schedule-update", "boss"),
        ("schedule-resume", "legacy"),
        ("schedule-pause", "boss"),
        ("schedule-trigger", "boss"),
        ("schedule-delete", "boss"),
    ]
