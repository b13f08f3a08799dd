"""Processes as a Celery shop runs them: the legacy fleet's own `celery worker`, zart pools on chosen queues,
Flower; and a zart worker that knows the Celery-step workflows."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.harness import REPO, Environment, SharedProcesses, Worker, poll

IMPORTS = "tests.workflows,tests.reliability_workflows,tests.liveness_workflows,tests.celery_workflows"


class Process:
    """A subprocess in its own session (a SIGKILL takes its pool children too), its output in `log_dir`."""

    counter = 0

    def __init__(self, env: dict[str, str], log_dir: Path, kind: str, argv: list[str]) -> None:
        Process.counter += 1
        self.name = f"{kind}{Process.counter}-{os.getpid()}"
        self.log_path = log_dir / f"{self.name}.log"
        self._log = open(self.log_path, "wb")  # noqa: SIM115
        argv = [part.replace("{name}", self.name) for part in argv]
        self.process = subprocess.Popen(
            argv, cwd=REPO, env=env, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True
        )

    def wait_for(self, mark: bytes) -> Process:
        poll(lambda: mark in self.log_path.read_bytes() or self.process.poll() is not None, 30, what=self.name)
        if self.process.poll() is not None:
            raise AssertionError(f"{self.name} exited early:\n{self.log_path.read_text()[-3000:]}")
        return self

    def kill(self) -> None:
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGTERM)
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()
            except ProcessLookupError:
                pass
        self._log.close()


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
    for process in reversed(started):
        process.stop()


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
