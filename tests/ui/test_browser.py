"""The dashboard in headless Chromium against a real server, worker, Postgres and Redis.

Each test drives what an operator does (watch, deliver, cancel, retry, rerun, pause, sign in) and checks the
result both on the page and in the store; the `visit` fixture fails any test whose page asked another host.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.harness import poll
from tests.reliability.journal import body_runs
from tests.ui.conftest import PHONE

expect = pytest.importorskip("playwright.sync_api").expect
LIVE = 20_000  # ms a live page may take to show a change made behind it


@pytest.fixture(autouse=True)
def _worker(ui_worker):
    return ui_worker


def wait_status(service, execution_id: str, status: str) -> dict:
    return poll(lambda: (row := service.status(execution_id))["status"] == status and row, 30, what=status)


def journal_input(log_dir: Path, name: str) -> dict:
    return {"journal": str(log_dir / f"{name}.journal")}


def test_watch_an_execution_complete_live_then_browse_to_it(visit, server, service, log_dir, unique):
    release = log_dir / "release"
    execution_id = unique("live")
    service.schedule("t.blocking", {**journal_input(log_dir, "b"), "release": str(release)}, execution_id=execution_id)
    tab = visit(server)
    tab.go(f"/ui/executions/{execution_id}")
    status = tab.page.locator("#exec-status")
    expect(status).to_contain_text("running", timeout=LIVE)
    expect(tab.page.locator("#step-0")).to_contain_text("completed", timeout=LIVE)
    tab.shot("detail-running")
    release.touch()
    expect(status).to_contain_text("completed", timeout=LIVE)  # no reload: the page polled itself
    expect(tab.page.locator("#live-state")).to_contain_text("live updates stopped")
    expect(tab.page.locator("pre.json").nth(1)).to_contain_text('"out": "ABC"')
    tab.shot("detail")

    tab.go("/ui/")
    expect(tab.page.locator("figure.chart figcaption")).to_contain_text("completed")
    tab.go("/ui/executions")
    tab.page.get_by_label("ID (exact, or the start of one)").fill(execution_id)
    tab.page.get_by_role("button", name="Filter").click()
    expect(tab.page.locator("h1")).to_contain_text(execution_id)
    tab.go("/ui/executions?task=t.blocking")
    expect(tab.page.locator("table.list")).to_contain_text(execution_id)
    tab.shot("executions")


def test_deliver_an_event_with_a_checked_json_payload(visit, server, service, log_dir, unique):
    execution_id = unique("event")
    service.schedule("t.event", journal_input(log_dir, "e"), execution_id=execution_id)
    wait_status(service, execution_id, "waiting")
    tab = visit(server)
    tab.go(f"/ui/executions/{execution_id}")
    tab.page.get_by_role("link", name="Deliver event…").click()
    payload = tab.page.get_by_label("Payload (JSON)")
    payload.fill('{"approved": tru')
    expect(tab.page.locator("#payload-check")).to_contain_text("Not valid JSON")
    tab.page.get_by_role("button", name="Deliver the event").click()  # the script keeps the form back
    assert service.status(execution_id)["status"] == "waiting"
    tab.shot("event-invalid")
    payload.fill('{"approved": true}')
    expect(tab.page.locator("#payload-check")).to_contain_text("Valid JSON")
    tab.page.get_by_role("button", name="Deliver the event").click()
    expect(tab.page.locator(".message.ok")).to_contain_text("Event delivered")
    expect(tab.page.locator("#exec-status")).to_contain_text("completed", timeout=LIVE)
    assert service.status(execution_id)["output"] == {"payload": {"approved": True}}
    expect(tab.page.locator("#events-h + table")).to_contain_text("approval")
    expect(tab.page.locator("#audit-h + table")).to_contain_text("ui")


def test_cancel_after_a_confirmation(visit, server, service, log_dir, unique):
    execution_id = unique("cancel")
    service.schedule("t.event", journal_input(log_dir, "c"), execution_id=execution_id)
    wait_status(service, execution_id, "waiting")
    tab = visit(server)
    tab.go(f"/ui/executions/{execution_id}")
    tab.page.get_by_role("link", name="Cancel…").click()
    expect(tab.page.locator("h1")).to_contain_text("Cancel this execution?")
    tab.shot("cancel-confirm")
    assert service.status(execution_id)["status"] == "waiting"  # the confirmation page changes nothing
    tab.page.get_by_role("button", name="Cancel the execution").click()
    expect(tab.page.locator("#exec-status")).to_contain_text("cancelled")
    assert service.status(execution_id)["status"] == "cancelled"
    expect(tab.page.locator("#audit-h + table")).to_contain_text("cancel")


def test_retry_a_dead_step(visit, server, service, log_dir, unique):
    journal, flag = log_dir / "dead.journal", log_dir / "flag"
    execution_id = unique("dead")
    service.schedule("a.dead-step", {"journal": str(journal), "flag": str(flag)}, execution_id=execution_id)
    wait_status(service, execution_id, "failed")
    tab = visit(server)
    tab.go(f"/ui/executions/{execution_id}")
    retry = tab.page.get_by_role("link", name="Retry…")
    expect(retry).to_have_count(1)  # only the dead step offers it
    retry.click()
    expect(tab.page.locator("h1")).to_contain_text("Retry step b?")
    tab.shot("retry-confirm")
    flag.touch()
    tab.page.get_by_role("button", name="Retry the step").click()
    expect(tab.page.locator("#exec-status")).to_contain_text("completed", timeout=LIVE)
    runs = [run.step for run in body_runs(journal) if run.execution_id == execution_id]
    assert runs.count("a") == 1 and runs.count("c") == 1  # the step before the dead one was not run again
    tab.page.locator("#step-1 summary").click()
    expect(tab.page.locator("#step-1 table.attempts")).to_contain_text("dependency unavailable")
    tab.shot("detail-retried")


def test_rerun_shows_what_runs_again_before_it_runs(visit, server, service, log_dir, unique):
    journal = log_dir / "echo.journal"
    execution_id = unique("rerun")
    service.schedule("a.echo", {"journal": str(journal), "value": 1}, execution_id=execution_id)
    wait_status(service, execution_id, "completed")
    tab = visit(server)
    tab.go(f"/ui/executions/{execution_id}")
    tab.page.get_by_role("link", name="Rerun from a step…").click()
    tab.page.get_by_label("run y again").check()
    tab.page.get_by_role("button", name="Preview").click()
    assert tab.page.locator("#plan-run li").all_inner_texts() == ["↻ y", "↻ z"]
    assert tab.page.locator("#plan-keep li").all_inner_texts() == ["✓ x"]
    tab.shot("rerun-preview")
    assert service.status(execution_id)["run_index"] == 0  # the preview changed nothing
    tab.page.get_by_role("button", name="Start the rerun").click()
    expect(tab.page.locator(".message.ok")).to_contain_text("new run")
    expect(tab.page.locator("#exec-status")).to_contain_text("completed", timeout=LIVE)
    assert service.status(execution_id)["run_index"] == 1
    runs = [run.step for run in body_runs(journal) if run.execution_id == execution_id]
    assert (runs.count("x"), runs.count("y"), runs.count("z")) == (1, 2, 2)
    expect(tab.page.locator("#audit-h + table")).to_contain_text("selective_rerun")


def test_create_and_resume_a_pause_rule(visit, server, service, log_dir, unique):
    execution_id = unique("held")
    tab = visit(server)
    tab.go("/ui/pauses")
    tab.page.get_by_role("link", name="New pause rule…").click()
    tab.page.get_by_label("Execution ID").fill(execution_id)
    tab.page.get_by_label("Reason").fill("investigating INC-42")
    tab.shot("pause-new")
    tab.page.get_by_role("button", name="Create the rule").click()
    expect(tab.page.locator(".message.ok")).to_contain_text("Pause rule created")
    tab.shot("pauses")
    service.schedule("a.echo", {**journal_input(log_dir, "p"), "value": 1}, execution_id=execution_id)
    tab.go(f"/ui/executions/{execution_id}")
    expect(tab.page.locator(".facts")).to_contain_text("investigating INC-42", timeout=LIVE)
    assert service.status(execution_id)["status"] in ("pending", "waiting")
    tab.go("/ui/pauses")
    row = tab.page.locator("tr", has_text=execution_id)
    row.get_by_role("link", name="Resume…").click()
    tab.page.get_by_role("button", name="Resume the rule").click()
    expect(tab.page.locator(".message.ok")).to_contain_text("resumed")
    wait_status(service, execution_id, "completed")


def test_sign_in_then_a_read_only_token_is_refused_an_action(visit, secured_server, service, unique):
    execution_id = unique("ro")
    service.schedule("t.typed", {"amount": 2}, execution_id=execution_id)
    wait_status(service, execution_id, "completed")
    tab = visit(secured_server)
    tab.go(f"/ui/executions/{execution_id}")
    expect(tab.page.locator("h1")).to_have_text("Sign in")
    tab.page.get_by_label("API token").fill("wrong")
    tab.page.get_by_role("button", name="Sign in").click()
    expect(tab.page.locator(".message.error")).to_contain_text("not valid")
    tab.page.get_by_label("API token").fill("read-secret")
    tab.shot("sign-in")
    tab.page.get_by_role("button", name="Sign in").click()
    expect(tab.page.locator("h1")).to_contain_text(execution_id)  # back where it was going
    expect(tab.page.locator(".who")).to_contain_text("viewer (read)")
    expect(tab.page.locator("nav.actions")).to_have_count(0)
    response = tab.go(f"/ui/executions/{execution_id}/restart")
    assert response.status == 403
    expect(tab.page.locator(".message.error")).to_contain_text("may look but not do this")
    tab.shot("read-only-refused")
    assert service.status(execution_id)["run_index"] == 0


def test_a_form_with_a_forged_csrf_token_is_refused(visit, server, service, log_dir, unique):
    execution_id = unique("csrf")
    service.schedule("t.event", journal_input(log_dir, "f"), execution_id=execution_id)
    wait_status(service, execution_id, "waiting")
    tab = visit(server)
    tab.go(f"/ui/executions/{execution_id}/cancel")
    tab.page.locator("input[name=csrf]").evaluate("field => field.value = 'forged'")
    tab.page.get_by_role("button", name="Cancel the execution").click()
    expect(tab.page.locator(".message.error")).to_contain_text("did not come from this dashboard")
    tab.shot("csrf-refused")
    assert service.status(execution_id)["status"] == "waiting"


def test_keyboard_and_phone_width(visit, server, service, log_dir, unique):
    execution_id = unique("phone")
    service.schedule("t.many-steps", {"steps": 12}, execution_id=execution_id)
    wait_status(service, execution_id, "completed")
    tab = visit(server, viewport=PHONE)
    for path, name in ((f"/ui/executions/{execution_id}", "detail-phone"), ("/ui/", "overview-phone")):
        tab.go(path)
        overflow = tab.page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"{path} scrolls sideways on a phone by {overflow}px"
        tab.shot(name)
    tab.page.keyboard.press("Tab")
    assert tab.page.evaluate("document.activeElement.textContent") == "Skip to content"
    tab.page.keyboard.press("Enter")
    assert tab.page.evaluate("document.activeElement.id") == "main"
    title = tab.page.locator("time").first.get_attribute("title")
    assert title is not None and "your time" in title  # UTC on the page, local time on hover

    desktop = visit(server)  # last in the file: the overview with every earlier test's executions
    desktop.go("/ui/")
    expect(desktop.page.locator("ul.counts")).to_contain_text("failed")
    desktop.shot("overview")
