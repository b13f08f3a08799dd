"""Bearer tokens: required everywhere but the probes once ZART_API_TOKENS is set (the docs may be opened up)."""

from __future__ import annotations

import pytest
from flask import Flask

from flask_app import create_app, init_zart
from tests.api.conftest import API, assert_error

TOKENS = "old-token,new-token"


@pytest.fixture()
def secured(env):
    return create_app(settings=env.settings(ZART_API_TOKENS=TOKENS)).test_client()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


PROTECTED = [
    ("get", f"{API}/executions"),
    ("post", f"{API}/executions"),
    ("get", f"{API}/executions/exec-1"),
    ("get", f"{API}/executions/exec-1/wait?timeout=0"),
    ("post", f"{API}/executions/exec-1/cancel"),
    ("post", f"{API}/events/exec-1/approval"),
    ("get", f"{API}/stats"),
    ("get", f"{API}/tasks"),
    ("get", "/metrics"),
]


@pytest.mark.parametrize(("method", "url"), PROTECTED)
def test_protected_routes_need_a_valid_token(secured, method, url):
    call = getattr(secured, method)
    for headers in ({}, bearer("wrong"), {"Authorization": "Basic b2xkLXRva2Vu"}, {"Authorization": "Bearer "}):
        response = call(url, headers=headers)
        assert_error(response, 401, "unauthorized")
        assert response.headers["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize("token", ["old-token", "new-token"])
def test_every_configured_token_is_accepted_during_rotation(secured, token):
    assert secured.get(f"{API}/stats", headers=bearer(token)).status_code == 200
    assert secured.get("/metrics", headers=bearer(token)).status_code == 200
    response = secured.post(f"{API}/executions", json={"task": "t.typed", "data": {"amount": 1}}, headers=bearer(token))
    assert response.status_code == 201


def test_a_token_with_non_ascii_characters_is_simply_wrong(secured):
    response = secured.get(f"{API}/stats", headers={"Authorization": "Bearer t\u00f6ken".encode().decode("latin-1")})
    assert_error(response, 401, "unauthorized")


def test_probes_need_no_token(secured):
    assert secured.get("/healthz").status_code == 200
    assert secured.get("/readyz").status_code == 200


@pytest.mark.parametrize("url", ["/openapi.json", "/docs", "/docs/assets/swagger-ui.css"])
def test_the_docs_need_a_token_unless_opened_up(env, secured, url):
    for headers in ({}, bearer("wrong"), {"Authorization": "Bearer "}):
        assert_error(secured.get(url, headers=headers), 401, "unauthorized")
    assert secured.get(url, headers=bearer("old-token")).status_code == 200
    opened = create_app(settings=env.settings(ZART_API_TOKENS=TOKENS, ZART_PUBLIC_DOCS="1")).test_client()
    assert opened.get(url).status_code == 200
    assert (
        create_app(settings=env.settings(ZART_API_TOKENS=TOKENS), public_docs=True).test_client().get(url).status_code
        == 200
    )


def test_the_spec_requires_the_bearer_scheme_when_tokens_are_set(secured, client):
    spec = secured.get("/openapi.json", headers=bearer("new-token")).get_json()
    assert spec["security"] == [{"bearerAuth": []}]
    assert spec["components"]["securitySchemes"]["bearerAuth"] == {
        "type": "http",
        "scheme": "bearer",
        "description": spec["components"]["securitySchemes"]["bearerAuth"]["description"],
    }
    assert spec["paths"]["/healthz"]["get"]["security"] == []
    open_spec = client.get("/openapi.json").get_json()
    assert "security" not in open_spec and "bearerAuth" in open_spec["components"]["securitySchemes"]


def test_without_tokens_nothing_needs_one(client):
    assert client.get(f"{API}/stats").status_code == 200
    assert client.get("/metrics").status_code == 200


REBOUND = {"base_url": "http://attacker.example:7700"}  # a page whose name now resolves to 127.0.0.1


def test_without_tokens_a_rebinding_page_can_neither_read_nor_act(client, service):
    """DNS rebinding: a page on another domain that resolves to 127.0.0.1 once loaded is same-origin to the
    browser, so neither Sec-Fetch-Site nor Origin tells; only the name it sends in `Host` does."""
    before = service.stats()
    body = '{"task": "t.typed", "data": {"amount": 1}}'
    same_origin = {"Sec-Fetch-Site": "same-origin", "Origin": "http://attacker.example:7700"}
    reads = [f"{API}/stats", f"{API}/executions", "/metrics", "/openapi.json"]
    for method, url in [*(("get", url) for url in reads), ("post", f"{API}/executions")]:
        response = getattr(client, method)(url, data=body, headers=same_origin, **REBOUND)
        error = assert_error(response, 403, "forbidden")
        assert "ZART_ALLOWED_HOSTS" in error["message"]
    page = client.get("/ui/", **REBOUND)
    assert page.status_code == 403 and "ZART_ALLOWED_HOSTS" in page.text
    assert service.stats() == before
    # the probes stay open to whatever name an orchestrator uses
    assert client.get("/healthz", **REBOUND).status_code == 200

    for name in ("localhost", "LOCALHOST.", "127.0.0.1:7700", "[::1]:7700"):
        assert client.get(f"{API}/stats", base_url=f"http://{name}").status_code == 200, name


def test_the_allowed_host_names_are_configurable_and_tokens_turn_the_check_off(env):
    named = create_app(settings=env.settings(ZART_ALLOWED_HOSTS="zart.internal, ::1")).test_client()
    assert named.get(f"{API}/stats", base_url="http://zart.internal:7700").status_code == 200
    assert named.get(f"{API}/stats", base_url="http://[::1]:7700").status_code == 200
    assert_error(named.get(f"{API}/stats"), 403, "forbidden")  # the list replaces the default one
    anyone = create_app(settings=env.settings(ZART_ALLOWED_HOSTS="*")).test_client()
    assert anyone.get(f"{API}/stats", **REBOUND).status_code == 200
    secured = create_app(settings=env.settings(ZART_API_TOKENS=TOKENS)).test_client()
    assert secured.get(f"{API}/stats", headers=bearer("old-token"), **REBOUND).status_code == 200


def test_a_host_app_keeps_its_own_host_handling_unless_zart_is_given_names(env):
    """Mounted in a team's app, zart's routes answer whatever names the app does (its TRUSTED_HOSTS, its proxy):
    a default list would refuse the app's own domain. Names given to init_zart (or ZART_ALLOWED_HOSTS) apply."""
    host = Flask("host")
    init_zart(host, env.settings())
    assert host.test_client().get(f"{API}/stats", base_url="http://app.example").status_code == 200
    guarded = Flask("guarded")
    init_zart(guarded, env.settings(), allowed_hosts=["app.example"])
    assert guarded.test_client().get(f"{API}/stats", base_url="http://app.example").status_code == 200
    assert_error(guarded.test_client().get(f"{API}/stats", **REBOUND), 403, "forbidden")
    configured = Flask("configured")
    init_zart(configured, env.settings(ZART_ALLOWED_HOSTS="app.example"))
    assert_error(configured.test_client().get(f"{API}/stats", **REBOUND), 403, "forbidden")


def test_without_tokens_a_page_of_another_site_changes_nothing_through_a_browser(client, service):
    """A browser posts a `text/plain` body to any site without asking it first: with no tokens configured, a page
    elsewhere must not schedule, cancel or restart through the browser of someone who can reach the API."""
    before = service.stats()
    body = '{"task": "t.typed", "data": {"amount": 1}}'
    for headers in (
        {"Sec-Fetch-Site": "cross-site", "Origin": "https://elsewhere.example"},
        {"Sec-Fetch-Site": "same-site", "Origin": "https://other.localhost"},
        {"Origin": "https://elsewhere.example"},  # a browser that sends no Sec-Fetch-Site
        {"Origin": "null"},  # a sandboxed frame, a file:// page
    ):
        response = client.post(f"{API}/executions", data=body, content_type="text/plain", headers=headers)
        assert_error(response, 403, "forbidden")
        assert_error(client.post(f"{API}/executions/exec-1/cancel", headers=headers), 403, "forbidden")
    assert service.stats() == before

    # the same page's own requests (Swagger UI's "Try it out"), and clients that are not browsers, still act
    for headers in ({"Sec-Fetch-Site": "same-origin"}, {"Origin": "http://localhost"}, {}):
        response = client.post(f"{API}/executions", data=body, content_type="text/plain", headers=headers)
        assert response.status_code == 201, (headers, response.get_json())
    # a request carrying a bearer token cannot come from another site's page (no browser adds one by itself)
    assert client.post(
        f"{API}/executions/exec-1/cancel", headers={"Origin": "https://elsewhere.example", **bearer("any")}
    ).status_code == 404
