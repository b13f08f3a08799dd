"""Worker metrics for Prometheus, counted in every prefork child and served by the worker's main process.

prometheus_client's multiprocess mode: each process writes its samples to files in one directory and the
main process's endpoint sums them, so a step timed in any pool child shows on the one `--metrics-port`.
Nothing here is imported or counted unless the worker was started with a metrics port.
"""

from __future__ import annotations

import functools
import glob
import logging
import os
import shutil
import tempfile
from typing import Any

log = logging.getLogger(__name__)

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
STEP_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)
SWEEP_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)

_state: dict[str, Any] = {"enabled": False, "owned_dir": None}


def enable() -> str:
    """Switch counting on for this process and the children it forks; returns the samples directory.

    Call before any pool child starts. A directory given in PROMETHEUS_MULTIPROC_DIR is used (and emptied of
    a previous run's files); otherwise a private one is made and removed by `disable`."""
    directory = os.environ.get(MULTIPROC_ENV)
    if directory:
        os.makedirs(directory, exist_ok=True)
        for stale in glob.glob(os.path.join(directory, "*.db")):
            os.remove(stale)
    else:
        directory = tempfile.mkdtemp(prefix="zart-metrics-")
        os.environ[MULTIPROC_ENV] = directory
        _state["owned_dir"] = directory
    from prometheus_client import values

    values.ValueClass = values.get_value_class()  # chosen at import time, maybe before the variable was set
    _state["enabled"] = True
    return directory


def disable() -> None:
    _state["enabled"] = False
    owned = _state.pop("owned_dir", None)
    if owned:
        shutil.rmtree(owned, ignore_errors=True)


def enabled() -> bool:
    return bool(_state["enabled"])


def serve(port: int, host: str = "0.0.0.0") -> None:
    """The /metrics endpoint of the worker: every process's samples, summed."""
    from prometheus_client import CollectorRegistry, start_http_server
    from prometheus_client.multiprocess import MultiProcessCollector

    registry = CollectorRegistry()
    MultiProcessCollector(registry)
    start_http_server(port, addr=host, registry=registry)
    log.info("worker metrics on http://%s:%s/metrics", host, port)


@functools.cache
def _families() -> dict[str, Any]:
    from prometheus_client import Counter, Histogram

    def counter(name: str, doc: str, labels: tuple[str, ...]) -> Any:
        return Counter(name, doc, labels, registry=None)

    return {
        "step_seconds": Histogram(
            "zart_step_duration_seconds",
            "Step attempt duration (the step body), by task and step.",
            ("task", "step"),
            buckets=STEP_BUCKETS,
            registry=None,
        ),
        "attempts": counter("zart_step_attempts", "Step attempts started.", ("task", "step")),
        "failures": counter("zart_step_failures", "Step attempts that raised.", ("task", "step")),
        "claimed": counter("zart_runs_claimed", "Runs claimed by a worker.", ("task",)),
        "suspended": counter(
            "zart_runs_suspended", "Runs that parked to wait (sleep, event, children, retry).", ("task",)
        ),
        "finished": counter(
            "zart_runs_finished", "Runs that ended the execution, by final status.", ("task", "status")
        ),
        "lease_lost": counter(
            "zart_lease_losses", "Runs stopped because their lease was taken or cancelled.", ("task",)
        ),
        "sweep_seconds": Histogram(
            "zart_sweep_duration_seconds", "One sweeper pass.", buckets=SWEEP_BUCKETS, registry=None
        ),
        "repairs": counter("zart_sweep_repairs", "What the sweeper put right, by kind.", ("kind",)),
    }


def step_attempt(task: str, step: str, seconds: float, failed: bool) -> None:
    if not enabled():
        return
    family = _families()
    family["attempts"].labels(task, step).inc()
    family["step_seconds"].labels(task, step).observe(seconds)
    if failed:
        family["failures"].labels(task, step).inc()


RUN_OUTCOMES = {"suspended": "suspended", "lease-lost": "lease_lost"}


def run_claimed(task: str) -> None:
    if enabled():
        _families()["claimed"].labels(task).inc()


def run_ended(task: str, outcome: str) -> None:
    """`outcome` is what the runner returned: completed, failed, suspended, lease-lost, retrying, …"""
    if not enabled():
        return
    family = _families()
    if outcome in RUN_OUTCOMES:
        family[RUN_OUTCOMES[outcome]].labels(task).inc()
    elif outcome in ("completed", "failed"):
        family["finished"].labels(task, outcome).inc()


def sweep_pass(seconds: float) -> None:
    if enabled():
        _families()["sweep_seconds"].observe(seconds)


def repaired(kind: str, count: int) -> None:
    if enabled() and count:
        _families()["repairs"].labels(kind).inc(count)
