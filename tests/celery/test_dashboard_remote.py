"""The dashboard's timeline shows a remote Celery step's task, queue, worker and state."""

from __future__ import annotations

from flask_app import create_app
from tests.celery.test_remote_steps import remote_rows
from tests.integration.test_core import finished, schedule


def test_the_detail_page_names_the_task_queue_and_worker_of_a_remote_step(
    env, service, zart_worker, legacy_worker, log_dir
):
    execution_id, _ = schedule(service, "c.sequence", log_dir)
    assert finished(service, execution_id)["status"] == "completed"
    page = create_app(settings=env.settings()).test_client().get(f"/ui/executions/{execution_id}")
    assert page.status_code == 200
    for row in remote_rows(service, execution_id):
        assert f"<code>{row['task_name']}</code>" in page.text
        assert f"<dd>{row['worker']}</dd>" in page.text and row["queue"] == "legacy"
    assert "<dd>legacy</dd>" in page.text and "succeeded (attempt 1)" in page.text
