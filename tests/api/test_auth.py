"""Bearer tokens: required everywhere but the probes once ZART_API_TOKENS is set (the docs may be opened up)."""

from __future__ import annotations

import pytest

from flask_app import create_app
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
