"""Flow control observed on real workers: what ran when (from the bodies' journal), not what was configured."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from sqlalchemy import text

from tests.flow_workflows import overlap, starts
from tests.harness import poll
from zart.flow_admin import FlowAdmin
from zart.service import ZartService
from zart.store import db, executions
from zart.store import flow as flow_store


def limit_running(service: ZartService, name: str) -> int:
    """The slots of a limit held now, as an operator sees them (counted from the executions holding them)."""
    return int(FlowAdmin(service).get(name)["running"])


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
    poll(lambda: limit_running(service, "flow.limited") == 0, what="every slot given back")


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
    assert limit_running(service, "flow.one-slot") == 1  # still held by the dead worker's lease
    release.touch()
    start_worker()
    all_finished(service, [first_id, second_id], timeout=30)
    assert overlap(journal) == 1
    poll(lambda: limit_running(service, "flow.one-slot") == 0, what="the slot to be given back")


def test_a_runtime_limit_change_takes_effect_within_a_second(service, shared_worker, log_dir):
    shared_worker(concurrency=4)
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


def test_priority_orders_a_backlog_and_fifo_within_a_priority(service, shared_worker, log_dir):
    shared_worker(concurrency=4)
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


def test_per_key_concurrency_one_per_key_while_other_keys_proceed(service, start_worker, log_dir):
    start_worker(concurrency=4)
    start_worker(concurrency=4)
    journal = log_dir / "keyed.journal"
    ids = [
        service.schedule(
            "flow.keyed", {"journal": str(journal), "seconds": 0.02, "customer": {"id": f"c{key}"}}
        ).execution["execution_id"]
        for _ in range(10)
        for key in range(20)
    ]
    assert {row["status"] for row in all_finished(service, ids, timeout=120)} == {"completed"}
    per_key = overlap(journal, by_key=True)
    assert len(per_key) == 20 and set(per_key.values()) == {1}  # never two of one key at once
    every_key = [line.split(" ") for line in journal.read_text().splitlines()]
    across = overlap_across_keys(every_key)
    assert across >= 3  # other keys ran meanwhile


def overlap_across_keys(lines: list[list[str]]) -> int:
    events = sorted((float(stamp), 1 if phase == "start" else -1) for phase, _, stamp, _ in lines)
    running = most = 0
    for _, delta in sorted(events):
        running += delta
        most = max(most, running)
    return most


def test_a_key_missing_from_the_input_is_refused(service):
    from zart.errors import InvalidData

    try:
        service.schedule("flow.keyed", {"journal": "/dev/null", "customer": {"name": "no id"}})
    except InvalidData as refused:
        assert "customer.id" in refused.message
    else:
        raise AssertionError("an input without the concurrency key was accepted")


def test_rate_limit_starts_stay_within_rate_plus_burst(service, shared_worker, log_dir):
    shared_worker(concurrency=4)
    journal = log_dir / "rated.journal"
    ids = [service.schedule("flow.rated", {"journal": str(journal)}).execution["execution_id"] for _ in range(50)]
    all_finished(service, ids, timeout=60)
    stamps = [stamp for stamp, _ in starts(journal)]
    assert len(stamps) == 50
    # a token bucket of 10/s with a burst of 2 admits at most 2 + 10 T in any T seconds; a body starts a few
    # milliseconds after its admission, and that jitter may move one start into a window
    for i, first in enumerate(stamps):
        for window in (0.5, 1.0, 2.0):
            inside = sum(1 for stamp in stamps[i:] if stamp - first <= window)
            assert inside <= 2 + 10 * window + 1, (window, inside)
    assert stamps[-1] - stamps[0] >= (50 - 2) / 10 - 0.05
    assert stamps[-1] - stamps[0] < 9  # and it kept going at about the rate


def test_a_queue_pause_holds_every_task_of_the_queue_until_resumed(service, shared_worker, log_dir):
    shared_worker(concurrency=4)  # the one the other tests here share
    admin = FlowAdmin(service)
    admin.pause("flow.shared", "test")
    journal = log_dir / "shared.journal"
    try:
        ids = [service.schedule("flow.queue-a", {"journal": str(journal)}).execution["execution_id"] for _ in range(3)]
        held = poll(lambda: all(service.holding_limit(i) for i in ids) and service.holding_limit(ids[0]))
        assert held["reason"] == "paused"
        time.sleep(1.0)  # a pause is the absence of starts: give a wrongly admitted one time to show
        assert not starts(journal)
        assert {service.status(i)["status"] for i in ids} == {"pending"}
    finally:
        admin.resume("flow.shared", "test")
    all_finished(service, ids)
    assert len(starts(journal)) == 3


def blocking(service: ZartService, task: str, log_dir: Path) -> tuple[str, dict[str, Any], Path]:
    """Start an execution of `task` for customer acme that blocks until the returned file exists."""
    release = log_dir / "release"
    data = {"journal": str(log_dir / "blocks.journal"), "release": str(release), "customer_id": "acme"}
    first = service.schedule(task, data).execution["execution_id"]
    poll(lambda: service.status(first)["current_step"] == "block", what="the first to run")
    return first, data, release


def test_cancel_newest_cancels_the_newcomer_while_the_key_is_busy(service, shared_worker, log_dir):
    shared_worker(concurrency=4)
    first, data, release = blocking(service, "flow.newest", log_dir)
    second = service.schedule("flow.newest", data).execution["execution_id"]
    other = service.schedule("flow.newest", {**data, "customer_id": "globex"}).execution["execution_id"]
    done, row = service.wait(second, 20)
    assert done and row["status"] == "cancelled"
    assert row["error"]["type"] == "ConcurrencyKeyBusy"
    poll(lambda: service.status(other)["current_step"] == "block", what="another key to run meanwhile")
    release.touch()
    assert [r["status"] for r in all_finished(service, [first, other])] == ["completed", "completed"]


def test_cancel_in_progress_lets_the_newest_of_a_key_win(service, shared_worker, log_dir):
    shared_worker(concurrency=4)
    first, data, release = blocking(service, "flow.supersede", log_dir)
    second = service.schedule("flow.supersede", data).execution["execution_id"]
    assert service.status(first)["status"] == "cancelled"
    poll(lambda: service.status(second)["current_step"] == "block", what="the newest to take the key")
    release.touch()
    assert all_finished(service, [second])[0]["status"] == "completed"
    assert service.wait(first, 5)[1]["status"] == "cancelled"


def test_dedup_key_returns_the_active_execution_and_debounce_keeps_the_last_input(service, shared_worker):
    shared_worker(concurrency=4)  # the one the other tests here share
    first = service.schedule("flow.plain", {"v": 1}, dedup_key="reindex-acme", debounce=1.0)
    again = service.schedule("flow.plain", {"v": 2}, dedup_key="reindex-acme", debounce=1.0)
    last = service.schedule("flow.plain", {"v": 3}, dedup_key="reindex-acme", debounce=1.0)
    execution_id = first.execution["execution_id"]
    assert first.created and not again.created and not last.created
    assert again.execution["execution_id"] == last.execution["execution_id"] == execution_id
    done, row = service.wait(execution_id, 20)
    assert done and row["output"] == {"input": {"v": 3}}
    assert (row["started_at"] - row["created_at"]).total_seconds() >= 0.95
    later = service.schedule("flow.plain", {"v": 4}, dedup_key="reindex-acme")
    assert later.created and later.execution["execution_id"] != execution_id  # the first one finished


def test_a_step_rate_limit_is_shared_by_three_workflows(service, shared_worker, log_dir):
    shared_worker(concurrency=4)
    journal = log_dir / "steps.journal"
    ids = [
        service.schedule("flow.step-rated", {"journal": str(journal), "calls": 3}).execution["execution_id"]
        for _ in range(3)
    ]
    parked = poll(
        lambda: any((service.status(i).get("waiting_for") or {}).get("kind") == "rate_limit" for i in ids),
        what="a step to wait durably for its token",
    )
    assert parked
    assert {r["status"] for r in all_finished(service, ids)} == {"completed"}
    stamps = [stamp for stamp, _ in starts(journal)]
    assert len(stamps) == 9
    # 4/s with a burst of 1: at most 1 + 4 T tokens in any T seconds (plus one for the body's start jitter)
    for i, first in enumerate(stamps):
        for window in (0.5, 1.0):
            assert sum(1 for stamp in stamps[i:] if stamp - first <= window) <= 1 + 4 * window + 1
    assert stamps[-1] - stamps[0] >= (9 - 1) / 4 - 0.05


def test_a_held_execution_has_a_live_reason_and_one_whose_limit_vanished_is_repaired(env):
    from tests.harness import assert_nothing_stranded
    from zart.dispatch.duties import Round, repair_stranded
    from zart.registry import Registry
    from zart.store import flow, liveness

    silent = ZartService(env.settings(), publish=lambda _id: True, registry=Registry())  # no worker involved
    with db.autocommit(env.database_url) as conn:
        since = conn.execute(text("SELECT now()")).scalar_one()
    FlowAdmin(silent).update("flow.plain", {"concurrency": 1}, "test")
    first, second = (silent.schedule("flow.plain", {}).execution["execution_id"] for _ in range(2))
    try:
        with db.autocommit(env.database_url) as conn:
            assert flow.claim(conn, first, "token-1", "test", 30)["verdict"] == "claimed"
            assert flow.claim(conn, second, "token-2", "test", 30)["held_reason"] == "concurrency"
        assert_nothing_stranded(env.database_url, since)  # held by a limit that exists: a live reason
        with db.autocommit(env.database_url) as conn:
            conn.execute(text("DELETE FROM flow_limits WHERE name = 'flow.plain'"))
            found = [(r["execution_id"], r["cause"]) for r in liveness.stranded(conn, 500) if r["created_at"] >= since]
            assert found == [(second, "limit_gone")]
        assert second in repair_stranded(env.database_url, Round(env.settings(), None))
        assert_nothing_stranded(env.database_url, since)
        with db.autocommit(env.database_url) as conn:
            assert flow.claim(conn, second, "token-3", "test", 30)["verdict"] == "claimed"  # now unlimited
    finally:
        with db.autocommit(env.database_url) as conn:
            conn.execute(text("DELETE FROM flow_limits WHERE name = 'flow.plain'"))
        for execution_id in (first, second):
            silent.cancel(execution_id)


def test_a_refused_admission_sees_a_slot_whose_release_was_committing(env, unique):
    """The race a finish that skips its hand-on must not lose: the finish looks for held executions (none yet)
    before it commits; an admission then counts the finishing holder and is refused. The refused one's look after
    its own commit must wait for that release, not count the holder and leave itself held for good."""
    limit = unique("flow.race")
    url = env.database_url
    with db.autocommit(url) as conn:
        spec = {"name": limit, "concurrency": 1, "rate": None, "period_seconds": None, "burst": None, "key_path": None,
                "key_concurrency": None, "key_strategy": "wait"}
        flow_store.set_limit(conn, spec, "test")
        for execution_id in (f"{limit}-first", f"{limit}-second"):
            executions.insert_execution(conn, execution_id=execution_id, task="flow.race", data={}, limit_name=limit)
        assert flow_store.claim(conn, f"{limit}-first", "token", "test", 30)["verdict"] == "claimed"

    with db.transaction(url) as finishing:
        done = executions.finish(finishing, f"{limit}-first", status="completed", token="token", output=1)
        assert done is not None and done["limit_holds_some"] is False  # nothing held: no hand-on would follow
        with db.autocommit(url) as conn:
            refused = flow_store.claim(conn, f"{limit}-second", "token-2", "test", 30)
            assert (refused["verdict"], refused["held_reason"]) == ("held", "concurrency")
            assert flow_store.heads(conn, [limit], 10) == []  # a look that counts the committing holder
        with ThreadPoolExecutor(1) as pool:
            look = pool.submit(_look_waiting_for_releases, url, limit)
            poll(lambda: _waiting_for_a_release(url), what="the look to wait for the finishing holder")
            assert not look.done()
            finishing.commit()
            assert [head["id"] for head in look.result(timeout=10)] == [f"{limit}-second"]


def _look_waiting_for_releases(url: str, limit: str) -> list[dict[str, Any]]:
    with db.autocommit(url) as conn:
        return flow_store.heads(conn, [limit], 10, wait_for_releases=True)


def _waiting_for_a_release(url: str) -> bool:
    with db.autocommit(url) as conn:
        query = "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND wait_event = 'advisory'"
        return bool(conn.execute(text(query)).scalar())



def test_executions_a_limit_lets_go_get_their_doorbells_again_soon_if_the_first_is_lost(env, unique):
    """Rows held for a long time and then let go (their limit deleted, or found gone by the stranded check) are
    newly ready: a lost doorbell is published again after ZART_REDISPATCH_AFTER, not after the back-off of a row
    that has gone unclaimed for as long as it was held."""
    from zart.store import liveness, sweeps

    url = env.database_url
    deleted, gone = (_held_for_an_hour(url, unique("flow.let-go")) for _ in range(2))
    try:
        with db.autocommit(url) as conn:
            assert flow_store.delete_limit(conn, deleted[0], 100) == [deleted[1]]  # its publication is lost
            conn.execute(text("DELETE FROM flow_limits WHERE name = :name"), {"name": gone[0]})
            assert liveness.release_from_missing_limit(conn, gone[1]) is True  # so is this one's
        found: set[str] = set()

        def republished() -> bool:
            with db.autocommit(url) as conn:
                found.update(set(sweeps.redispatch_stale(conn, 0.5, 10_000)) & {deleted[1], gone[1]})
            return found == {deleted[1], gone[1]}

        poll(republished, timeout=10, what="both let-go rows to be published again")
    finally:
        silent = ZartService(env.settings(), publish=lambda *_: True)
        for limit, _ in (deleted, gone):
            for execution_id in (f"{limit}-first", f"{limit}-held"):
                silent.cancel(execution_id)


def _held_for_an_hour(url: str, limit: str) -> tuple[str, str]:
    """A limit of one slot, taken, and an execution it has held (unclaimed) for an hour: (the limit, the id)."""
    with db.autocommit(url) as conn:
        spec = {"name": limit, "concurrency": 1, "rate": None, "period_seconds": None, "burst": None, "key_path": None,
                "key_concurrency": None, "key_strategy": "wait"}
        flow_store.set_limit(conn, spec, "test")
        for execution_id in (f"{limit}-first", f"{limit}-held"):
            executions.insert_execution(conn, execution_id=execution_id, task=limit, data={}, limit_name=limit)
        assert flow_store.claim(conn, f"{limit}-first", "token", "test", 30)["verdict"] == "claimed"
        assert flow_store.claim(conn, f"{limit}-held", "token-2", "test", 30)["verdict"] == "held"
        conn.execute(
            text("UPDATE executions SET created_at = created_at - interval '1 hour', updated_at = updated_at - "
                 "interval '1 hour', dispatched_at = dispatched_at - interval '1 hour' WHERE id = :id"),
            {"id": f"{limit}-held"},
        )
    return limit, f"{limit}-held"
