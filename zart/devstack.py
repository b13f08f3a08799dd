"""`zart dev`: everything a newcomer needs on one machine, in the foreground.

Starts a private Postgres and Redis under `.zart/` unless DATABASE_URL / ZART_BROKER_URL are configured,
migrates, starts a worker and the HTTP API as subprocesses, runs the sample workflow and says where to look.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from zart.config import load_settings, merged_environment, normalise_database_url
from zart.localservices import LocalPostgres, LocalRedis, free_port, wait_for_port
from zart.migrate import upgrade
from zart.service import ZartService

SAMPLE_MODULE = "examples.onboarding"

Echo = Callable[[str], None]


class DevStack:
    def __init__(self, root: Path, api_port: int, echo: Echo, database_url: str | None = None) -> None:
        self.root = root
        self.api_port = api_port
        self.database_url = database_url  # --database-url: wins over DATABASE_URL and .env
        self.echo = echo
        self.postgres: LocalPostgres | None = None
        self.redis: LocalRedis | None = None
        self.processes: list[subprocess.Popen[bytes]] = []

    def start(self) -> dict[str, str]:
        """Bring every part up; returns the environment the subprocesses (and the user's shell) need."""
        configured = merged_environment(None, None)
        database_url = self.database_url or configured.get("DATABASE_URL")
        if not database_url:
            self.postgres = LocalPostgres(self.root / "postgres", free_port())
            self.postgres.stop()  # a previous run that was killed may have left it running
            database_url = self.postgres.start()
            self.echo(f"Started PostgreSQL on 127.0.0.1:{self.postgres.port} (data in {self.postgres.directory})")
        broker_url = configured.get("ZART_BROKER_URL")
        if not broker_url:
            self.redis = LocalRedis(self.root / "redis", free_port())
            broker_url = self.redis.start()
            self.echo(f"Started Redis on 127.0.0.1:{self.redis.port}")
        database_url = normalise_database_url(database_url)
        applied = upgrade(database_url)
        self.echo(f"Migrations: {applied} applied" if applied else "Migrations: schema is up to date")
        imports = [m for m in (configured.get("ZART_IMPORTS") or "").split(",") if m.strip()]
        env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "ZART_BROKER_URL": broker_url,
            "ZART_IMPORTS": ",".join(dict.fromkeys([*imports, SAMPLE_MODULE])),
            "PYTHONPATH": os.pathsep.join(filter(None, [str(Path.cwd()), os.environ.get("PYTHONPATH")])),
            # each start is the newest code: declarations edited back to an earlier state (a branch switched
            # back, a schedule commented out and restored) apply again instead of counting as superseded
            "ZART_CODE_VERSION": configured.get("ZART_CODE_VERSION") or f"dev-{uuid.uuid4().hex[:12]}",
        }
        self.root.mkdir(parents=True, exist_ok=True)
        self._spawn([sys.executable, "-m", "zart", "worker", "--concurrency", "2"], env, "worker.log")
        self._spawn([sys.executable, "-m", "zart", "server", "--port", str(self.api_port)], env, "server.log")
        return env

    def _spawn(self, argv: list[str], env: dict[str, str], log_name: str) -> None:
        log = open(self.root / log_name, "ab")  # noqa: SIM115  (owned by the child for its lifetime)
        self.processes.append(subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT))

    def run_sample(self, env: dict[str, str], timeout: float = 60.0) -> dict[str, object]:
        """Schedule the `hello` sample once the worker has registered it, and wait for its output."""
        service = ZartService(load_settings(environ=env))
        deadline = time.monotonic() + timeout
        while not any(t["name"] == "hello" for t in service.tasks()):
            if time.monotonic() > deadline or any(p.poll() is not None for p in self.processes):
                raise RuntimeError(f"the worker did not start; see {self.root / 'worker.log'}")
            time.sleep(0.2)
        scheduled = service.schedule("hello", {"name": "zart"})
        execution_id = scheduled.execution["execution_id"]
        done, row = service.wait(execution_id, timeout)
        if not done:
            raise RuntimeError(f"the sample execution {execution_id} did not finish")
        return {"execution_id": execution_id, "status": row["status"], "output": row["output"]}

    def wait_for_api(self, timeout: float = 60.0) -> None:
        """Return once the HTTP API accepts connections, so the URLs printed next can be opened at once."""
        wait_for_port(self.api_port, timeout, "the HTTP API")

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
        if self.redis is not None:
            self.redis.stop()
        if self.postgres is not None:
            self.postgres.stop()
