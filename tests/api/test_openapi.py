"""/openapi.json is valid OpenAPI 3 describing every route; /docs is Swagger UI served from local assets."""

from __future__ import annotations

import re
from html.parser import HTMLParser

from openapi_spec_validator import validate

from flask_app import schemas
from tests.api.conftest import API
from zart import views

UNDOCUMENTED = {"/openapi.json", "/docs", "/docs/assets/<path:filename>"}


def openapi_path(rule: str) -> str:
    return re.sub(r"<(?:[^:>]+:)?([^>]+)>", r"{\1}", rule)


def test_the_document_is_valid_openapi_3(client):
    spec = client.get("/openapi.json").get_json()
    validate(spec)
    assert spec["openapi"].startswith("3.")

ADMIN = "/zart/admin/v1"


def test_every_route_and_method_is_documented(app, client):
    spec = client.get("/openapi.json").get_json()
    routes = {
        (openapi_path(rule.rule), method.lower())
        for rule in app.url_map.iter_rules()
        if rule.rule not in UNDOCUMENTED and not rule.endpoint.startswith("zart_ui.")  # the dashboard's HTML pages
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }
    documented = {(path, method) for path, item in spec["paths"].items() for method in item if method != "parameters"}
    assert routes == documented
    assert {
        (f"{API}/executions", "post"),
        (f"{API}/executions", "get"),
        (f"{API}/executions/{{execution_id}}", "get"),
        (f"{API}/executions/{{execution_id}}/wait", "get"),
        (f"{API}/executions/{{execution_id}}/cancel", "post"),
        (f"{API}/events/{{execution_id}}/{{event_name}}", "post"),
        (f"{API}/stats", "get"),
        (f"{API}/tasks", "get"),
        ("/healthz", "get"),
        ("/readyz", "get"),
        ("/metrics", "get"),
        (f"{ADMIN}/executions/{{execution_id}}/detail", "get"),
        (f"{ADMIN}/executions/{{execution_id}}/retry-step", "post"),
        (f"{ADMIN}/executions/{{execution_id}}/restart", "post"),
        (f"{ADMIN}/executions/{{execution_id}}/rerun", "post"),
        (f"{ADMIN}/executions/{{execution_id}}/rerun/preview", "post"),
        (f"{ADMIN}/executions/{{execution_id}}/runs", "get"),
        (f"{ADMIN}/pause", "post"),
        (f"{ADMIN}/pause", "get"),
        (f"{ADMIN}/pause/{{rule_id}}", "post"),
        (f"{ADMIN}/pause/{{rule_id}}", "delete"),
        (f"{ADMIN}/limits", "get"),
        (f"{ADMIN}/limits/{{name}}", "get"),
        (f"{ADMIN}/limits/{{name}}", "put"),
        (f"{ADMIN}/limits/{{name}}", "delete"),
        (f"{ADMIN}/limits/{{name}}/pause", "post"),
        (f"{ADMIN}/limits/{{name}}/resume", "post"),
        (f"{API}/schedules", "post"),
        (f"{API}/schedules", "get"),
        (f"{API}/schedules/{{schedule_id}}", "get"),
        (f"{API}/schedules/{{schedule_id}}", "patch"),
        (f"{API}/schedules/{{schedule_id}}", "delete"),
        (f"{API}/schedules/{{schedule_id}}/pause", "post"),
        (f"{API}/schedules/{{schedule_id}}/resume", "post"),
        (f"{API}/schedules/{{schedule_id}}/trigger", "post"),
        (f"{API}/schedules/{{schedule_id}}/backfill", "post"),
        (f"{ADMIN}/prune", "post"),
        (f"{ADMIN}/stranded", "get"),
    } == documented


def test_error_responses_are_documented_with_the_error_shape(client):
    spec = client.get("/openapi.json").get_json()
    error = spec["components"]["schemas"]["Error"]
    assert error["required"] == ["error"]
    assert set(spec["components"]["schemas"]["ErrorBody"]["properties"]) == {"code", "message"}
    operations = spec["paths"]
    expected = {
        (f"{API}/executions", "post"): {"401", "409", "422", "503"},
        (f"{API}/executions/{{execution_id}}", "get"): {"401", "404", "422"},
        (f"{API}/executions/{{execution_id}}/wait", "get"): {"200", "202", "404", "422"},
        (f"{API}/executions/{{execution_id}}/cancel", "post"): {"404", "409"},
        (f"{API}/events/{{execution_id}}/{{event_name}}", "post"): {"404", "409", "422"},
        ("/readyz", "get"): {"503"},
    }
    for (path, method), statuses in expected.items():
        responses = operations[path][method]["responses"]
        assert statuses <= set(responses), (path, method, set(responses))
        for status in statuses - {"200", "202"}:
            assert responses[status]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}
        assert "default" in responses
    assert "execution_already_exists" in operations[f"{API}/executions"]["post"]["responses"]["409"]["description"]


class Assets(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.urls += [value for name, value in attrs if name in ("src", "href") and value]


def test_swagger_ui_references_only_local_assets_that_are_served(client):
    response = client.get("/docs")
    assert response.status_code == 200 and response.mimetype == "text/html"
    page = response.get_data(as_text=True)
    parser = Assets()
    parser.feed(page)
    assert len(parser.urls) >= 3
    assert "http://" not in page and "https://" not in page and "//cdn" not in page
    for url in parser.urls:
        assert url.startswith("/docs/assets/"), url
        asset = client.get(url)
        assert asset.status_code == 200 and len(asset.data) > 500, url
    assert '"/openapi.json"' in page


def test_documented_response_fields_are_the_shared_views_fields():
    """The document and `zart --json` must never disagree on a field name or its order."""
    pairs = {
        schemas.Scheduled: views.SCHEDULED_FIELDS,
        schemas.ExecutionStatus: views.STATUS_FIELDS,
        schemas.ExecutionSummary: views.SUMMARY_FIELDS,
        schemas.Finished: views.FINISHED_FIELDS,
        schemas.TaskEntry: views.TASK_FIELDS,
    }
    for schema, fields in pairs.items():
        assert tuple(schema().fields) == fields, schema.__name__


def test_every_guarded_operation_documents_the_body_limit_and_the_probes_do_not(client):
    paths = client.get("/openapi.json").get_json()["paths"]
    methods = {"get", "post", "put", "patch", "delete"}
    guarded = [
        (p, m, op) for p, ops in paths.items() if p.startswith((API, ADMIN)) for m, op in ops.items() if m in methods
    ]
    assert len(guarded) >= 15
    for path, method, operation in guarded:
        response = operation["responses"].get("413")
        assert response and "payload_too_large" in response["description"], (path, method)
    assert "413" not in paths["/healthz"]["get"]["responses"]
