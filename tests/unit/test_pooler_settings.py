"""Settings for a transaction pooler, and the worker's connection budget: pure logic."""

from __future__ import annotations

from pathlib import Path

import pytest

from zart.config import is_pooled, load_settings, mark_pooled, without_pooler_mark
from zart.dispatch.budget import budget_for
from zart.errors import ConfigurationError

POOLER = "postgresql://u@bouncer:6432/app"
DIRECT = "postgresql://u@db:5432/app"


def settings(**env: str):
    return load_settings(environ=env, env_file=Path("/nonexistent"))


def test_a_pooler_without_a_direct_url_is_refused_saying_what_to_set():
    with pytest.raises(ConfigurationError, match="ZART_DIRECT_DATABASE_URL"):
        settings(DATABASE_URL=POOLER, ZART_POOLER="transaction")


def test_an_unknown_pooler_mode_is_refused():
    with pytest.raises(ConfigurationError, match="ZART_POOLER must be transaction"):
        settings(DATABASE_URL=POOLER, ZART_POOLER="session", ZART_DIRECT_DATABASE_URL=DIRECT)


def test_a_schema_cannot_go_through_a_pooler():
    with pytest.raises(ConfigurationError, match="search_path"):
        settings(DATABASE_URL=POOLER, ZART_POOLER="transaction", ZART_DIRECT_DATABASE_URL=DIRECT, ZART_SCHEMA="z")


def test_pooled_settings_mark_the_url_and_listen_on_the_direct_one():
    pooled = settings(DATABASE_URL=POOLER, ZART_POOLER="transaction", ZART_DIRECT_DATABASE_URL=DIRECT)
    assert is_pooled(pooled.database_url) and pooled.database_url.startswith("postgresql+psycopg://u@bouncer")
    assert pooled.libpq_url == DIRECT and pooled.session_url == "postgresql+psycopg://u@db:5432/app"
    assert is_pooled(pooled.with_database_url("postgresql://u@other:6432/app").database_url)
    plain = settings(DATABASE_URL=DIRECT)
    assert not is_pooled(plain.database_url) and plain.libpq_url == DIRECT


def test_the_pooler_mark_comes_off_and_keeps_other_parameters():
    url = "postgresql+psycopg://u@h/db?sslmode=require"
    assert without_pooler_mark(mark_pooled(url)) == url
    assert without_pooler_mark(mark_pooled("postgresql+psycopg://u@h/db")) == "postgresql+psycopg://u@h/db"
    assert mark_pooled(mark_pooled(url)) == mark_pooled(url)


def test_a_prefork_budget_counts_the_main_process_and_each_child():
    budget = budget_for(4, "prefork", pooled=False)
    assert (budget.processes, budget.at_rest, budget.at_most) == (5, 10, 20)
    assert "up to 10 kept open, at most 20 at once" in budget.line() and "straight to Postgres" in budget.line()


def test_a_thread_pool_budget_grows_with_its_concurrency_in_one_process():
    budget = budget_for(8, "threads", pooled=True)
    assert budget.processes == 1 and budget.at_most >= 8 * 3  # three at once for each of its eight runs
    assert "pooler" in budget.line()
    assert budget_for(8, "solo", pooled=False).at_most == 4
