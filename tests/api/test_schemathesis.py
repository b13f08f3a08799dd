"""Property-based: requests generated from /openapi.json never get a 5xx or a response that breaks the document."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import positive_data_acceptance

from flask_app import create_app
from zart.config import Settings

TOKEN = "property-token"

# Schema-valid bodies these operations refuse by contract with 422: a task no worker registered, input that
# breaks the task's own schema, strings with U+0000 (PostgreSQL cannot store them). Exempt from "valid data
# must be accepted"; every other check still applies to them.
SEMANTICALLY_CHECKED = {
    "POST /api/v1/executions": [positive_data_acceptance],
    "POST /api/v1/events/{execution_id}/{event_name}": [positive_data_acceptance],
}


def operation_labels() -> list[str]:
    """Read from the document of an app that is never called (building it touches no database)."""
    schema = schemathesis.openapi.from_wsgi("/openapi.json", create_app(Settings(api_tokens=(TOKEN,))))
    return [result.ok().label for result in schema.get_all_operations()]


@pytest.fixture(scope="module")
def api_schema(env):
    """Bearer tokens on, so the document declares the scheme and unauthenticated calls are checked too."""
    app = create_app(settings=env.settings(ZART_API_TOKENS=TOKEN))
    return schemathesis.openapi.from_wsgi("/openapi.json", app)


@pytest.mark.parametrize("label", operation_labels())
def test_the_api_honours_its_own_document(api_schema, label):
    operation = api_schema.find_operation_by_label(label)
    assert operation is not None, label
    cases = st.one_of(operation.as_strategy(mode) for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE))

    @given(case=cases)
    @settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    def honours(case: schemathesis.Case) -> None:
        case.call_and_validate(
            headers={"Authorization": f"Bearer {TOKEN}"}, excluded_checks=SEMANTICALLY_CHECKED.get(label, [])
        )

    honours()
