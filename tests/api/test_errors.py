"""Every failure, Flask's own included, has the contract's JSON error shape and never leaks a traceback."""

from __future__ import annotations

from flask import Flask

from flask_app import create_app, init_zart
from tests.api.conftest import API, assert_error


def test_unknown_url_is_a_json_404(client):
    assert_error(client.get("/no/such/page"), 404, "not_found")
    assert_error(client.get(f"{API}/nothing-here"), 404, "not_found")


def test_wrong_method_is_a_json_405_with_allow(client):
    response = client.delete(f"{API}/executions")
    assert_error(response, 405, "method_not_allowed")
    assert set(response.headers["Allow"].replace(" ", "").split(",")) >= {"GET", "POST"}
    assert_error(client.get(f"{API}/executions/exec-1/cancel"), 405, "method_not_allowed")


def test_a_body_over_the_limit_is_a_json_413(env):
    client = create_app(settings=env.settings(ZART_MAX_BODY_BYTES="1000")).test_client()
    big = {"task": "t.typed", "data": {"amount": 1, "padding": "x" * 2000}}
    error = assert_error(client.post(f"{API}/executions", json=big), 413, "payload_too_large")
    assert "1000" in error["message"]
    assert_error(client.post(f"{API}/events/exec-1/approval", json={"p": "x" * 2000}), 413, "payload_too_large")
    assert client.post(f"{API}/executions", json={"task": "t.typed", "data": {"amount": 1}}).status_code == 201


def test_an_unexpected_exception_is_a_json_500_without_a_traceback(env):
    app = create_app(settings=env.settings())

    @app.route("/explode")
    def explode() -> str:
        raise RuntimeError("secret internals")

    response = app.test_client().get("/explode")
    error = assert_error(response, 500, "internal_error")
    assert "secret" not in response.get_data(as_text=True) and "Traceback" not in error["message"]


def test_unexpected_exceptions_inside_mounted_blueprints_keep_the_shape(env):
    host = Flask("host")
    extension = init_zart(host, env.settings())

    def broken_stats() -> dict[str, int]:
        raise RuntimeError("secret internals")

    extension.service.stats = broken_stats  # type: ignore[method-assign]
    response = host.test_client().get(f"{API}/stats")
    assert_error(response, 500, "internal_error")
    assert "secret" not in response.get_data(as_text=True)


def test_a_mounted_app_keeps_its_own_routes_and_error_pages(env):
    host = Flask("host")

    @host.route("/")
    def home() -> str:
        return "home page"

    @host.errorhandler(404)
    def own_not_found(error: Exception) -> tuple[str, int]:
        return "host 404", 404

    init_zart(host, env.settings(), api_prefix="/zart/api")
    client = host.test_client()
    assert client.get("/").get_data(as_text=True) == "home page"
    assert client.get("/elsewhere").get_data(as_text=True) == "host 404"
    assert client.get("/zart/api/stats").status_code == 200
    assert_error(client.get("/zart/api/executions/exec-missing"), 404, "execution_not_found")
    assert client.get("/healthz").status_code == 200
