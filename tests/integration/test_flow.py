"""Flow control observed on real workers: what ran when (from the bodies' journal), not what was configured."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import text
from zart.flow.admin import FlowAdmin

from tests.flow_workflows import overlap, starts
from tests.harness import poll
from zart.service import ZartService
from zart.store import db


def limit_row(service: ZartService, name: str) -> dict[str, Any]:
    with db.autocommit(service.settings.database_url) as conn:
        return dict(conn.execute(text("SELECT * FROM flow_limits WHERE name = :n"), {"n": name}).one()._mapping)


def all_finished(service: ZartService, ids: list[str], timeout: float = 60) -> list[dict[str, Any]]:
    rows = []
    for execution_id in ids:
        done, row = service.wait(execution_id, timeout)
        assert done, f"{execution_id} did not finish: {row['status']}"
        rows.append(row)
    return rows


def test_global_concurrency_holds_across_three_workers(service, start_worker, log_dir):
    for _ in range(3):
        start_worker(concurrency=4)
    journal = log_dir / "limited.journal"
    ids = [
        service.schedule("flow.limited", {"journal": str(journal), "seconds": 0.02}).execution["execution_id"]
        for _ in range(200)
    ]
    rows = all_finished(service, ids, timeout=120)
    assert {row["status"] for row in rows} == {"completed"}
    assert len(starts(journal)) == 200
    assert overlap(journal) == 2  # never more than the limit, and the limit was used
    poll(lambda: limit_row(service, "flow.limited")["running"] == 0, what="every slot given back")


def test_a_slot_held_by_a_killed_worker_is_freed_when_its_lease_expires(service, start_worker, log_dir):
    worker = start_worker()
    journal, release = log_dir / "one.journal", log_dir / "release"
    first = service.schedule("flow.one-slot", {"journal": str(journal), "release": str(release)})
    first_id = first.execution["execution_id"]
    poll(lambda: service.status(first_id)["current_step"] == "block", what="the first to hold the slot")
    second_id = service.schedule("flow.one-slot", {"journal": str(journal)}).execution["execution_id"]
    held = poll(lambda: service.holding_limit(second_id), what="the second to be held by the limit")
    assert (held["limit_name"], held["reason"]) == ("flow.one-slot", "concurrency")
    assert service.status(second_id)["status"] == "pending"
    worker.kill()
    assert limit_row(service, "flow.one-slot")["running"] == 1  # still held by the dead worker's lease
    release.touch()
    start_worker()
    all_finished(service, [first_id, second_id], timeout=30)
    assert overlap(journal) == 1
    poll(lambda: limit_row(service, "flow.one-slot")["running"] == 0, what="the slot to be given back")


def test_a_runtime_limit_change_takes_effect_within_a_second(service, start_worker, log_dir):
    start_worker(concurrency=4)
    admin = FlowAdmin(service)
    admin.update("flow.runtime", {"concurrency": 1}, "test")
    journal = log_dir / "runtime.journal"
    ids = [
        service.schedule("flow.runtime", {"journal": str(journal), "seconds": 0.3}).execution["execution_id"]
        for _ in range(8)
    ]
    poll(lambda: len(starts(journal)) >= 2, what="two executions to start one at a time")
    raised_at = time.time()
    admin.update("flow.runtime", {"concurrency": 4}, "test")
    all_finished(service, ids)
    assert overlap(journal) >= 3
    second_wave = [stamp for stamp, _ in starts(journal) if stamp > raised_at]
    assert second_wave and second_wave[0] - raised_at < 1.0
    admin.update("flow.runtime", {"concurrency": 4}, "test")


def test_priority_orders_a_backlog_and_fifo_within_a_priority(service, start_worker, log_dir):
    start_worker(concurrency=4)
    journal, release = log_dir / "priority.journal", log_dir / "release"
    blocker = service.schedule("flow.priority", {"journal": str(journal), "release": str(release)})
    blocker_id = blocker.execution["execution_id"]
    poll(lambda: service.status(blocker_id)["current_step"] == "block", what="the blocker to hold the slot")
    order = [0, 5, 0, 10, 5, -1, 10]
    ids = [
        service.schedule("flow.priority", {"journal": str(journal), "n": n}, priority=p).execution["execution_id"]
        for n, p in enumerate(order)
    ]
    poll(lambda: all(service.holding_limit(i) for i in ids), what="the backlog to be held")
    release.touch()
    all_finished(service, [blocker_id, *ids])
    started = [execution_id for _, execution_id in starts(journal) if execution_id != blocker_id]
    expected = [ids[n] for n in sorted(range(len(order)), key=lambda n: (-order[n], n))]
    assert started == expected
