"""A run keeps its claim for a short hold after dispatching a remote step, listening for the outcome: a quick
result is taken up by the same run (no doorbell, claim or replay); a hold that runs out parks the run as
before; a zart worker killed while holding loses nothing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.celery.test_remote_steps import remote_rows
from tests.harness import poll
from tests.integration.test_core import finished, query, schedule
from tests.workflows import entries


def traced_zart(start_zart: Any, log_dir: Path, hold: str) -> Path:
    """A zart worker that writes its spans to a file: one `zart.run` span per claimed run of an execution."""
    spans = log_dir / f"spans-{hold}.jsonl"
    start_zart(ZART_REMOTE_HOLD=hold, OTEL_TRACES_EXPORTER="zart_jsonl", ZART_TRACES_FILE=str(spans))
    return spans


def claims(spans: Path, execution_id: str) -> int:
    """How many times the execution was claimed and run, once its last run's span is written."""

    def runs() -> list[dict[str, Any]] | None:
        lines = spans.read_text().splitlines() if spans.exists() else []
        found = [s for s in map(json.loads, lines)
                 if s["name"].startswith("zart.run ") and s["attributes"].get("zart.execution_id") == execution_id]
        return found if any(s["attributes"].get("zart.outcome") == "completed" for s in found) else None

    return len(poll(runs, what="the last run's span"))


@pytest.mark.parametrize(("hold", "runs"), [("5", 1), ("0", 3)])
def test_a_quick_result_is_taken_up_by_the_run_holding_its_claim(
    service, start_zart, legacy_worker, log_dir, hold, runs
):
    """Two remote steps in a row: held, one claim runs both; without a hold, each result wakes a new claim."""
    spans = traced_zart(start_zart, log_dir, hold)
    execution_id, journal = schedule(service, "c.sequence", log_dir)
    assert finished(service, execution_id)["output"] == {"a": 3, "b": 30}
    assert entries(journal, "add") == 1 and entries(journal, "multiply") == 1
    assert claims(spans, execution_id) == runs
    assert [r["state"] for r in remote_rows(service, execution_id)] == ["succeeded", "succeeded"]


def test_a_result_too_large_for_the_notification_is_read_back(service, start_zart, legacy_worker, log_dir):
    """A small result comes with its notification; one larger than a notification can carry is read from the
    table. Both are taken up by the run that holds its claim."""
    spans = traced_zart(start_zart, log_dir, "5")
    release = log_dir / "release"
    release.touch()
    execution_id, _ = schedule(service, "c.small-and-large-results", log_dir, release=str(release), size=9000)
    assert finished(service, execution_id)["output"] == ["s", 9000, True]
    assert claims(spans, execution_id) == 1


def test_a_hold_that_runs_out_parks_the_run_and_frees_its_slot(service, start_zart, legacy_worker, log_dir):
    start_zart(concurrency=1, ZART_REMOTE_HOLD="0.5")
    release = log_dir / "release"
    execution_id, journal = schedule(service, "c.blocking", log_dir, release=str(release))
    poll(lambda: entries(journal, "wait") == 1, what="the remote task to begin")
    poll(lambda: service.status(execution_id)["status"] == "waiting", what="the run to park after its hold")
    other_id, other_journal = schedule(service, "c.sequence", log_dir)  # the only slot is free again
    assert finished(service, other_id)["output"] == {"a": 3, "b": 30}
    assert entries(journal, "wait-end") == 0
    release.touch()
    assert finished(service, execution_id)["output"] == {"value": "released", "after": 4}


def test_a_zart_worker_killed_while_holding_loses_nothing(service, start_zart, legacy_worker, log_dir):
    """The result is recorded while nobody holds the run any more; the lease runs out, another worker claims
    the run and takes the recorded result up: the task body ran once, each checkpoint was written once."""
    holder = start_zart(ZART_REMOTE_HOLD="60")
    release = log_dir / "release"
    execution_id, journal = schedule(service, "c.blocking", log_dir, release=str(release))
    poll(lambda: entries(journal, "wait") == 1, what="the remote task to begin")
    assert service.status(execution_id)["status"] == "running"  # held, not parked
    holder.kill()
    release.touch()
    poll(lambda: [r["state"] for r in remote_rows(service, execution_id)] == ["succeeded"],
         what="the fleet to record the result while nobody holds the run")
    start_zart(ZART_REMOTE_HOLD="60")
    assert finished(service, execution_id)["output"] == {"value": "released", "after": 4}
    assert entries(journal, "wait") == 1 and entries(journal, "add") == 1
    counts = query(service, "SELECT name, count(*) AS n FROM steps WHERE execution_id = :id GROUP BY name "
                   "ORDER BY name", id=execution_id)
    assert counts == [{"name": "after", "n": 1}, {"name": "wait", "n": 1}]
