"""Worker subprocesses started as a user would start them, and their resident memory read from /proc.

Each worker runs in its own session (process group), so stopping it stops its pool children too and the
RSS of the whole group can be summed.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

from bench.cpu import proc_stats

REPO = Path(__file__).resolve().parent.parent
READY_MARK = b" ready."


class WorkerProcess:
    """A Celery-based worker subprocess (zart's or the plain chain's) with its log in `log_dir`."""

    def __init__(self, name: str, argv: list[str], env: Mapping[str, str], log_dir: Path) -> None:
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        self._log = open(self.log_path, "wb")  # noqa: SIM115 (closed in stop)
        full_env = {k: v for k, v in os.environ.items() if not k.startswith(("ZART_", "DATABASE_URL"))}
        full_env.update({"PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1", **env})
        self.process = subprocess.Popen(
            argv, cwd=REPO, env=full_env, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True
        )

    def wait_ready(self, timeout: float = 60.0) -> WorkerProcess:
        deadline = time.monotonic() + timeout
        while READY_MARK not in self.log_path.read_bytes():
            if self.process.poll() is not None or time.monotonic() > deadline:
                tail = self.log_path.read_text(errors="replace")[-3000:]
                self.stop()
                raise RuntimeError(f"{self.name} did not become ready:\n{tail}")
            time.sleep(0.05)
        return self

    def rss_bytes(self) -> int:
        """Resident memory of every process in the worker's group (main process and pool children)."""
        return sum(_rss(pid) for pid, stat in proc_stats().items() if stat.pgrp == self.process.pid)

    def stop(self, timeout: float = 20.0) -> None:
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGTERM)
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
            except ProcessLookupError:
                pass
        self._log.close()

    def __enter__(self) -> WorkerProcess:
        return self.wait_ready()

    def __exit__(self, *_: object) -> None:
        self.stop()


def zart_worker(
    database_url: str,
    broker_url: str,
    log_dir: Path,
    name: str = "zart-worker",
    concurrency: int | None = None,
    extra_env: Mapping[str, str] | None = None,
    pool: str | None = None,
) -> WorkerProcess:
    """`python -m zart worker` at its default settings (unless `concurrency` or `extra_env` say otherwise),
    importing the benchmark workflows."""
    env = {"DATABASE_URL": database_url, "ZART_BROKER_URL": broker_url, "ZART_IMPORTS": "bench.workflows"}
    env.update(extra_env or {})
    argv = [sys.executable, "-m", "zart", "worker", "--hostname", f"{name}@%h"]
    if concurrency is not None:
        argv += ["--concurrency", str(concurrency)]
    if pool is not None:
        argv += ["--pool", pool]
    return WorkerProcess(name, argv, env, log_dir)


def celery_chain_worker(broker_url: str, log_dir: Path, concurrency: int, name: str = "chain") -> WorkerProcess:
    """The plain Celery baseline's worker, with the concurrency a default zart worker gets and the start-up
    flags `zart worker` passes to Celery (no mingle, no gossip), so both sides pay for the same services."""
    from bench.celery_chain import QUEUE

    argv = [
        sys.executable, "-m", "celery", "-A", "bench.celery_chain", "worker", "-Q", QUEUE,
        "--concurrency", str(concurrency), "--loglevel", "INFO", "--hostname", f"{name}@%h",
        "--without-mingle", "--without-gossip",
    ]
    return WorkerProcess(f"celery-{name}", argv, {"BENCH_BROKER_URL": broker_url}, log_dir)


def remote_fleet_worker(services_env: Mapping[str, str], log_dir: Path, concurrency: int) -> WorkerProcess:
    """A team's own `celery worker` serving the remote-step benchmark's queue, with zart's integration line
    (it reports to zart's database, so it gets zart's settings too)."""
    from bench.remote_app import QUEUE

    argv = [
        sys.executable, "-m", "celery", "-A", "bench.remote_fleet", "worker", "-Q", QUEUE,
        "--concurrency", str(concurrency), "--loglevel", "INFO", "--hostname", "fleet@%h",
    ]
    return WorkerProcess("remote-fleet", argv, services_env, log_dir)


def _rss(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0
