"""The dashboard served by the real app against the session's Postgres: pages, paging, sign-in, scopes, CSRF.

The flows with a worker behind them run in a real browser (test_browser.py); these check what the server
alone decides, quickly.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest

from flask_app import create_app
from zart.admin import AdminService
from zart.service import ZartService

TOKENS = "ops:admin:admin-secret,viewer:read:read-secret,writer:write:write-secret"


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, "the page has no CSRF field"
    return found.group(1)


@pytest.fixture()
def open_client(env):
    return create_app(settings=env.settings()).test_client()


@pytest.fixture()
def secured(env):
    return create_app(settings=env.settings(ZART_API_TOKENS=TOKENS)).test_client()


def sign_in(client, token: str) -> None:
    form = client.get("/ui/sign-in")
    assert form.status_code == 200
    response = client.post("/ui/sign-in", data={"token": token, "csrf": csrf_of(form.text), "next": "/ui/"})
    assert response.status_code == 303, response.text


def schedule(service: ZartService, unique) -> str:
    execution_id = unique("ui")
    service.schedule("t.typed", {"amount": 1}, execution_id=execution_id)
    return execution_id


def schedule_waiting(service: ZartService, unique, log_dir) -> str:
    """An execution that stays active whether or not a worker runs (it waits for an event)."""
    execution_id = unique("ui")
    service.schedule("t.event", {"journal": str(log_dir / f"{execution_id}.journal")}, execution_id=execution_id)
    return execution_id


def test_every_page_renders_with_its_data(open_client, service, unique):
    execution_id = schedule(service, unique)
    overview = open_client.get("/ui/")
    assert overview.status_code == 200
    assert "Executions by status" in overview.text and "<svg" in overview.text
    assert 'id="stranded">Stranded' in overview.text
    listing = open_client.get("/ui/executions?task=t.typed")
    assert execution_id in listing.text
    detail = open_client.get(f"/ui/executions/{execution_id}")
    assert detail.status_code == 200 and execution_id in detail.text and "&#34;amount&#34;: 1" in detail.text
    assert open_client.get("/ui/pauses").status_code == 200
    assert open_client.get(f"/ui/executions/{execution_id}?part=live").text.lstrip().startswith("<div data-final")


def test_security_headers_and_the_session_cookie(open_client):
    response = open_client.get("/ui/")
    assert "default-src 'self'" in response.headers["Content-Security-Policy"]
    assert response.headers["X-Frame-Options"] == "DENY"
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/ui/" in cookie
    assert response.headers["Cache-Control"] == "no-store"  # pages hold live data; assets may be cached
    assert open_client.get("/ui/static/zart-ui.js").headers.get("Cache-Control") != "no-store"


def test_an_exact_id_opens_its_page_and_a_prefix_lists_matches(open_client, service, unique):
    execution_id = schedule(service, unique)
    exact = open_client.get(f"/ui/executions?q={execution_id}")
    assert exact.status_code == 302 and exact.headers["Location"].endswith(f"/ui/executions/{execution_id}")
    prefix = open_client.get(f"/ui/executions?q={execution_id[:-3]}")
    assert prefix.status_code == 200 and execution_id in prefix.text


def test_keyset_pages_walk_every_row_once_in_both_directions(open_client, service, unique):
    prefix = unique("page")
    ids = [f"{prefix}-{i:02d}" for i in range(120)]
    for execution_id in ids:
        service.schedule("t.typed", {"amount": 1}, execution_id=execution_id)
    newest_first = ids[::-1]
    seen, pages, url = [], [], f"/ui/executions?q={prefix}"
    while url:
        html = open_client.get(url).text
        page_ids = re.findall(rf">({prefix}-\d+)</code>", html)
        pages.append((url, page_ids))
        seen += page_ids
        older = re.search(r'rel="next" href="([^"]+)"', html)
        url = older.group(1).replace("&amp;", "&") if older else None
    assert seen == newest_first and [len(p) for _, p in pages] == [50, 50, 20]
    newer = re.search(r'rel="prev" href="([^"]+)"', open_client.get(pages[-1][0]).text)
    assert newer is not None
    back = re.findall(rf">({prefix}-\d+)</code>", open_client.get(newer.group(1).replace("&amp;", "&")).text)
    assert back == pages[1][1]


def test_filters_by_time_range_and_refuses_a_bad_one(open_client, service, unique):
    execution_id = schedule(service, unique)
    now = datetime.now(UTC)
    inside = {"from": (now - timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M"), "q": execution_id[:-1]}
    assert execution_id in open_client.get("/ui/executions", query_string=inside).text
    outside = {"to": (now - timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M"), "q": execution_id[:-1]}
    assert execution_id not in open_client.get("/ui/executions", query_string=outside).text
    bad = open_client.get("/ui/executions?from=yesterday")
    assert bad.status_code == 422 and "date and time" in bad.text
    assert open_client.get("/ui/executions?older=garbage").status_code == 422


def test_a_time_with_an_offset_that_leaves_the_calendar_is_refused_not_a_500(open_client):
    for bound in ("from=0001-01-01T00:00%2B05:00", "to=9999-12-31T23:59-05:00"):
        response = open_client.get(f"/ui/executions?{bound}")
        assert response.status_code == 422 and "out of range" in response.text, bound


def test_unknown_execution_is_a_404_page(open_client):
    response = open_client.get("/ui/executions/no-such-execution")
    assert response.status_code == 404 and "No execution found" in response.text


def test_with_tokens_every_page_asks_to_sign_in_first(secured):
    response = secured.get("/ui/executions?status=failed")
    assert response.status_code == 302 and "/ui/sign-in?next=" in response.headers["Location"]
    assert secured.get("/ui/static/zart-ui.css").status_code == 200


def test_under_a_mount_point_sign_in_returns_to_the_page_asked_for(secured):
    """An app served below a path (SCRIPT_NAME, e.g. a DispatcherMiddleware mount) keeps the deep link."""
    base = "http://localhost/internal"
    asked = secured.get("/ui/executions?status=failed", base_url=base)
    assert asked.status_code == 302
    target = parse_qs(urlsplit(asked.headers["Location"]).query)["next"][0]
    form = secured.get("/ui/sign-in", base_url=base, query_string={"next": target})
    assert 'name="next" value="/internal/ui/executions?status=failed"' in form.text
    response = secured.post(
        "/ui/sign-in", base_url=base, data={"token": "read-secret", "csrf": csrf_of(form.text), "next": target}
    )
    assert response.status_code == 303 and response.headers["Location"] == "/internal/ui/executions?status=failed"


def test_a_wrong_token_is_refused_and_a_right_one_signs_in(secured):
    form = secured.get("/ui/sign-in")
    wrong = secured.post("/ui/sign-in", data={"token": "nope", "csrf": csrf_of(form.text)})
    assert wrong.status_code == 401 and "not valid" in wrong.text
    sign_in(secured, "admin-secret")
    page = secured.get("/ui/")
    assert page.status_code == 200 and "Signed in as <strong>ops</strong>" in page.text


def test_sign_in_never_redirects_to_another_host(secured):
    csrf = csrf_of(secured.get("/ui/sign-in").text)
    for target in ("https://evil.example/", "//evil.example/ui/", "/ui/\\evil", "/ui/\r\nSet-Cookie: a=b"):
        response = secured.post("/ui/sign-in", data={"token": "admin-secret", "csrf": csrf, "next": target})
        assert response.status_code == 303 and response.headers["Location"] == "/ui/", target
        csrf = csrf_of(secured.get("/ui/").text)  # signing in starts a new session with a new token


def test_a_next_target_with_a_line_break_goes_home_rather_than_failing(open_client):
    response = open_client.get("/ui/sign-in?next=/ui/%0d%0aSet-Cookie:%20a=b")
    assert response.status_code == 302 and response.headers["Location"] == "/ui/"


def test_a_read_only_token_sees_no_action_and_the_server_refuses_it(secured, service, unique, log_dir):
    execution_id = schedule_waiting(service, unique, log_dir)
    sign_in(secured, "read-secret")
    detail = secured.get(f"/ui/executions/{execution_id}")
    assert detail.status_code == 200 and "Cancel…" not in detail.text and "Restart…" not in detail.text
    refused = secured.post(f"/ui/executions/{execution_id}/cancel", data={"csrf": csrf_of(detail.text)})
    assert refused.status_code == 403 and "may look but not do this" in refused.text
    assert service.status(execution_id)["status"] in ("pending", "running", "waiting")


def test_a_write_token_may_cancel_but_not_restart(secured, service, unique, log_dir):
    execution_id = schedule_waiting(service, unique, log_dir)
    sign_in(secured, "write-secret")
    detail = secured.get(f"/ui/executions/{execution_id}")
    assert "Cancel…" in detail.text and "Restart…" not in detail.text
    csrf = csrf_of(detail.text)
    assert secured.post(f"/ui/executions/{execution_id}/restart", data={"csrf": csrf}).status_code == 403
    done = secured.post(f"/ui/executions/{execution_id}/cancel", data={"csrf": csrf})
    assert done.status_code == 303
    assert service.status(execution_id)["status"] == "cancelled"
    trail = secured.get(f"/ui/executions/{execution_id}").text
    assert re.search(r"<td>cancel</td><td>writer</td>", trail)


def test_a_post_without_the_session_csrf_token_changes_nothing(open_client, service, unique, log_dir):
    execution_id = schedule_waiting(service, unique, log_dir)
    open_client.get("/ui/")  # the session cookie exists, so only the token is missing or wrong
    for data in ({}, {"csrf": "forged"}):
        response = open_client.post(f"/ui/executions/{execution_id}/cancel", data=data)
        assert response.status_code == 403 and "did not come from this dashboard" in response.text
    assert service.status(execution_id)["status"] in ("pending", "running", "waiting")


def test_a_head_request_acts_on_nothing(open_client, service, unique, log_dir):
    """HEAD is answered like GET and is exempt from the CSRF check: a link previewer's, or a no-cors fetch from
    another site, must not cancel, pause or delete anything."""
    execution_id = schedule_waiting(service, unique, log_dir)
    task = unique("head-task")
    assert open_client.head(f"/ui/executions/{execution_id}/cancel").status_code == 200
    assert open_client.head(f"/ui/executions/{execution_id}/event?event_name=approval").status_code == 200
    assert open_client.head(f"/ui/pauses/new?task={task}&reason=head").status_code == 200
    assert service.status(execution_id)["status"] in ("pending", "running", "waiting")
    admin = AdminService(service)
    assert not [r for r in admin.list_pauses(include_inactive=True) if r["task"] == task]
    rule = admin.create_pause(
        execution_id=None,
        task=task,
        step_pattern=None,
        reason=None,
        expires_at=None,
        applies_to_all=False,
        triggered_by="test",
    )
    for action in ("resume", "delete"):
        assert open_client.head(f"/ui/pauses/{rule['rule_id']}/{action}").status_code == 200
    assert [r["rule_id"] for r in admin.list_pauses() if r["task"] == task] == [rule["rule_id"]]
    admin.delete_pause(rule["rule_id"], "test")


def test_removing_a_token_from_the_configuration_signs_its_sessions_out(env, secured):
    sign_in(secured, "admin-secret")
    cookie = secured.get_cookie("zart_ui", path="/ui/")
    assert cookie is not None
    rotated = create_app(settings=env.settings(ZART_API_TOKENS="viewer:read:read-secret")).test_client()
    rotated.set_cookie("zart_ui", cookie.value, path="/ui/")
    assert rotated.get("/ui/").status_code == 302


def test_an_event_with_invalid_json_is_refused_with_the_reason(open_client, service, unique):
    execution_id = schedule(service, unique)
    form = open_client.get(f"/ui/executions/{execution_id}/event")
    response = open_client.post(
        f"/ui/executions/{execution_id}/event",
        data={"csrf": csrf_of(form.text), "event_name": "approval", "payload": "{not json"},
    )
    assert response.status_code == 422 and "not valid JSON" in response.text


def test_json_nested_too_deeply_for_the_parser_is_refused_with_the_reason(open_client, service, unique):
    """The API refuses such a body as invalid_data; the dashboard's forms did not catch the parser's
    RecursionError and answered with the 500 page."""
    execution_id = schedule(service, unique)
    deep = "[" * 100_000 + "]" * 100_000
    form = open_client.get(f"/ui/executions/{execution_id}/event")
    response = open_client.post(
        f"/ui/executions/{execution_id}/event",
        data={"csrf": csrf_of(form.text), "event_name": "approval", "payload": deep},
    )
    assert response.status_code == 422 and "nested too deeply" in response.text, response.text[:300]
    form = open_client.get(f"/ui/executions/{execution_id}/restart")
    response = open_client.post(
        f"/ui/executions/{execution_id}/restart",
        data={"csrf": csrf_of(form.text), "data": "{\"a\": " + deep + "}", "force": "1"},
    )
    assert response.status_code == 422 and "nested too deeply" in response.text, response.text[:300]
    assert AdminService(service).runs(execution_id)[-1]["run_index"] == 0


def test_the_prefix_is_configurable(env):
    client = create_app(settings=env.settings(ZART_UI_PREFIX="/dash")).test_client()
    assert client.get("/dash/").status_code == 200
    assert client.get("/ui/").status_code == 404
    assert create_app(settings=env.settings(), ui_prefix="ops/ui").test_client().get("/ops/ui/").status_code == 200


def test_a_confirmation_shown_for_an_earlier_run_is_refused(open_client, service, unique, log_dir):
    from zart.admin import AdminService

    execution_id = schedule_waiting(service, unique, log_dir)
    form = open_client.get(f"/ui/executions/{execution_id}/restart")
    assert 'name="run" value="0"' in form.text
    AdminService(service).restart(execution_id, None, True, "someone-else")  # another operator was quicker
    stale = open_client.post(
        f"/ui/executions/{execution_id}/restart", data={"csrf": csrf_of(form.text), "run": "0", "force": "1"}
    )
    assert stale.status_code == 409 and 'class="message error"' in stale.text
    for odd in ("\u00b2", "-1"):  # a superscript two is a digit to str.isdigit, and no number to int()
        refused = open_client.post(
            f"/ui/executions/{execution_id}/restart", data={"csrf": csrf_of(form.text), "run": odd, "force": "1"}
        )
        assert refused.status_code == 422 and "run must be a run index" in refused.text, odd
    assert service.status(execution_id)["run_index"] == 1  # no third run
