"""Real services for the tests: a private Postgres and Redis, and worker processes started as users would."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Collection, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from zart.config import Settings, load_settings

REPO = Path(__file__).resolve().parent.parent


def poll(condition: Callable[[], Any], timeout: float = 20.0, interval: float = 0.05, what: str = "condition") -> Any:
    """Return the first truthy value of `condition()`, or fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def fresh_database(port: int, name: str) -> str:
    """An empty database of that name on the test server (dropped first if it exists); returns its URL."""
    import psycopg

    with psycopg.connect(f"postgresql://postgres@127.0.0.1:{port}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return f"postgresql+psycopg://postgres@127.0.0.1:{port}/{name}"


def assert_nothing_stranded(database_url: str, created_since: datetime | None = None) -> None:
    """The liveness invariant: no execution (created since `created_since`) is pending, running or waiting
    without a live reason to progress. Asked through the same store query as `zart admin stranded`."""
    from zart.store import db, liveness

    with db.autocommit(database_url) as conn:
        found = liveness.stranded(conn, 500)
    if created_since is not None:
        found = [row for row in found if row["created_at"] >= created_since]
    assert found == [], [
        {k: row[k] for k in ("execution_id", "status", "cause", "waiting_for", "lease_expires_at")} for row in found
    ]


@dataclass
class Environment:
    """What a subprocess (worker, CLI, server) needs to reach the test services."""

    database_url: str
    broker_url: str
    imports: str = "tests.workflows,tests.reliability_workflows,tests.liveness_workflows,tests.flow_workflows"
    extra: dict[str, str] = field(default_factory=dict)

    def variables(self, **overrides: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("ZART_", "DATABASE_URL"))}
        env.update(
            {
                "DATABASE_URL": self.database_url,
                "ZART_BROKER_URL": self.broker_url,
                "ZART_IMPORTS": self.imports,
                "ZART_LEASE_SECONDS": "3",
                "ZART_SWEEP_INTERVAL": "0.3",
                "ZART_REDISPATCH_AFTER": "2",
                "PYTHONPATH": str(REPO),
                "PYTHONUNBUFFERED": "1",
            }
        )
        env.update(self.extra)
        env.update(overrides)
        return env

    def settings(self, **overrides: str) -> Settings:
        return load_settings(environ=self.variables(**overrides), env_file=Path("/nonexistent"))


@contextlib.contextmanager
def package_worker(env: Environment, tmp_path_factory: Any, name: str, concurrency: int = 4) -> Iterator[Worker]:
    """One worker shared by a package's tests, stopped before other packages run (theirs count on owning every
    worker)."""
    directory = tmp_path_factory.mktemp(name)
    directory.chmod(0o777)
    worker = Worker(env, directory, concurrency=concurrency)
    try:
        yield worker.wait_ready()
    finally:
        worker.stop()


class SharedProcesses:
    """Worker processes kept running for consecutive tests that ask for them by fixture name.

    Starting and stopping a worker costs seconds; a test that only needs *a* worker (it neither kills, freezes,
    reconfigures nor reads the log of it) can take one that earlier tests used. Before every test, the shared
    processes whose fixture it did not ask for are stopped (`_shared_processes_only_when_asked`), so a test
    still owns every worker it sees."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.running: dict[str, tuple[Any, object]] = {}

    def get(self, name: str, spec: object, start: Callable[[Path], Any]) -> Any:
        """The process of that fixture name, started (`start(log_directory)`) unless one started from the same
        `spec` (what its command line and environment are made of) is still running."""
        current = self.running.get(name)
        if current is not None and (current[1] != spec or current[0].process.poll() is not None):
            self.running.pop(name)[0].stop()  # it died, or the test needs another one
            current = None
        if current is None:
            current = self.running[name] = (start(self.directory), spec)
        return current[0]

    def keep_only(self, names: Collection[str]) -> None:
        stop_together(self.running.pop(name)[0] for name in list(self.running) if name not in names)


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

    def wait_for(self, mark: bytes, timeout: float = 30.0) -> Process:
        poll(lambda: mark in self.log_path.read_bytes() or self.process.poll() is not None, timeout, what=self.name)
        if self.process.poll() is not None:
            raise AssertionError(f"{self.name} exited early:\n{self.log_path.read_text()[-3000:]}")
        return self

    def kill(self) -> None:
        """Crash: SIGKILL the whole process group, as a lost machine would."""
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait(timeout=10)

    def freeze(self) -> None:
        os.killpg(self.process.pid, signal.SIGSTOP)

    def thaw(self) -> None:
        os.killpg(self.process.pid, signal.SIGCONT)

    def terminate(self) -> None:
        """Ask for a warm shutdown (SIGTERM to the whole group) without waiting for it."""
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)

    def stop(self) -> None:
        self.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.kill()
        self._log.close()


class Worker(Process):
    """A `zart worker` process."""

    def __init__(
        self, env: Environment, log_dir: Path, concurrency: int = 2, args: tuple[str, ...] = (), **overrides: str
    ) -> None:
        argv = [
            sys.executable,
            "-m",
            "zart",
            "worker",
            "--concurrency",
            str(concurrency),
            "--hostname",
            "{name}@%h",
            "--loglevel",
            "INFO",
            *args,
        ]
        super().__init__(env.variables(**overrides), log_dir, "w", argv)

    def wait_ready(self, timeout: float = 30.0) -> Worker:
        self.wait_for(b" ready.", timeout)
        return self


def stop_together(processes: Iterable[Process]) -> None:
    """Stop processes (anything with `terminate` and `stop`) side by side: a warm shutdown takes about a second
    of Celery's pool teardown, which need not be paid once per process."""
    processes = list(processes)
    for process in processes:
        process.terminate()
    for process in processes:
        process.stop()
