"""Chaos: many executions on three workers while a driver SIGKILLs a random worker every few seconds.

ZART_CHAOS_EXECUTIONS sets the size: 200 in the everyday suite, 500 for `make reliability`, 5,000 for
`make reliability-long`.
"""

from __future__ import annotations

import json
import os
import random
import time

import pytest
from sqlalchemy import text

from tests.reliability.journal import audit
from tests.reliability_workflows import expected_chaos_result
from zart.errors import NotWaitingForEvent
from zart.store import db

EXECUTIONS = int(os.environ.get("ZART_CHAOS_EXECUTIONS", "200"))
KILL_EVERY = (2.0, 4.0)
BUDGET_SECONDS = 120 + EXECUTIONS * 0.12


def _count(database_url: str, prefix: str) -> dict[str, int]:
    with db.autocommit(database_url) as conn:
        rows = conn.execute(
            text("SELECT status, count(*) FROM executions WHERE id LIKE :p AND task = 'r.chaos' GROUP BY status"),
            {"p": prefix + "%"},
        )
        return {status: n for status, n in rows}


def _waiting_for_go(database_url: str, prefix: str) -> list[str]:
    with db.autocommit(database_url) as conn:
        rows = conn.execute(
            text("SELECT id FROM executions WHERE id LIKE :p AND status = 'waiting' AND waiting_for_event = 'go'"),
            {"p": prefix + "%"},
        )
        return [row[0] for row in rows]


@pytest.mark.timeout(BUDGET_SECONDS + 180)
def test_chaos_kills_lose_nothing_and_repeat_no_completed_step(env, service, start_worker, log_dir, unique):
    url = service.settings.database_url
    prefix = unique("chaos") + "-"
    journal = log_dir / "bodies.journal"
    workers = [start_worker(concurrency=2) for _ in range(3)]
    keys = {}
    for i in range(EXECUTIONS):
        execution_id = f"{prefix}{i}"
        keys[execution_id] = random.randint(1, 1000)
        service.schedule("r.chaos", {"journal": str(journal), "n": i, "nap": 0.5}, execution_id=execution_id)

    kills: list[float] = []
    started = time.monotonic()
    next_kill = time.monotonic() + random.uniform(*KILL_EVERY)
    events_sent = 0
    while _count(url, prefix).get("completed", 0) < EXECUTIONS:
        assert time.monotonic() - started < BUDGET_SECONDS, f"chaos run stalled: {_count(url, prefix)}"
        for execution_id in _waiting_for_go(url, prefix):
            try:
                service.send_event(execution_id, "go", {"k": keys[execution_id]})
                events_sent += 1
            except NotWaitingForEvent:
                pass  # woken meanwhile (e.g. recovered); it will park again and be sent the event next round
        if time.monotonic() >= next_kill:
            victim = random.choice([w for w in workers if w.process.poll() is None])
            victim.kill()
            kills.append(time.time())
            workers.remove(victim)
            workers.append(start_worker(concurrency=2, ready=False))
            next_kill = time.monotonic() + random.uniform(*KILL_EVERY)
        time.sleep(0.1)  # the driver's pace between rounds, not a synchronisation
    elapsed = time.monotonic() - started

    counts = _count(url, prefix)
    assert counts == {"completed": EXECUTIONS}
    for execution_id, k in keys.items():
        row = service.status(execution_id)
        assert row["output"] == {"result": expected_chaos_result(int(execution_id.rsplit("-", 1)[1]), k)}
    result = audit(journal, url, prefix, kills)
    assert result.runs_after_checkpoint == [], result.runs_after_checkpoint[:5]
    assert kills, "the run finished before any worker was killed; it proved nothing"
    report = {
        "executions": EXECUTIONS,
        "child_executions": EXECUTIONS * 2,
        "seconds": round(elapsed, 1),
        "kills": len(kills),
        "events_delivered": events_sent,
        **result.summary(),
    }
    print("\nchaos report: " + json.dumps(report))
    if os.environ.get("ZART_RELIABILITY_REPORT"):
        with open(os.environ["ZART_RELIABILITY_REPORT"], "a") as handle:
            handle.write(json.dumps({"chaos": report}) + "\n")
