"""What Postgres itself sees: its client backends per database, and their peak while something runs.

A fleet's connection budget is checked here, on the server, rather than trusted from the clients' pools.
"""

from __future__ import annotations

import threading

import psycopg

_BACKENDS = "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND backend_type = 'client backend'"


def backends(libpq_url: str, database: str) -> int:
    """Client connections Postgres holds to `database` now (the asking connection is made elsewhere)."""
    with psycopg.connect(libpq_url, autocommit=True, connect_timeout=5) as conn:
        row = conn.execute(_BACKENDS, (database,)).fetchone()
        return int(row[0]) if row else 0


class PeakBackends:
    """Samples, on one connection to another database (`postgres`), the client backends of `database`."""

    def __init__(self, libpq_url: str, database: str, interval: float = 0.05) -> None:
        self._url, self._database, self._interval = libpq_url, database, interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="peak-backends", daemon=True)
        self.peak = 0
        self.samples = 0

    def __enter__(self) -> PeakBackends:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        with psycopg.connect(self._url, autocommit=True, connect_timeout=5) as conn:
            while not self._stop.wait(self._interval):
                row = conn.execute(_BACKENDS, (self._database,)).fetchone()
                self.peak = max(self.peak, int(row[0]) if row else 0)
                self.samples += 1
