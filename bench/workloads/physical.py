"""The physical limit: how many single-row INSERT+COMMITs per second Python gets from this Postgres.

Every zart step is one commit, so this is the floor the step overhead is compared with.
"""

from __future__ import annotations

import threading
import time

import psycopg

from bench.context import BenchContext
from bench.report import Row, ms, per_second, times

DATABASE = "bench_raw"


def commits_per_second(libpq_url: str, connections: int, seconds: float) -> float:
    """Autocommit single-row INSERTs from `connections` threads (one connection each) for `seconds`."""
    with psycopg.connect(libpq_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS commits (id bigserial PRIMARY KEY, payload text NOT NULL)")
    counts = [0] * connections
    start = threading.Barrier(connections + 1)
    stop = threading.Event()

    def insert(slot: int) -> None:
        with psycopg.connect(libpq_url, autocommit=True) as conn:
            start.wait()
            while not stop.is_set():
                conn.execute("INSERT INTO commits (payload) VALUES (%s)", ("x",))
                counts[slot] += 1

    threads = [threading.Thread(target=insert, args=(i,), daemon=True) for i in range(connections)]
    for thread in threads:
        thread.start()
    start.wait()
    began = time.perf_counter()
    time.sleep(seconds)
    stop.set()
    for thread in threads:
        thread.join()
    return sum(counts) / (time.perf_counter() - began)


def run(ctx: BenchContext) -> list[Row]:
    url = ctx.services.database(DATABASE)
    seconds = ctx.size(3.0, 1.0)
    one = commits_per_second(url, 1, seconds)
    eight = commits_per_second(url, 8, seconds)
    ctx.note(f"Physical limit: single-row autocommit INSERTs from Python (psycopg), {seconds:.0f} s per figure.")
    return [
        Row("physical limit", "INSERT+COMMIT, 1 connection", f"{per_second(one)} ({ms(1000 / one)} each)"),
        Row(
            "physical limit",
            "INSERT+COMMIT, 8 connections",
            per_second(eight),
            f"1 connection {per_second(one)}",
            times(eight / one),
        ),
    ]
