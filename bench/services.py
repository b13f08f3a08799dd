"""The private servers a benchmark run measures against: PostgreSQL (fsync on) and Redis, on 127.0.0.1.

Everything is started under one temporary directory and stopped (and removed) when the run ends, so a
benchmark leaves no process or data behind.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

from zart.config import Settings
from zart.localservices import LocalPostgres, LocalRedis, free_port
from zart.migrate import upgrade
from zart.store import db

ZART_DATABASE = "zart"


@dataclass
class Services:
    """Handles on the running servers plus the databases created on them."""

    root: Path
    postgres: LocalPostgres
    redis: LocalRedis
    _databases: set[str] = field(default_factory=set)

    def libpq_url(self, database: str = ZART_DATABASE) -> str:
        """A plain `postgresql://` URL, as psycopg and DBOS take it."""
        return f"postgresql://postgres@127.0.0.1:{self.postgres.port}/{database}"

    def sqlalchemy_url(self, database: str = ZART_DATABASE) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.postgres.port}/{database}"

    @property
    def broker_url(self) -> str:
        return self.redis.url

    def database(self, name: str) -> str:
        """Create the database `name` once; returns its libpq URL."""
        if name not in self._databases:
            with psycopg.connect(self.libpq_url("postgres"), autocommit=True) as conn:
                if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
                    conn.execute(f'CREATE DATABASE "{name}"')
            self._databases.add(name)
        return self.libpq_url(name)

    def zart_database(self, name: str = ZART_DATABASE) -> str:
        """A migrated zart database; returns its SQLAlchemy URL."""
        self.database(name)
        url = self.sqlalchemy_url(name)
        upgrade(url)
        return url

    def settings(self, database: str = ZART_DATABASE) -> Settings:
        """Settings as a client process (the service, the CLI) would build them: defaults plus the URLs."""
        return Settings(database_url=self.sqlalchemy_url(database), broker_url=self.broker_url)


@contextmanager
def running_services() -> Iterator[Services]:
    """Start Postgres and Redis in a fresh temporary directory; stop both and remove it afterwards."""
    root = Path(tempfile.mkdtemp(prefix="zart-bench-"))
    root.chmod(0o755)  # the postgres user must reach its data directory below
    postgres = LocalPostgres(root / "pg", free_port(), database=ZART_DATABASE)
    redis = LocalRedis(root / "redis", free_port())
    try:
        postgres.start(fsync=True)
        redis.start()
        services = Services(root, postgres, redis, {ZART_DATABASE})
        services.zart_database()
        yield services
    finally:
        db.dispose_all()
        redis.stop()
        postgres.stop(mode="fast")
        shutil.rmtree(root, ignore_errors=True)
