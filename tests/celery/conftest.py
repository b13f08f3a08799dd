"""Processes as a Celery shop runs them: the legacy fleet's own `celery worker`, zart pools on chosen queues,
Flower; and a zart worker that knows the Celery-step workflows."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.harness import Environment, Process, SharedProcesses, Worker, stop_together

IMPORTS = "tests.workflows,tests.reliability_workflows,tests.liveness_workflows,tests.celery_workflows"


def celery_worker_argv(app: str, queues: str, concurrency: int, *extra: str) -> list[str]:
    return [
        sys.executable, "-m", "celery", "-A", app, "worker", "-Q", queues, "--concurrency", str(concurrency),
        "--hostname", "{name}@%h", "--loglevel", "INFO", "--without-gossip", "--without-mingle", *extra,
    ]


@pytest.fixture(scope="session", autouse=True)
def celery_workflows(env: Environment) -> None:
    import tests.celery_workflows  # noqa: F401  (registers the workflows, as a worker would)
    from zart.dispatch import record_catalog

    record_catalog(env.settings())


@pytest.fixture()
def processes(log_dir: Path) -> Iterator[list[Process]]:
    started: list[Process] = []
    yield started
    stop_together(reversed(started))


@pytest.fixture()
def start_zart(start_worker: Callable[..., Worker]) -> Callable[..., Worker]:
    """`zart worker` importing the Celery-step workflows."""

    def start(concurrency: int = 2, **overrides: str) -> Worker:
        return start_worker(concurrency, ZART_IMPORTS=IMPORTS, **overrides)

    return start


@pytest.fixture()
def start_legacy(env: Environment, log_dir: Path, processes: list[Process]) -> Callable[..., Process]:
    """The legacy fleet's plain `celery -A <app> worker -Q legacy` (not `zart worker`)."""

    def start(app: str = "tests.legacy.integrated", concurrency: int = 2, *extra: str) -> Process:
        argv = celery_worker_argv(app, "legacy", concurrency, *extra)
        process = Process(env.variables(), log_dir, "legacy", argv)
        processes.append(process)
        return process.wait_for(b" ready.")

    return start


@pytest.fixture()
def start_pool(env: Environment, log_dir: Path, processes: list[Process]) -> Callable[..., Process]:
    """A zart pool consuming `queues`: `zart worker -Q <queues>`."""

    def start(queues: str, *extra: str, **overrides: str) -> Process:
        argv = [sys.executable, "-m", "zart", "worker", "-Q", queues, "--concurrency", "2", "--hostname",
                "{name}@%h", *extra]
        process = Process(env.variables(ZART_IMPORTS=IMPORTS, **overrides), log_dir, f"pool-{queues}", argv)
        processes.append(process)
        return process.wait_for(b" ready.")

    return start


@pytest.fixture()
def zart_worker(env: Environment, shared_processes: SharedProcesses) -> Worker:
    """A running `zart worker` importing the Celery-step workflows (concurrency 2), shared (see SharedProcesses)."""
    return shared_processes.get(
        "zart_worker", (env, IMPORTS), lambda directory: Worker(env, directory, ZART_IMPORTS=IMPORTS).wait_ready()
    )


@pytest.fixture()
def legacy_worker(env: Environment, shared_processes: SharedProcesses) -> Process:
    """A running legacy `celery -A tests.legacy.integrated worker -Q legacy` (concurrency 2), shared likewise."""

    def start(directory: Path) -> Process:
        argv = celery_worker_argv("tests.legacy.integrated", "legacy", 2)
        return Process(env.variables(), directory, "legacy", argv).wait_for(b" ready.")

    return shared_processes.get("legacy_worker", env, start)
