"""zart.testing, as a user's test suite would use it: a workflow with a one-day sleep and an event wait runs
to the end in the test process, against the session's real Postgres, in well under a second."""

from __future__ import annotations

import time

import pytest

import tests.apps.onboarding  # noqa: F401  (registers the workflow, as the user's import would)
from zart.testing import WorkflowFailed, WorkflowStuck


def test_a_day_long_sleep_and_an_event_wait_in_well_under_a_second(zart_workflows):
    zart_workflows.run(  # the first run in a process connects and prepares; the one measured does not
        "onboarding.welcome",
        {"email": "warm@example.com"},
        events={"email-verified": {"token": "w"}},
        stubs={"create-customer": {"id": 1}},
    )
    started = time.monotonic()
    run = zart_workflows.start("onboarding.welcome", {"email": "ada@example.com"}, stubs={"create-customer": {"id": 7}})
    run.advance()
    assert (run.status, run.waiting_for_event) == ("waiting", "email-verified")
    output = run.send_event("email-verified", {"token": "tk"}).result()
    elapsed = time.monotonic() - started
    assert output == {
        "customer_id": 7,
        "verified": True,
        "token": "tk",
        "regions": ["ready in eu", "ready in us"],
        "hours": pytest.approx(24, abs=0.01),  # the workflow's clock passed the day; the wall clock did not
    }
    assert elapsed < 0.8, elapsed  # about 0.2 s on an idle machine
    assert [step["name"] for step in run.steps()][:4] == ["create-customer", "__now_1", "cool-off", "email-verified"]


def test_an_event_timeout_fires_at_once_and_a_stub_can_be_a_function(zart_workflows):
    reminded: list[str] = []
    output = zart_workflows.run(
        "onboarding.welcome",
        {"email": "bob@example.com"},
        stubs={"create-customer": {"id": 8}, "send-reminder": lambda email: reminded.append(email) or "sent"},
    )
    assert output == {"customer_id": 8, "verified": False, "hours": pytest.approx(26, abs=0.01)}
    assert reminded == ["bob@example.com"]


def test_events_supplied_up_front_are_delivered_when_awaited(zart_workflows):
    output = zart_workflows.run(
        "onboarding.welcome",
        {"email": "cy@example.com"},
        events={"email-verified": {"token": "early"}},
        stubs={"create-customer": {"id": 9}},
    )
    assert output["token"] == "early" and output["hours"] == pytest.approx(24, abs=0.01)


def test_an_unstubbed_step_runs_for_real_and_its_failure_is_reported(zart_workflows):
    run = zart_workflows.start("onboarding.welcome", {"email": "dee@example.com"})
    with pytest.raises(WorkflowFailed, match="would call the CRM"):
        run.result()
    stubbed_failure = zart_workflows.start(
        "onboarding.welcome", {"email": "eve@example.com"}, stubs={"create-customer": ConnectionError("CRM down")}
    )
    with pytest.raises(WorkflowFailed, match="CRM down"):
        stubbed_failure.result()


def test_an_event_wait_without_a_timeout_and_nothing_supplied_is_reported_stuck(zart_workflows):
    run = zart_workflows.start("t.event", {"journal": "/dev/null"}, stubs={"prepare": True})
    with pytest.raises(WorkflowStuck, match="approval"):
        run.result()


def test_stubs_belong_to_their_run(zart_workflows):
    first = zart_workflows.start("onboarding.welcome", {"email": "f@example.com"}, stubs={"create-customer": {"id": 1}})
    second = zart_workflows.start(
        "onboarding.welcome", {"email": "g@example.com"}, stubs={"create-customer": {"id": 2}}
    )
    first.advance()
    second.advance()
    assert first.send_event("email-verified", {"token": "a"}).result()["customer_id"] == 1
    assert second.send_event("email-verified", {"token": "b"}).result()["customer_id"] == 2
