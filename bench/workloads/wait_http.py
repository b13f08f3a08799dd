"""Completion → `/wait` answered, measured by bench/wait_latency.py (the HTTP API's own script) when present.

The script is expected to offer `measure(database_url, broker_url, samples) -> list[float]` (milliseconds);
until it does, the row says "not measured" rather than guessing.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from bench.context import BenchContext
from bench.measure import Summary
from bench.report import NOT_MEASURED, Row, p50_p99, verdict

MODULE = "bench.wait_latency"
MEASURE = "completion → /wait answered"
TARGET = "p99 ≤ 50 ms"


def _script() -> ModuleType | None:
    try:
        return importlib.import_module(MODULE)
    except ModuleNotFoundError as exc:
        if exc.name == MODULE:
            return None
        raise


def row(ctx: BenchContext) -> Row:
    script = _script()
    measure = getattr(script, "measure", None)
    if measure is None:
        reason = "bench/wait_latency.py is missing" if script is None else "bench/wait_latency.py has no measure()"
        return Row("latency", MEASURE, NOT_MEASURED, target=TARGET, verdict=f"{NOT_MEASURED} ({reason})")
    services = ctx.services
    values = measure(services.sqlalchemy_url(), services.broker_url, ctx.size(100, 10))
    summary = Summary.of(values)
    return Row("latency", f"{MEASURE} (n={summary.n})", p50_p99(summary.p50, summary.p99), target=TARGET,
               verdict=verdict(summary.p99 <= 50))
