"""Settings, read once from the environment and a `.env` file in the working directory.

Everything that varies between deployments lives here and is passed down explicitly; no other
module reads the environment.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from dotenv import dotenv_values

from zart.errors import ConfigurationError
from zart.retention.policy import Policy, parse_policy

DEFAULT_DATABASE_URL = "postgresql+psycopg://localhost/zart"
DEFAULT_BROKER_URL = "redis://localhost:6379/0"


POSTGRES_SCHEME = "postgresql+psycopg://"


def normalise_database_url(url: str) -> str:
    """Accept `postgres://`, `postgresql://`, `postgresql+psycopg://` (and `+psycopg2`); always drive psycopg 3.

    Anything else is refused here, in one sentence, rather than deep inside SQLAlchemy with a traceback.
    """
    for prefix in ("postgres://", "postgresql://", "postgresql+psycopg2://", POSTGRES_SCHEME):
        if url.startswith(prefix):
            return POSTGRES_SCHEME + url[len(prefix) :]
    scheme = url.split("://", 1)[0] if "://" in url else None
    found = f"a {scheme}:// URL" if scheme else "no URL"
    raise ConfigurationError(
        f"the database URL must be PostgreSQL's, e.g. postgresql://user:password@host:5432/dbname (got {found})"
    )


def _split_list(value: str | None) -> tuple[str, ...]:
    return tuple(part.strip() for part in (value or "").split(",") if part.strip())


@dataclass(frozen=True)
class Settings:
    """Deployment settings; durations are seconds."""

    database_url: str = DEFAULT_DATABASE_URL
    broker_url: str = DEFAULT_BROKER_URL
    imports: tuple[str, ...] = ()
    lease_seconds: float = 30.0
    sweep_interval: float = 1.0
    redispatch_after: float = 10.0
    short_wait_hint: float = 120.0
    # a run taken back from a dead worker this many times in a row without a new checkpoint fails instead
    max_recoveries: int = 5
    # a schedule's tick later than this was missed (no worker swept): its catch-up policy decides
    schedule_grace: float = 60.0
    queue: str = "zart"
    api_tokens: tuple[str, ...] = ()
    # with tokens set, /openapi.json and /docs need one too, unless this says they may be read without
    public_docs: bool = False
    api_prefix: str = "/api/v1"
    admin_prefix: str = "/zart/admin/v1"
    max_body_bytes: int = 1_048_576
    # seconds each final status is kept before the sweeper deletes it (ZART_RETENTION; empty: kept forever)
    retention: Policy = field(default_factory=lambda: parse_policy(None))
    extra: Mapping[str, str] = field(default_factory=dict)

    def with_database_url(self, url: str | None) -> Settings:
        return self if not url else replace(self, database_url=normalise_database_url(url))

    @property
    def libpq_url(self) -> str:
        """The URL as psycopg itself (LISTEN connections) wants it."""
        return self.database_url.replace("postgresql+psycopg://", "postgresql://", 1)


def merged_environment(environ: Mapping[str, str] | None, env_file: Path | None) -> dict[str, str]:
    path = env_file if env_file is not None else Path.cwd() / ".env"
    values: dict[str, str] = {}
    if path.is_file():
        values.update({k: v for k, v in dotenv_values(path).items() if v is not None})
    values.update(os.environ if environ is None else environ)
    return values


def load_settings(environ: Mapping[str, str] | None = None, env_file: Path | None = None) -> Settings:
    """Build Settings; the process environment wins over `.env`."""
    env = merged_environment(environ, env_file)

    def number(name: str, default: float) -> float:
        raw = env.get(name)
        return float(raw) if raw else default

    return Settings(
        database_url=normalise_database_url(env.get("DATABASE_URL") or DEFAULT_DATABASE_URL),
        broker_url=env.get("ZART_BROKER_URL") or DEFAULT_BROKER_URL,
        imports=_split_list(env.get("ZART_IMPORTS")),
        lease_seconds=number("ZART_LEASE_SECONDS", 30.0),
        sweep_interval=number("ZART_SWEEP_INTERVAL", 1.0),
        redispatch_after=number("ZART_REDISPATCH_AFTER", 10.0),
        short_wait_hint=number("ZART_SHORT_WAIT_HINT", 120.0),
        max_recoveries=int(number("ZART_MAX_RECOVERIES", 5)),
        schedule_grace=number("ZART_SCHEDULE_GRACE", 60.0),
        queue=env.get("ZART_QUEUE") or "zart",
        api_tokens=_split_list(env.get("ZART_API_TOKENS")),
        public_docs=(env.get("ZART_PUBLIC_DOCS") or "").strip().lower() in ("1", "true", "yes", "on"),
        api_prefix=env.get("ZART_API_PREFIX") or "/api/v1",
        admin_prefix=env.get("ZART_ADMIN_PREFIX") or "/zart/admin/v1",
        max_body_bytes=int(number("ZART_MAX_BODY_BYTES", 1_048_576)),
        retention=parse_policy(env.get("ZART_RETENTION")),
    )
