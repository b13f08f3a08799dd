"""A zart worker that knows the Celery-step workflows, and the legacy fleet's own `celery worker` processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.harness import REPO, Environment, Worker, poll

IMPORTS = "tests.workflows,tests.reliability_workflows,tests.celery_workflows"


class LegacyWorker:
    """A plain `celery -A <app> worker -Q legacy` process, as the team runs it (not `zart worker`)."""

    counter = 0

    def __init__(self, env: Environment, log_dir: Path, app: str, concurrency: int, queues: str) -> None:
        LegacyWorker.counter += 1
        self.name = f"legacy{LegacyWorker.counter}-{os.getpid()}"
        self.log_path = log_dir / f"{self.name}.log"
        self._log = open(self.log_path, "wb")  # noqa: SIM115
        self.process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", app, "worker", "-Q", queues, "--concurrency", str(concurrency),
             "--hostname", f"{self.name}@%h", "--loglevel", "INFO", "--without-gossip", "--without-mingle"],
            cwd=REPO,
            env=env.variables(),
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def wait_ready(self) -> LegacyWorker:
        poll(lambda: b" ready." in self.log_path.read_bytes() or self.process.poll() is not None, 30, what="legacy")
        if self.process.poll() is not None:
            raise AssertionError(f"legacy worker exited early:\n{self.log_path.read_text()[-3000:]}")
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


@pytest.fixture(scope="session", autouse=True)
def celery_workflows(env: Environment) -> None:
    import tests.celery_workflows  # noqa: F401  (registers the workflows, as a worker would)
    from zart.dispatch import record_catalog

    record_catalog(env.settings())


@pytest.fixture()
def start_zart(start_worker: Callable[..., Worker]) -> Callable[..., Worker]:
    def start(concurrency: int = 2, **overrides: str) -> Worker:
        return start_worker(concurrency, ZART_IMPORTS=IMPORTS, **overrides)

    return start


@pytest.fixture()
def start_legacy(env: Environment, log_dir: Path) -> Iterator[Callable[..., LegacyWorker]]:
    workers: list[LegacyWorker] = []

    def start(app: str = "tests.legacy.integrated", concurrency: int = 2, queues: str = "legacy") -> LegacyWorker:
        worker = LegacyWorker(env, log_dir, app, concurrency, queues)
        workers.append(worker)
        return worker.wait_ready()

    yield start
    for worker in workers:
        worker.stop()
