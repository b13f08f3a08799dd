"""The fleet sweeps once per interval whatever its size: a sweeper first takes the fleet's turn, and only the
taker runs the duties (before, every worker ran every duty every interval)."""

from __future__ import annotations

import time

from sqlalchemy import text

from tests.harness import fresh_database, poll
from tests.integration.test_observability import scrape
from zart.localservices import LocalPostgres, free_port
from zart.migrate import upgrade
from zart.store import db, sweeps

INTERVAL = 0.2
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


def test_three_idle_workers_sweep_about_once_per_interval_between_them(start_worker) -> None:
    ports = [free_port() for _ in range(3)]
    for port in ports:
        start_worker(concurrency=1, ZART_SWEEP_INTERVAL=str(INTERVAL), ZART_METRICS_PORT=str(port))

    def swept() -> float:
        return sum(scrape(port).get("zart_sweep_duration_seconds_count", 0.0) for port in ports)

    poll(swept, timeout=30, what="a first sweep")
    before, started = swept(), time.monotonic()
    time.sleep(WINDOW)  # a rate over a window, not a wait for a condition
    passes, elapsed = swept() - before, time.monotonic() - started
    # one fleet, one cadence: three workers each sweeping would make about three times as many passes
    assert passes <= elapsed / (INTERVAL * 0.9) + 2, passes
    assert passes >= elapsed / (3 * INTERVAL), passes  # and the fleet still sweeps
