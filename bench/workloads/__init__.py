"""The workloads, in the order a full run takes them. Each is `run(ctx) -> list[Row]`."""

from __future__ import annotations

from collections.abc import Callable

from bench.context import BenchContext
from bench.report import Row
from bench.workloads import latency, physical, scale, step_overhead, throughput

Workload = Callable[[BenchContext], list[Row]]

WORKLOADS: dict[str, Workload] = {
    "physical": physical.run,
    "steps": step_overhead.run,
    "throughput": throughput.run,
    "latency": latency.run,
    "scale": scale.run,
}
