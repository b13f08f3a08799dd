"""Private PostgreSQL and Redis servers under a directory, for `zart dev`, the tests and the benchmarks.

Postgres refuses to run as root, so as root the data directory is handed to the `postgres` user and the
server is started through `runuser`. Both servers listen on 127.0.0.1 only.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path


class LocalServiceError(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _postgres_bin(name: str) -> str:
    found = shutil.which(name)
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)
    if candidates:
        return candidates[0]
    if found:
        return found
    raise LocalServiceError(f"PostgreSQL's {name} was not found; install the 'postgresql' package")


def _as_postgres_user(argv: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return argv
    return ["runuser", "-u", "postgres", "--", *argv]


def wait_for_port(port: int, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise LocalServiceError(f"{what} did not start listening on 127.0.0.1:{port}")


def _end(process: subprocess.Popen[bytes] | None) -> None:
    """Terminate a service we started; kill it when it does not stop within ten seconds."""
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@dataclass
class LocalPostgres:
    directory: Path
    port: int
    database: str = "zart"

    @property
    def data_dir(self) -> Path:
        return self.directory / "data"

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{self.database}"

    def start(self, fsync: bool = True) -> str:
        self.directory.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(self.directory, "postgres", "postgres")
        if not (self.data_dir / "PG_VERSION").exists():
            subprocess.run(
                _as_postgres_user(
                    [_postgres_bin("initdb"), "-D", str(self.data_dir), "-A", "trust", "-U", "postgres", "-E", "UTF8"]
                ),
                check=True,
                stdout=subprocess.DEVNULL,
            )
        self._pg_ctl_start(fsync)
        wait_for_port(self.port, 30, "PostgreSQL")
        self._create_database()
        return self.url

    def _pg_ctl_start(self, fsync: bool) -> None:
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={self.directory} "
            f"-c max_connections=300 -c fsync={'on' if fsync else 'off'}"
        )
        subprocess.run(
            _as_postgres_user(
                [
                    _postgres_bin("pg_ctl"),
                    "-D",
                    str(self.data_dir),
                    "-l",
                    str(self.directory / "postgres.log"),
                    "-o",
                    options,
                    "-w",
                    "start",
                ]
            ),
            check=True,
            stdout=subprocess.DEVNULL,
        )

    def _create_database(self) -> None:
        import psycopg

        with psycopg.connect(f"postgresql://postgres@127.0.0.1:{self.port}/postgres", autocommit=True) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (self.database,)).fetchone()
            if not exists:
                conn.execute(f'CREATE DATABASE "{self.database}"')

    def stop(self, mode: str = "fast") -> None:
        if not (self.data_dir / "postmaster.pid").exists():
            return
        subprocess.run(
            _as_postgres_user([_postgres_bin("pg_ctl"), "-D", str(self.data_dir), "-m", mode, "-w", "stop"]),
            check=False,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def restart(self, fsync: bool = True) -> None:
        self.stop()
        self._pg_ctl_start(fsync)
        wait_for_port(self.port, 30, "PostgreSQL")


@dataclass
class LocalRedis:
    directory: Path
    port: int
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> str:
        binary = shutil.which("redis-server")
        if binary is None:
            raise LocalServiceError("redis-server was not found; install the 'redis-server' package")
        self.directory.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [
                binary,
                "--bind",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.directory),
                "--daemonize",
                "no",
            ],
            stdout=open(self.directory / "redis.log", "ab"),  # noqa: SIM115
            stderr=subprocess.STDOUT,
        )
        wait_for_port(self.port, 15, "Redis")
        return self.url

    def stop(self) -> None:
        _end(self.process)
        self.process = None


@dataclass
class LocalPgBouncer:
    """Debian's PgBouncer in transaction-pooling mode in front of a LocalPostgres, as a fleet deploys it.

    Clients connect as the server's trusted `postgres` user; at most `pool_size` server connections are opened
    to Postgres. The session settings zart sends as startup options on direct connections (which PgBouncer
    refuses) are applied by `connect_query` on each server connection instead.
    """

    directory: Path
    port: int
    postgres: LocalPostgres
    pool_size: int = 20
    max_client_conn: int = 1000
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{self.postgres.database}"

    def start(self) -> str:
        binary = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
        if not os.path.exists(binary):
            raise LocalServiceError("pgbouncer was not found; install the 'pgbouncer' package")
        self.directory.mkdir(parents=True, exist_ok=True)
        (self.directory / "users.txt").write_text('"postgres" ""\n')
        config = self.directory / "pgbouncer.ini"
        config.write_text(self._config())
        if os.geteuid() == 0:  # PgBouncer refuses to run as root
            for path in (self.directory, self.directory / "users.txt", config):
                shutil.chown(path, "postgres", "postgres")
        self.process = subprocess.Popen(
            _as_postgres_user([binary, str(config)]),
            stdout=open(self.directory / "pgbouncer.out", "ab"),  # noqa: SIM115
            stderr=subprocess.STDOUT,
        )
        wait_for_port(self.port, 15, "PgBouncer")
        return self.url

    def _config(self) -> str:
        connect_query = "SET idle_in_transaction_session_timeout = 10000; SET jit = off"
        return (
            "[databases]\n"
            f"* = host=127.0.0.1 port={self.postgres.port} connect_query='{connect_query}'\n"
            "[pgbouncer]\n"
            "listen_addr = 127.0.0.1\n"
            f"listen_port = {self.port}\n"
            "unix_socket_dir =\n"
            "auth_type = trust\n"
            f"auth_file = {self.directory / 'users.txt'}\n"
            "pool_mode = transaction\n"
            f"default_pool_size = {self.pool_size}\n"
            "min_pool_size = 0\n"
            "reserve_pool_size = 0\n"
            f"max_client_conn = {self.max_client_conn}\n"
            f"logfile = {self.directory / 'pgbouncer.log'}\n"
            "log_connections = 0\n"
            "log_disconnections = 0\n"
        )

    def stop(self) -> None:
        _end(self.process)
        self.process = None
