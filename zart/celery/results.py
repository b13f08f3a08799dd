"""Recording what a fleet worker reports about a dispatched task: started, alive, retrying, succeeded, failed.

Every write is fenced on the dispatch token (the Celery task id) in the store, so a late, duplicated or
foreign report changes nothing. The caller rings the doorbell of the execution a result woke.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from zart.errors import UnstorableValue
from zart.failures import error_message, storable_text
from zart.schema import storage_problem
from zart.store import db
from zart.store import remote as remote_store


def error_of(exc: BaseException) -> dict[str, Any]:
    """The task's exception as a local step's is recorded: a message its own `__str__` cannot give is named as
    such (raising here, inside Celery's signal, would lose the outcome and have the task run again)."""
    return {"type": type(exc).__name__, "message": error_message(exc)}


def succeeded(database_url: str, token: str, result: Any, worker: str | None = None) -> str | None:
    """Checkpoint the task's return value as the step's result. Returns the execution to wake, if any.

    A value jsonb refuses (not JSON, NaN, U+0000, ...) fails the attempt clearly: written as is, the statement
    would fail, the result be lost and the task be run again as if its worker had gone silent."""
    problem = storage_problem(result)
    if problem is not None:
        unstorable = UnstorableValue(f"the task's return value cannot be stored: {problem}")
        return failed(database_url, token, error_of(unstorable), worker)
    with db.autocommit(database_url) as conn:
        return remote_store.record_success(conn, token, result, worker)


def failed(database_url: str, token: str, error: dict[str, Any], worker: str | None = None) -> str | None:
    """The task failed for good (its own retries, if any, are spent). Returns the execution to wake, if any."""
    with db.autocommit(database_url) as conn:
        return remote_store.record_failure(conn, token, _storable_error(error), worker)


def _storable_error(error: dict[str, Any]) -> dict[str, Any]:
    """An exception's message may hold what jsonb refuses (U+0000, a lone surrogate): escaped as a local step's
    error is, not lost."""
    return {key: storable_text(value) if isinstance(value, str) else value for key, value in error.items()}


def held(database_url: str, tokens: list[str], running: list[str], worker: str, silence: float) -> set[str]:
    """Report dispatches a worker holds (received or running) alive; returns those still in flight."""
    with db.autocommit(database_url) as conn:
        return remote_store.report_held(conn, tokens, running, worker, silence)


def connect(database_url: str) -> None:
    """Open this process's pooled connection now, so a first report does not wait for it."""
    with db.autocommit(database_url):
        pass


def retrying(database_url: str, token: str, eta: datetime | None) -> None:
    with db.autocommit(database_url) as conn:
        remote_store.mark_retrying(conn, token, eta)
