"""The fleet sweeps once per interval whatever its size: a sweeper first takes the fleet's turn, and only the
taker runs the duties (before, every worker ran every duty every interval); while the taker keeps the turn,
mirrored in the broker, the others do not ask Postgres for it at all."""

from __future__ import annotations

import os
import time

import redis
from sqlalchemy import text

from tests.harness import fresh_database, poll
from tests.integration.test_observability import scrape
from zart.dispatch.sweeper import LEAD_INTERVALS, TURN_SHARE
from zart.localservices import LocalPostgres, free_port
from zart.migrate import upgrade
from zart.store import db, sweeps

INTERVAL = 0.2
FOLLOWER_INTERVAL = 0.5
WINDOW = 3.0


def test_a_turn_is_taken_once_per_interval_and_its_row_comes_back(postgres: LocalPostgres) -> None:
    url = fresh_database(postgres.port, "zart_sweep_turns")
    upgrade(url)
    try:
        with db.autocommit(url) as conn:
            assert sweeps.take_turn(conn, 60) is not None  # never swept: the first sweeper takes it
            assert sweeps.take_turn(conn, 60) is None  # taken less than a minute ago
            assert sweeps.take_turn(conn, 0) is not None
            conn.execute(text("DELETE FROM sweep_turns"))
            assert sweeps.take_turn(conn, 60) is not None  # a lost row is made again, never a fleet that stops
            assert sweeps.take_turn(conn, 60) is None
    finally:
        db.dispose_all()


def _turns_during(url: str, seconds: float) -> int:
    """The fleet's turns taken in a window, read from the turn row itself (a turn is at least 0.9 interval after
    the last, so reading every 20 ms misses none); the turn already taken when the window opens is not counted."""
    seen: set[object] = set()
    deadline = time.monotonic() + seconds
    with db.autocommit(url) as conn:
        while time.monotonic() < deadline:  # a rate over a window, not a wait for a condition
            seen.add(conn.execute(text("SELECT started_at FROM sweep_turns")).scalar())
            time.sleep(0.02)
    return len(seen) - 1


def test_three_idle_workers_sweep_about_once_per_interval_between_them(env, start_worker) -> None:
    ports = [free_port() for _ in range(3)]
    for port in ports:
        start_worker(concurrency=1, ZART_SWEEP_INTERVAL=str(INTERVAL), ZART_METRICS_PORT=str(port))

    def swept() -> float:
        return sum(scrape(port).get("zart_sweep_duration_seconds_count", 0.0) for port in ports)

    before = poll(swept, timeout=30, what="a first sweep")
    turns = _turns_during(env.database_url, WINDOW)
    # one fleet, one cadence: three workers each sweeping would take about three times as many turns
    assert turns <= WINDOW / (INTERVAL * TURN_SHARE) + 1, turns
    assert turns >= WINDOW / (3 * INTERVAL), turns  # and the fleet still sweeps
    assert swept() > before  # the passes the workers report


def _turn_reads(url: str) -> int:
    """How often sweep_turns was read (every ask for the turn reads it; nothing else does), as far as the
    backends have reported their statistics."""
    with db.autocommit(url) as conn:
        conn.execute(text("SELECT pg_stat_clear_snapshot()"))
        value = conn.execute(
            text("SELECT seq_scan + coalesce(idx_scan, 0) FROM pg_stat_user_tables WHERE relname = 'sweep_turns'")
        ).scalar()
    return int(value or 0)


def _reads_per_ask(postgres: LocalPostgres) -> float:
    url = fresh_database(postgres.port, "zart_turn_asks")
    upgrade(url)
    try:
        before = _turn_reads(url)
        with db.autocommit(url) as conn:
            for _ in range(10):
                sweeps.take_turn(conn, 60)
            conn.execute(text("SELECT pg_stat_force_next_flush()"))
        return poll(lambda: (_turn_reads(url) - before) / 10 or None, timeout=15, what="statistics")
    finally:
        db.dispose_all()


def test_followers_do_not_ask_postgres_while_the_taker_keeps_the_turn(postgres, env, start_worker) -> None:
    reads_per_ask = _reads_per_ask(postgres)
    for _ in range(4):  # a longer interval than the other tests': the taker's sweep stays well inside it
        start_worker(concurrency=1, ZART_SWEEP_INTERVAL=str(FOLLOWER_INTERVAL))
    client = redis.Redis.from_url(env.broker_url)
    poll(lambda: client.keys("zart:sweep-lead:*"), timeout=30, what="a sweeper holding the fleet's turn")
    before, started = _turn_reads(env.database_url), time.monotonic()
    time.sleep(2 * WINDOW)  # a rate over a window, not a wait for a condition
    asks = (_turn_reads(env.database_url) - before) / reads_per_ask
    per_interval = asks / ((time.monotonic() - started) / FOLLOWER_INTERVAL)
    # four workers each asking would make about four asks per interval; the taker alone makes about one
    assert per_interval < 2.0, per_interval


def test_when_the_taker_dies_another_worker_takes_the_turn(env, start_worker) -> None:
    ports = [free_port() for _ in range(3)]
    workers = [
        start_worker(concurrency=1, ZART_SWEEP_INTERVAL=str(INTERVAL), ZART_METRICS_PORT=str(port)) for port in ports
    ]
    client = redis.Redis.from_url(env.broker_url)

    def holder_group() -> int | None:
        holders = [client.get(key) for key in client.keys("zart:sweep-lead:*")]
        pids = [int(holder.decode().split(":")[1]) for holder in holders if holder]
        try:
            return os.getpgid(pids[0]) if pids else None
        except ProcessLookupError:
            return None

    group = poll(holder_group, timeout=30, what="a sweeper holding the fleet's turn")
    taker = next(worker for worker in workers if worker.process.pid == group)
    others = [port for worker, port in zip(workers, ports, strict=True) if worker is not taker]
    taker.kill()

    def swept_by_others() -> float:
        return sum(scrape(port).get("zart_sweep_duration_seconds_count", 0.0) for port in others)

    before = swept_by_others()
    # the dead taker's mirror lapses after a few intervals; then a survivor takes the turn and keeps it
    poll(
        lambda: swept_by_others() >= before + 5 or None,
        timeout=LEAD_INTERVALS * INTERVAL + 10,
        what="sweeps by the surviving workers",
    )
