"""Testing helpers for zart users: a pytest plugin that runs workflows to completion in the test process,
against a real temporary PostgreSQL, on a clock that skips sleeps and timeouts at once.

Enable it in your `conftest.py` with `pytest_plugins = ["zart.testing"]`, then::

    def test_onboarding(zart_workflows):
        run = zart_workflows.start("onboarding", {"email": "ada@example.com"},
                                   stubs={"create-customer": {"id": 7}})
        run.advance()                                  # the 1-day sleep passes at once; stops at the event
        assert run.waiting_for_event == "email-verified"
        assert run.send_event("email-verified", {"token": "tk"}).result() == {"customer_id": 7}

Fixtures: `zart_database_url` (session: `ZART_TEST_DATABASE_URL` if set, else a private PostgreSQL started
under a temporary directory and migrated) and `zart_workflows` (a `WorkflowHarness` per test).
"""

from __future__ import annotations

from zart.testing.plugin import zart_database_url, zart_workflows
from zart.testing.runner import Clock, WorkflowFailed, WorkflowHarness, WorkflowRun, WorkflowStuck

__all__ = [
    "Clock",
    "WorkflowFailed",
    "WorkflowHarness",
    "WorkflowRun",
    "WorkflowStuck",
    "zart_database_url",
    "zart_workflows",
]
