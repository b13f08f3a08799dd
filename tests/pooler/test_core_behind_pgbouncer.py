"""The core's acceptance a second time, with every worker, the service and the API going through PgBouncer in
transaction-pooling mode (see conftest.py): crash, lost message, sleep, event, children, cancel, admin restart,
and a long-poll woken by the LISTEN on the direct URL."""

from __future__ import annotations

import pytest

from tests.admin.test_admin_http import client as client  # noqa: F401  (the admin tests' fixture)
from tests.admin.test_admin_http import test_dead_step_rerun_restart_and_detail_over_http as admin_actions
from tests.api.test_long_poll import live as live  # noqa: F401
from tests.api.test_long_poll import test_held_waiters_are_woken_by_notify_while_other_requests_are_answered
from tests.integration.test_core import (
    test_cancel_pending_waiting_and_running,
    test_children_run_in_parallel_and_parent_resumes_once,
    test_durable_sleep_survives_restart_and_frees_the_slot,
    test_event_resumes_with_payload,
    test_flushed_redis_loses_nothing,
    test_sigkill_during_a_step_reruns_only_that_step,
    test_the_same_message_on_two_workers_runs_each_step_once,
    test_three_step_workflow_completes_with_output_and_step_records,
)

# A second run of the same acceptance: `make reliability` runs it, while `make test` keeps PgBouncer covered by
# the fleet test (tests/reliability/test_fleet.py) and the pooler unit tests, to stay within its time budget.
pytestmark = [pytest.mark.usefixtures("nothing_stranded"), pytest.mark.release_only]


@pytest.fixture()
def api_worker(start_worker):
    """The long-poll test's worker, for that test only: the others here count on owning every worker."""
    return start_worker()


test_admin_dead_step_rerun_restart_and_detail = admin_actions

__all__ = [
    "test_admin_dead_step_rerun_restart_and_detail",
    "test_cancel_pending_waiting_and_running",
    "test_children_run_in_parallel_and_parent_resumes_once",
    "test_durable_sleep_survives_restart_and_frees_the_slot",
    "test_event_resumes_with_payload",
    "test_flushed_redis_loses_nothing",
    "test_held_waiters_are_woken_by_notify_while_other_requests_are_answered",
    "test_sigkill_during_a_step_reruns_only_that_step",
    "test_the_same_message_on_two_workers_runs_each_step_once",
    "test_three_step_workflow_completes_with_output_and_step_records",
]


def test_the_environment_really_goes_through_pgbouncer(env, pgbouncer, service):
    """Guards the tests above: their URL is PgBouncer's, marked pooled, and the service still works."""
    from zart.config import is_pooled

    assert f":{pgbouncer.port}/" in env.database_url
    assert is_pooled(service.settings.database_url)
    assert f":{pgbouncer.port}/" not in service.settings.libpq_url
    assert service.settings.pooler == "transaction"
