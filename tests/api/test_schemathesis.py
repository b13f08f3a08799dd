"""Property-based: requests generated from /openapi.json never get a 5xx or a response that breaks the document."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.core.parameters import ParameterLocation
from schemathesis.specs.openapi.checks import positive_data_acceptance

from flask_app import create_app
from zart.admin import AdminService
from zart.config import Settings
from zart.service import ZartService

TOKEN = "property-token"

# Schema-valid bodies these operations refuse by contract with 422: a task no worker registered, input that
# breaks the task's own schema, strings with U+0000 (PostgreSQL cannot store them). Exempt from "valid data
# must be accepted"; every other check still applies to them.
SEMANTICALLY_CHECKED = {
    "POST /api/v1/executions": [positive_data_acceptance],
    # a cursor of the documented shape is still only valid if this API issued it (for that order, without offset)
    "GET /api/v1/executions": [positive_data_acceptance],
    "POST /api/v1/events/{execution_id}/{event_name}": [positive_data_acceptance],
    # a rule naming nothing, or one pausing everything without `all`, is refused by meaning, not by shape
    "POST /zart/admin/v1/pause": [positive_data_acceptance],
    # new input is held to the same storability rule (no U+0000) as a schedule's
    "POST /zart/admin/v1/executions/{execution_id}/restart": [positive_data_acceptance],
    # a duration of the documented shape may still be zero or over a hundred years
    "POST /zart/admin/v1/prune": [positive_data_acceptance],
    # a schedule's cron expression, timezone, interval, bounds and target are checked by meaning
    "POST /api/v1/schedules": [positive_data_acceptance],
    "PATCH /api/v1/schedules/{schedule_id}": [positive_data_acceptance],
    # a change must name something to change, and a rate of the documented shape may still not parse
    "PUT /zart/admin/v1/limits/{name}": [positive_data_acceptance],
    # a backfill window must lie in the past and start before it ends
    "POST /api/v1/schedules/{schedule_id}/backfill": [positive_data_acceptance],
}
# Generated prunes only count: a real one would delete what the session's other tests finished.
PRUNE = "POST /zart/admin/v1/prune"


def operation_labels() -> list[str]:
    """Read from the document of an app that is never called (building it touches no database)."""
    app = create_app(Settings(api_tokens=(TOKEN,)), public_docs=True)
    schema = schemathesis.openapi.from_wsgi("/openapi.json", app)
    return [result.ok().label for result in schema.get_all_operations()]


@pytest.fixture(scope="module")
def api_schema(env):
    """Bearer tokens on, so the document declares the scheme and unauthenticated calls are checked too.

    Generated requests may create pause rules (even `all: true`) and schedules; they are deleted afterwards
    so that no later test finds its executions held or fired for.
    """
    app = create_app(settings=env.settings(ZART_API_TOKENS=TOKEN), public_docs=True)  # the document only
    yield schemathesis.openapi.from_wsgi("/openapi.json", app)
    admin = AdminService(ZartService(env.settings()))
    for rule in admin.list_pauses(include_inactive=True):
        admin.delete_pause(rule["rule_id"], "test-cleanup")
    delete_api_schedules(env)


def delete_api_schedules(env) -> None:
    from zart.schedule_service import ScheduleService

    schedules = ScheduleService(ZartService(env.settings()))
    page, _ = schedules.list(include_disabled=True, limit=500)
    while page:
        for row in page:
            if row["source"] == "api":
                schedules.delete(row["id"])
        page = [row for row in schedules.list(include_disabled=True, limit=500)[0] if row["source"] == "api"]


@pytest.mark.parametrize("label", operation_labels())
def test_the_api_honours_its_own_document(api_schema, label):
    operation = api_schema.find_operation_by_label(label)
    assert operation is not None, label
    cases = st.one_of(operation.as_strategy(mode) for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE))

    @given(case=cases)
    @settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    def honours(case: schemathesis.Case) -> None:
        # A case whose headers are the invalid part (a missing Authorization, say) is sent as generated: adding
        # the token would turn it into a valid request and the check would blame the API for accepting it.
        credentials = {} if case.meta.is_negative_at(ParameterLocation.HEADER) else {"Authorization": f"Bearer {TOKEN}"}
        if label == PRUNE and isinstance(case.body, dict) and isinstance(case.body.get("dry_run", False), bool):
            case.body["dry_run"] = True  # a non-boolean dry_run is what makes such a body invalid: left as it is
        case.call_and_validate(headers=credentials, excluded_checks=SEMANTICALLY_CHECKED.get(label, []))

    honours()
