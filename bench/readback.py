"""Reading measurements back from zart's tables: completion counts, step outputs and timestamps.

These are the benchmark's own read-only queries (zart's code path is what is measured, not these).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import psycopg

from bench.measure import wait_until

TERMINAL = ("completed", "failed", "cancelled")
PROBE = 16  # ids read per poll while the newest are still running


class Readback:
    """One autocommit connection to a zart database."""

    def __init__(self, libpq_url: str) -> None:
        self._conn = psycopg.connect(libpq_url, autocommit=True)

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> Readback:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def status(self, execution_id: str) -> str | None:
        row = self._conn.execute("SELECT status FROM executions WHERE id = %s", (execution_id,)).fetchone()
        return None if row is None else str(row[0])

    def finished_count(self, ids: Sequence[str]) -> int:
        row = self._conn.execute(
            "SELECT count(*) FROM executions WHERE id = ANY(%s) AND status = ANY(%s)", (list(ids), list(TERMINAL))
        ).fetchone()
        return int(row[0]) if row else 0

    def failed(self, ids: Sequence[str]) -> list[str]:
        found = self._conn.execute(
            "SELECT id FROM executions WHERE id = ANY(%s) AND status <> 'completed'", (list(ids),)
        ).fetchall()
        return [str(r[0]) for r in found]

    def finished_ids(self, ids: Sequence[str]) -> set[str]:
        found = self._conn.execute(
            "SELECT id FROM executions WHERE id = ANY(%s) AND status = ANY(%s)", (list(ids), list(TERMINAL))
        ).fetchall()
        return {str(r[0]) for r in found}

    def wait_finished(self, ids: Sequence[str], timeout: float, interval: float = 0.02) -> float:
        """Block until every execution in `ids` is terminal; returns the monotonic time it was seen.

        Executions run roughly in the order they were scheduled, so each poll reads only the last few still
        unfinished and the whole remainder only once those are done: the benchmark's own polling stays a small
        part of the Postgres CPU it measures (a poll over a thousand ids cost as much as a dozen executions)."""
        remaining = list(ids)

        def all_finished() -> bool:
            nonlocal remaining
            tail = remaining[-PROBE:]
            if len(self.finished_ids(tail)) < len(tail):
                return False
            finished = self.finished_ids(remaining)
            remaining = [i for i in remaining if i not in finished]
            return not remaining

        return wait_until(all_finished, timeout, interval, f"{len(ids)} executions")

    def wait_status(self, execution_id: str, status: str, timeout: float, interval: float = 0.005) -> float:
        return wait_until(lambda: self.status(execution_id) == status, timeout, interval, f"{execution_id} {status}")

    def step(self, execution_id: str, name: str) -> dict[str, Any]:
        """One step checkpoint of run 0: output, wake_at, started_at, completed_at."""
        row = self._conn.execute(
            "SELECT output, wake_at, started_at, completed_at FROM steps "
            "WHERE execution_id = %s AND run_index = 0 AND name = %s",
            (execution_id, name),
        ).fetchone()
        if row is None:
            raise LookupError(f"{execution_id} has no step {name!r}")
        return {"output": row[0], "wake_at": row[1], "started_at": row[2], "completed_at": row[3]}

    def step_span(self, execution_id: str) -> tuple[datetime, datetime, int]:
        """First step start, last checkpoint commit and the number of steps of an execution's run 0."""
        row = self._conn.execute(
            "SELECT min(started_at), max(completed_at), count(*) FROM steps WHERE execution_id = %s AND run_index = 0",
            (execution_id,),
        ).fetchone()
        assert row is not None
        return row[0], row[1], int(row[2])

    def remote_dispatch_times(self, execution_id: str) -> list[datetime]:
        """When each remote step of an execution was dispatched, in order."""
        rows = self._conn.execute(
            "SELECT dispatched_at FROM remote_steps WHERE execution_id = %s ORDER BY dispatched_at", (execution_id,)
        ).fetchall()
        return [row[0] for row in rows]
