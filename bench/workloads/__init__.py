"""The workloads, in the order a full run takes them. Each module offers `run(ctx) -> list[Row]`.

Modules are imported only when their workload runs, so the ones that need no baseline library (physical)
work in an environment without the `bench` extra (dbos).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

from bench.context import BenchContext
from bench.report import Row

Workload = Callable[[BenchContext], list[Row]]

WORKLOADS = (
    "physical", "steps", "throughput", "latency", "flow", "remote", "canvas", "scale", "retention", "schedules",
    "fleet",
)
_MODULES = {"steps": "step_overhead"}


def load(name: str) -> Workload:
    module = importlib.import_module(f"{__name__}.{_MODULES.get(name, name)}")
    return module.run  # type: ignore[no-any-return]
