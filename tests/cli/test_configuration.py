"""Where the CLI finds its database: `--database-url`, then DATABASE_URL, then `.env` in the working directory.

Each case gives the right URL to exactly one source and an unreachable one to the others, so success proves
which source won.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from tests.cli.cli import Cli, Result
from tests.harness import fresh_database
from zart.localservices import free_port


@pytest.fixture()
def right(env) -> str:
    """The session database in the `postgres://` spelling that Heroku-style platforms hand out."""
    return "postgres://" + env.database_url.split("://", 1)[1]


@pytest.fixture()
def wrong() -> str:
    return f"postgresql://postgres@127.0.0.1:{free_port()}/zart"


def write_dotenv(directory: Path, url: str) -> None:
    (directory / ".env").write_text(f"# local settings\nDATABASE_URL={url}\n")


def reached_database(result: Result) -> bool:
    if result.returncode == 0:
        return "executions" in result.json()
    assert result.returncode == 1, result.stderr
    assert result.stderr.startswith("Error: database unavailable"), result.stderr
    assert result.stderr.count("\n") == 1
    return False


def listing(zart: Cli, *flags: str, **kwargs) -> Result:
    return zart("list", "--limit", "1", "--json", *flags, **kwargs)


def test_a_dotenv_file_in_the_working_directory_is_read(zart, right, wrong):
    write_dotenv(zart.cwd, right)
    assert reached_database(listing(zart, drop=("DATABASE_URL",)))
    write_dotenv(zart.cwd, wrong)
    assert not reached_database(listing(zart, drop=("DATABASE_URL",)))


def test_the_environment_wins_over_dotenv(zart, right, wrong):
    write_dotenv(zart.cwd, wrong)
    assert reached_database(listing(zart, DATABASE_URL=right))
    write_dotenv(zart.cwd, right)
    assert not reached_database(listing(zart, DATABASE_URL=wrong))


@pytest.mark.parametrize("position", ["before", "after"])
def test_the_flag_wins_over_the_environment_and_dotenv(zart, right, wrong, position):
    def run(flag_url: str, env_url: str) -> Result:
        flag = ("--database-url", flag_url)
        if position == "before":
            return zart(*flag, "list", "--limit", "1", "--json", DATABASE_URL=env_url)
        return listing(zart, *flag, DATABASE_URL=env_url)

    write_dotenv(zart.cwd, wrong)
    assert reached_database(run(right, wrong))
    write_dotenv(zart.cwd, right)
    assert not reached_database(run(wrong, right))


@pytest.mark.parametrize("scheme", ["postgres://", "postgresql://", "postgresql+psycopg://"])
def test_every_postgres_url_scheme_works(zart, right, scheme):
    url = scheme + right.split("://", 1)[1]
    assert reached_database(listing(zart, "--database-url", url))
    assert reached_database(listing(zart, DATABASE_URL=url))


def one_line_error(result: Result) -> str:
    assert result.returncode == 1, (result.returncode, result.stderr)
    assert result.stdout == "" and "Traceback" not in result.stderr, result.stderr
    assert result.stderr.startswith("Error: ") and result.stderr.count("\n") == 1, result.stderr
    return result.stderr


@pytest.mark.parametrize("url", ["not a url", "mysql://user:secret@db/app", "sqlite:///zart.db"])
def test_a_database_url_that_is_not_postgres_is_refused_in_one_line(zart, url):
    for args in (("status", "exec-1"), ("migrate",), ("list",)):
        message = one_line_error(zart("--database-url", url, *args))
        assert "PostgreSQL" in message and "secret" not in message


def test_an_unreachable_database_during_migrate_is_one_line(zart, wrong):
    assert one_line_error(zart("--database-url", wrong, "migrate")).startswith("Error: database unavailable")


@pytest.fixture()
def silent_port() -> Iterator[int]:
    """A port that accepts connections and never answers (a frozen server, or another service's port)."""
    listener = socket.create_server(("127.0.0.1", 0))
    yield listener.getsockname()[1]
    listener.close()


def test_a_database_that_never_answers_during_migrate_is_one_line_not_a_hang(zart, silent_port):
    """Migrations opened their connections without the timeout every other command has, and waited forever."""
    url = f"postgresql://postgres@127.0.0.1:{silent_port}/zart"
    assert one_line_error(zart("--database-url", url, "migrate", timeout=45)).startswith("Error: database unavailable")


def test_a_database_without_the_schema_says_to_migrate(zart, env, unique):
    import psycopg

    name = unique("empty").replace("-", "_")
    with psycopg.connect(env.settings().libpq_url, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    empty = env.database_url.rsplit("/", 1)[0] + "/" + name
    for args in (("status", "exec-1"), ("list",), ("schedule", "t.three-steps")):
        assert "zart migrate" in one_line_error(zart("--database-url", empty, *args)), args
    assert zart("--database-url", empty, "migrate").returncode == 0
    assert zart("--database-url", empty, "status", "exec-1").returncode == 3


def test_migrate_speaks_json_and_a_fresh_database_gets_every_revision(zart, postgres):
    url = fresh_database(postgres.port, "zart_cli_migrate")
    first = zart("--json", "--database-url", url, "migrate")
    assert first.returncode == 0, first.stderr
    assert first.json()["applied"] > 0
    again = zart("migrate", "--json", "--database-url", url)
    assert again.returncode == 0 and again.json() == {"applied": 0}
    assert zart("migrate", "--database-url", url).stdout.strip() == "Schema is up to date."


def test_a_database_url_and_a_direct_url_naming_different_databases_are_refused(zart, env, postgres):
    """The direct URL is where migrations run: `--database-url` naming another database would have migrated the
    wrong one, and every later command found no schema."""
    url = fresh_database(postgres.port, "zart_cli_other")
    refused = zart("--database-url", url, "migrate", ZART_DIRECT_DATABASE_URL=env.database_url)
    assert refused.returncode == 1
    assert "ZART_DIRECT_DATABASE_URL" in refused.stderr and "zart_cli_other" in refused.stderr
    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as conn:
        assert conn.execute("SELECT to_regclass('executions')").fetchone() == (None,)  # nothing migrated there
    same = zart("--database-url", env.database_url, "list", ZART_DIRECT_DATABASE_URL=env.database_url)
    assert same.returncode == 0, same.stderr


def test_a_database_url_in_the_environment_and_a_direct_url_naming_different_databases_are_refused(zart, env, postgres):
    """Without `--database-url` too: DATABASE_URL on one database and ZART_DIRECT_DATABASE_URL on another had
    `zart migrate` migrate the direct one ("up to date") while every other command found no schema on the first."""
    url = fresh_database(postgres.port, "zart_cli_other_env")
    refused = zart("migrate", DATABASE_URL=url, ZART_DIRECT_DATABASE_URL=env.database_url)
    assert refused.returncode == 1, refused.stdout
    assert "ZART_DIRECT_DATABASE_URL" in refused.stderr and "zart_cli_other_env" in refused.stderr
    assert refused.stderr.count("\n") == 1, refused.stderr
    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as conn:
        assert conn.execute("SELECT to_regclass('executions')").fetchone() == (None,)


def test_a_worker_with_a_bad_configuration_says_so_once_and_exits(zart):
    """The supervisor started a worker child that failed on the configuration, then another every second, forever."""
    refused = zart("worker", ZART_POOLER="transaction", ZART_DIRECT_DATABASE_URL="", timeout=30)
    assert one_line_error(refused).startswith("Error: ZART_POOLER=transaction needs ZART_DIRECT_DATABASE_URL")


def test_a_worker_whose_workflow_module_cannot_be_imported_says_so_once_and_exits(zart):
    """A typo in ZART_IMPORTS failed every child the supervisor started, one a second, forever."""
    refused = zart("worker", ZART_IMPORTS="no_such_workflows_module", timeout=60)
    assert refused.returncode == 1, refused.stderr[-2000:]
    assert refused.stderr.count("No module named 'no_such_workflows_module'") == 1, refused.stderr[-2000:]
