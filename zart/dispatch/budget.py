"""The database connections a worker host holds: sized at start-up, printed in its start-up line.

A prefork child runs one execution at a time and uses at most three connections at once (the run's own,
a checkpoint transaction beside it, the lease keeper's), usually one or two; the main process fewer for the
sweeper. Pools sized to that keep a host's budget known: up to `KEPT_PER_RUN` connections stay open, a burst
may open `BURST_PER_RUN` more and closes them after.
A thread pool runs `concurrency` executions in one process, so its pool grows with the concurrency.
"""

from __future__ import annotations

from dataclasses import dataclass

KEPT_PER_RUN = 2
BURST_PER_RUN = 2
IN_PROCESS_POOLS = ("threads", "solo", "eventlet", "gevent")


@dataclass(frozen=True)
class ConnectionBudget:
    processes: int  # the main process (sweeper) and each pool child
    kept_per_process: int  # open at rest once warm
    burst_per_process: int  # opened for a burst, closed after
    pooled: bool  # through a transaction pooler: Postgres sees the pooler's pool, not these

    @property
    def at_rest(self) -> int:
        return self.processes * self.kept_per_process

    @property
    def at_most(self) -> int:
        return self.processes * (self.kept_per_process + self.burst_per_process)

    def line(self) -> str:
        route = "to the transaction pooler (Postgres sees the pooler's pool)" if self.pooled else "straight to Postgres"
        return (
            f"database connections: up to {self.at_rest} kept open, at most {self.at_most} at once "
            f"({self.processes} processes x {self.kept_per_process} kept + {self.burst_per_process} burst), {route}"
        )


def budget_for(concurrency: int, pool: str, pooled: bool) -> ConnectionBudget:
    """The budget of one `zart worker` with this Celery pool and concurrency."""
    if pool in IN_PROCESS_POOLS:
        runs = 1 if pool == "solo" else max(1, concurrency)
        return ConnectionBudget(1, KEPT_PER_RUN, BURST_PER_RUN * runs + KEPT_PER_RUN * (runs - 1), pooled)
    return ConnectionBudget(max(1, concurrency) + 1, KEPT_PER_RUN, BURST_PER_RUN, pooled)
