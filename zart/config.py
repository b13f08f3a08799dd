"""Settings, read once from the environment and a `.env` file in the working directory.

Everything that varies between deployments lives here and is passed down explicitly; no other
module reads the environment.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit

from dotenv import dotenv_values

from zart.errors import ConfigurationError
from zart.retention.policy import Policy, parse_policy

DEFAULT_DATABASE_URL = "postgresql+psycopg://localhost/zart"
DEFAULT_BROKER_URL = "redis://localhost:6379/0"


POSTGRES_SCHEME = "postgresql+psycopg://"


def database_name(url: str) -> str:
    """The database a PostgreSQL URL names (the path after the host)."""
    return urlsplit(url).path.lstrip("/")


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


SCHEMA_PATTERN = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def check_schema(schema: str | None) -> str | None:
    """ZART_SCHEMA: a plain lower-case Postgres identifier, or unset (zart's tables then stay where they are)."""
    if schema is None or schema == "":
        return None
    if not SCHEMA_PATTERN.fullmatch(schema):
        raise ConfigurationError(
            f"ZART_SCHEMA must be a lower-case identifier (letters, digits, underscores; at most 63), got {schema!r}"
        )
    return schema


def with_schema(url: str, schema: str | None) -> str:
    """The URL whose connections find zart's tables in `schema` first (then `public`, for the app's own)."""
    if schema is None:
        return url
    base, _, query = url.partition("?")
    params = [(k, v) for k, v in parse_qsl(query, keep_blank_values=True) if k != "options"]
    options = " ".join(v for k, v in parse_qsl(query) if k == "options")
    params.append(("options", f"{options} -csearch_path={schema},public".strip()))
    return f"{base}?{urlencode(params)}"


def schema_of(url: str) -> str | None:
    """The schema `with_schema` put in the URL, or None."""
    for key, value in parse_qsl(url.partition("?")[2]):
        if key == "options":
            found = re.search(r"-c\s*search_path=([a-z0-9_]+)", value)
            if found:
                return found[1]
    return None


POOLER_MARK = "zart_pooler"


def mark_pooled(url: str) -> str:
    """The URL whose connections go through a transaction pooler: zart then sends no startup options and
    prepares no statements on them (the mark travels with the URL to every engine built from it)."""
    if is_pooled(url):
        return url
    return f"{url}{'&' if '?' in url else '?'}{POOLER_MARK}=transaction"


def is_pooled(url: str) -> bool:
    return any(key == POOLER_MARK for key, _ in parse_qsl(url.partition("?")[2]))


def without_pooler_mark(url: str) -> str:
    base, _, query = url.partition("?")
    params = [(k, v) for k, v in parse_qsl(query, keep_blank_values=True) if k != POOLER_MARK]
    return f"{base}?{urlencode(params)}" if params else base


def _pooler(value: str | None) -> str | None:
    chosen = (value or "").strip().lower()
    if chosen in ("", "none", "off"):
        return None
    if chosen != "transaction":
        raise ConfigurationError(f"ZART_POOLER must be transaction or empty (got {value!r})")
    return chosen


def check_same_database(database_url: str, direct_url: str | None) -> None:
    """The direct URL (LISTEN, migrations) must name the database the others use: on another one, `zart migrate`
    migrates it while every other command finds no schema, and the API listens where no execution finishes."""
    if direct_url is not None and database_name(direct_url) != database_name(database_url):
        raise ConfigurationError(
            f"the database URL names database '{database_name(database_url)}' but ZART_DIRECT_DATABASE_URL names "
            f"'{database_name(direct_url)}': set ZART_DIRECT_DATABASE_URL to the same database"
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
    # how long a Celery task dispatched as a remote step may go without any worker reporting on it
    dispatch_timeout: float = 300.0
    # how long a run keeps its worker slot waiting for a remote step's outcome before it parks (0: parks at once)
    remote_hold: float = 2.0
    api_tokens: tuple[str, ...] = ()
    # with tokens set, /openapi.json and /docs need one too, unless this says they may be read without
    public_docs: bool = False
    # host names a token-less API answers to (ZART_ALLOWED_HOSTS); None: zart's defaults (see flask_app.hosts)
    allowed_hosts: tuple[str, ...] | None = None
    # seconds an API request may wait on one database connection before it is cut (503); 0: no bound
    api_database_timeout: float = 30.0
    # seconds a CLI command may wait on one database connection before it is cut (exit 1); 0: no bound
    cli_database_timeout: float = 30.0
    api_prefix: str = "/api/v1"
    admin_prefix: str = "/zart/admin/v1"
    ui_prefix: str = "/ui"
    max_body_bytes: int = 1_048_576
    # the Postgres schema holding zart's tables (ZART_SCHEMA); None keeps them where the database puts them
    schema: str | None = None
    # seconds each final status is kept before the sweeper deletes it (ZART_RETENTION; empty: kept forever)
    retention: Policy = field(default_factory=lambda: parse_policy(None))
    log_format: str = "text"  # or "json": one JSON object per line, with the run's fields
    metrics_port: int | None = None  # a worker serves Prometheus metrics on this port when set
    # a worker that ends a run takes the next ready execution of its queues from Postgres itself (ZART_SELF_CLAIM)
    self_claim: bool = True
    # how long a self-claiming worker's run stands by for a new execution of its queues (ZART_STANDBY_SECONDS;
    # 0, the default: never, every new execution rings a doorbell unless one is queued). Opt-in: a standby taken
    # by a long run, or by an execution whose task the standing worker lacks (a rolling deploy), delays its
    # taker until that run ends (the worker then rings the taker's doorbell), at most 3/4 of this
    standby_seconds: float = 0.0
    # "transaction" when database_url goes through PgBouncer in transaction-pooling mode (ZART_POOLER)
    pooler: str | None = None
    # a URL straight to PostgreSQL, for what needs a session: LISTEN and migrations (ZART_DIRECT_DATABASE_URL)
    direct_database_url: str | None = None
    # the deployed code's release (ZART_CODE_VERSION): a set of schedule declarations with a version not seen
    # before is applied even when it repeats an older one (a rollback); see zart.schedules.reconcile
    code_version: str | None = None
    extra: Mapping[str, str] = field(default_factory=dict)

    def with_database_url(self, url: str | None) -> Settings:
        """These settings on another database (`--database-url`). The direct URL (for LISTEN and migrations) must
        name the same database, or a migration would run on the other one."""
        if not url:
            return self
        chosen = with_schema(normalise_database_url(url), self.schema)
        check_same_database(chosen, self.direct_database_url)
        return replace(self, database_url=mark_pooled(chosen) if self.pooler else chosen)

    @property
    def session_url(self) -> str:
        """A URL whose connections keep their session (LISTEN, migrations): the direct one when set."""
        return self.direct_database_url or without_pooler_mark(self.database_url)

    @property
    def libpq_url(self) -> str:
        """The session URL as psycopg itself (LISTEN connections) wants it."""
        return self.session_url.replace("postgresql+psycopg://", "postgresql://", 1)


def merged_environment(environ: Mapping[str, str] | None, env_file: Path | None) -> dict[str, str]:
    path = env_file if env_file is not None else Path.cwd() / ".env"
    values: dict[str, str] = {}
    if path.is_file():
        values.update({k: v for k, v in dotenv_values(path).items() if v is not None})
    values.update(os.environ if environ is None else environ)
    return values


def load_settings(
    environ: Mapping[str, str] | None = None, env_file: Path | None = None, database_url: str | None = None
) -> Settings:
    """Build Settings; the process environment wins over `.env`, and `database_url` (`--database-url`) over
    DATABASE_URL."""
    env = merged_environment(environ, env_file)
    if database_url:
        env["DATABASE_URL"] = database_url

    def number(name: str, default: float) -> float:
        raw = env.get(name)
        return float(raw) if raw else default

    schema = check_schema(env.get("ZART_SCHEMA"))
    pooler = _pooler(env.get("ZART_POOLER"))
    direct = env.get("ZART_DIRECT_DATABASE_URL") or None
    database_url = with_schema(normalise_database_url(env.get("DATABASE_URL") or DEFAULT_DATABASE_URL), schema)
    if pooler is not None:
        if direct is None:
            raise ConfigurationError(
                "ZART_POOLER=transaction needs ZART_DIRECT_DATABASE_URL: a URL straight to PostgreSQL (not through "
                "the pooler), which zart uses for what needs a session (the completion LISTEN, migrations)"
            )
        if schema is not None:
            raise ConfigurationError(
                "ZART_SCHEMA cannot be sent through a transaction pooler; set the role's search_path instead "
                "(ALTER ROLE ... SET search_path = <schema>, public) and leave ZART_SCHEMA unset"
            )
        database_url = mark_pooled(database_url)
    direct_url = with_schema(normalise_database_url(direct), schema) if direct else None
    check_same_database(database_url, direct_url)
    return Settings(
        database_url=database_url,
        pooler=pooler,
        direct_database_url=direct_url,
        schema=schema,
        broker_url=env.get("ZART_BROKER_URL") or DEFAULT_BROKER_URL,
        imports=_split_list(env.get("ZART_IMPORTS")),
        lease_seconds=number("ZART_LEASE_SECONDS", 30.0),
        sweep_interval=number("ZART_SWEEP_INTERVAL", 1.0),
        redispatch_after=number("ZART_REDISPATCH_AFTER", 10.0),
        short_wait_hint=number("ZART_SHORT_WAIT_HINT", 120.0),
        max_recoveries=int(number("ZART_MAX_RECOVERIES", 5)),
        schedule_grace=number("ZART_SCHEDULE_GRACE", 60.0),
        queue=env.get("ZART_QUEUE") or "zart",
        dispatch_timeout=number("ZART_DISPATCH_TIMEOUT", 300.0),
        remote_hold=_non_negative("ZART_REMOTE_HOLD", number("ZART_REMOTE_HOLD", 2.0)),
        api_tokens=_split_list(env.get("ZART_API_TOKENS")),
        public_docs=(env.get("ZART_PUBLIC_DOCS") or "").strip().lower() in ("1", "true", "yes", "on"),
        allowed_hosts=_split_list(env.get("ZART_ALLOWED_HOSTS")) or None,
        api_database_timeout=_non_negative("ZART_API_DATABASE_TIMEOUT", number("ZART_API_DATABASE_TIMEOUT", 30.0)),
        cli_database_timeout=_non_negative("ZART_CLI_DATABASE_TIMEOUT", number("ZART_CLI_DATABASE_TIMEOUT", 30.0)),
        api_prefix=env.get("ZART_API_PREFIX") or "/api/v1",
        admin_prefix=env.get("ZART_ADMIN_PREFIX") or "/zart/admin/v1",
        ui_prefix=env.get("ZART_UI_PREFIX") or "/ui",
        max_body_bytes=int(number("ZART_MAX_BODY_BYTES", 1_048_576)),
        retention=parse_policy(env.get("ZART_RETENTION")),
        log_format=_log_format(env.get("ZART_LOG_FORMAT")),
        metrics_port=_port("ZART_METRICS_PORT", env.get("ZART_METRICS_PORT")),
        self_claim=(env.get("ZART_SELF_CLAIM") or "on").strip().lower() not in ("0", "false", "no", "off"),
        standby_seconds=number("ZART_STANDBY_SECONDS", 0.0),
        code_version=(env.get("ZART_CODE_VERSION") or "").strip() or None,
    )


def _non_negative(name: str, value: float) -> float:
    if value < 0:
        raise ConfigurationError(f"{name} must be zero or more seconds (got {value:g})")
    return value


def _log_format(value: str | None) -> str:
    chosen = (value or "text").strip().lower()
    if chosen not in ("text", "json"):
        raise ConfigurationError(f"ZART_LOG_FORMAT must be text or json (got {value!r})")
    return chosen


def _port(name: str, value: str | None) -> int | None:
    if not value:
        return None
    if not value.strip().isdigit() or not 1 <= int(value) <= 65535:
        raise ConfigurationError(f"{name} must be a port number, 1 to 65535 (got {value!r})")
    return int(value)
