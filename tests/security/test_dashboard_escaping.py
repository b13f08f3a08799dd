"""Data an API caller stored (execution input, a pause rule's reason) is shown escaped on every dashboard page
that renders it: nothing a caller sends becomes markup or script in an operator's browser."""

from __future__ import annotations

from flask_app import create_app

HOSTILE = '"><script>alert(1)</script><img src=x onerror=alert(2)>'


def test_hostile_data_is_escaped_on_every_dashboard_page_that_shows_it(env, service, unique, log_dir):
    client = create_app(settings=env.settings()).test_client()
    execution_id = unique("xss")
    service.schedule(
        "t.event", {"journal": str(log_dir / "j"), HOSTILE: HOSTILE, "nested": [HOSTILE]}, execution_id=execution_id
    )
    rule = client.post("/zart/admin/v1/pause", json={"reason": HOSTILE, "task": "t.event"})
    assert rule.status_code == 201, rule.get_json()
    try:
        pages = [
            "/ui/",
            "/ui/executions",
            "/ui/executions?task=t.event",
            f"/ui/executions/{execution_id}",
            f"/ui/executions/{execution_id}?part=live",
            f"/ui/executions/{execution_id}/restart",
            f"/ui/executions/{execution_id}/event",
            f"/ui/executions/{execution_id}/cancel",
            "/ui/pauses?all=1",
        ]
        shown = 0
        for path in pages:
            response = client.get(path)
            assert response.status_code == 200, (path, response.status_code)
            assert "<script>alert" not in response.text and "<img src=x" not in response.text, path
            shown += "&lt;script&gt;alert(1)&lt;/script&gt;" in response.text
        assert shown >= 3, "the hostile value should be shown, escaped, on the detail, restart and pause pages"
    finally:
        client.delete(f"/zart/admin/v1/pause/{rule.get_json()['rule_id']}")
        service.cancel(execution_id)
