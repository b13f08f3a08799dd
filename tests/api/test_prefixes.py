"""Route prefixes from the environment and from create_app(); probes, metrics and docs stay at the root."""

from __future__ import annotations

import pytest
from flask import Flask

from flask_app import create_app, init_zart
from tests.api.conftest import assert_error
from zart.errors import ConfigurationError


def paths(app) -> set[str]:
    return {rule.rule for rule in app.url_map.iter_rules()}


def test_prefixes_from_the_environment(env):
    app = create_app(settings=env.settings(ZART_API_PREFIX="/zart/api/v2", ZART_ADMIN_PREFIX="/ops/"))
    client = app.test_client()
    assert client.get("/zart/api/v2/stats").status_code == 200
    assert_error(client.get("/api/v1/stats"), 404, "not_found")
    assert client.get("/healthz").status_code == 200 and client.get("/metrics").status_code == 200
    assert app.extensions["zart"].admin_prefix == "/ops" and "admin" in app.blueprints
    spec = client.get("/openapi.json").get_json()
    assert "/zart/api/v2/executions/{execution_id}/wait" in spec["paths"]
    assert not any(path.startswith("/api/v1") for path in spec["paths"])


def test_prefixes_given_to_create_app_win_over_the_environment(env):
    app = create_app(settings=env.settings(ZART_API_PREFIX="/from-env"), api_prefix="v3", admin_prefix="/admin")
    client = app.test_client()
    assert client.get("/v3/tasks").status_code == 200
    assert_error(client.get("/from-env/tasks"), 404, "not_found")
    assert {"/healthz", "/readyz", "/metrics", "/openapi.json", "/docs"} <= paths(app)
    assert app.extensions["zart"].admin_prefix == "/admin"


def test_the_api_can_be_served_at_the_root(env):
    client = create_app(settings=env.settings(), api_prefix="/").test_client()
    assert client.get("/stats").status_code == 200
    assert client.get("/healthz").status_code == 200


def test_under_a_mount_point_the_document_sends_calls_below_it(env):
    """Served below a path (SCRIPT_NAME), the document's paths are still the app's own: Swagger UI's calls must
    go to the mount point, not to the host's root where nothing of zart answers."""
    client = create_app(settings=env.settings()).test_client()
    base = "http://localhost/internal"
    spec = client.get("/openapi.json", base_url=base).get_json()
    (server,) = spec["servers"]
    assert server["url"] == "/internal" and "/api/v1/stats" in spec["paths"]
    assert client.get("/api/v1/stats", base_url=base).status_code == 200  # server + path: /internal/api/v1/stats
    assert "servers" not in client.get("/openapi.json").get_json()  # at the root, the document's own location


def test_mounting_zart_twice_on_one_app_is_refused_before_anything_changes(env):
    app = Flask("host")
    first = init_zart(app, env.settings())
    hooks = len(app.before_request_funcs[None])
    with pytest.raises(ConfigurationError, match="already"):
        init_zart(app, env.settings(), api_prefix="/other")
    assert app.extensions["zart"] is first and len(app.before_request_funcs[None]) == hooks
    assert app.test_client().get("/api/v1/stats").status_code == 200
