"""The DBOS Transact baseline: the same trivial workflows, run by DBOS in this process on the same server.

DBOS is a library: workflows execute in the launching process (threads), checkpointing each step in its
system database, which here is a separate database on the benchmark's Postgres.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from dbos import DBOS, Queue

QUEUE = "bench"
QUEUE_POLLING_SECONDS = 0.1


@DBOS.step()
def trivial(i: int) -> int:
    return i


@DBOS.workflow()
def steps(n: int) -> int:
    """`n` trivial steps in a row, as bench.workflows.steps."""
    for i in range(n):
        trivial(i)
    return n


@contextmanager
def running_dbos(system_database_url: str) -> Iterator[Queue]:
    """Launch DBOS for the block (returns its benchmark queue) and shut it down afterwards."""
    DBOS(config={"name": "zart-bench", "system_database_url": system_database_url, "log_level": "WARNING"})
    try:
        DBOS.launch()
        yield DBOS.register_queue(QUEUE, polling_interval_sec=QUEUE_POLLING_SECONDS)
    finally:
        DBOS.destroy()
        logging.getLogger("dbos").handlers.clear()


def step_span_ms(system_database_url: str, workflow_id: str) -> tuple[float, int]:
    """Milliseconds from the first step's start to the last step's completion, and the step count."""
    with psycopg.connect(system_database_url) as conn:
        row = conn.execute(
            "SELECT max(completed_at_epoch_ms) - min(started_at_epoch_ms), count(*) "
            "FROM dbos.operation_outputs WHERE workflow_uuid = %s",
            (workflow_id,),
        ).fetchone()
    assert row is not None and row[0] is not None, f"DBOS recorded no steps for {workflow_id}"
    return float(row[0]), int(row[1])
