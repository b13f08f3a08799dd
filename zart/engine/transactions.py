"""Database steps: the body's writes and the step's checkpoint commit in one transaction, or not at all.

`ctx.transaction(name, fn, *args)` runs `fn(conn, *args)` on a connection to zart's own database (the app's
engine when `zart.configure(app_engine=...)` set one, checked to reach the same database) and writes the
checkpoint, fenced on the run's lease, before the commit. A crash before the commit rolls everything back and
the body runs again; after it, the checkpoint is there and the body never runs again. A lost lease or a
checkpoint some other owner wrote first rolls the body's writes back too.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection

from zart import appconfig
from zart.engine.storable import as_replayed, ensure_storable
from zart.errors import LeaseLost
from zart.store import db, identity, steps

if TYPE_CHECKING:
    from zart.engine.run import ClaimedRun


@dataclass(frozen=True)
class Committed:
    """What a transaction body returns to the step machinery: its output, already checkpointed."""

    output: Any


class _WrittenByAnother(Exception):
    """Roll back: the step's checkpoint was already written (by an owner that ran it first)."""


class TransactionBody:
    """Called like a step body; opens the transaction, runs `fn(conn, ...)`, writes the checkpoint, commits."""

    def __init__(self, ctx: ClaimedRun, fn: Callable[..., Any]) -> None:
        self._ctx = ctx
        self._fn = fn

    def __call__(self, *args: Any, **kwargs: Any) -> Committed:
        ctx = self._ctx
        attempt = ctx._keeper.current
        assert attempt is not None, "a transaction body runs inside a step attempt"
        try:
            with _connection(ctx._url) as conn, conn.begin():
                output = self._fn(conn, *args, **kwargs)
                ensure_storable(output, "a transaction step's result")
                with db.zart_names(conn, ctx._url):
                    written = self._write_checkpoint(conn, attempt, output)
                if not written.fenced:
                    raise LeaseLost()
                if not written.written:
                    raise _WrittenByAnother()
        except _WrittenByAnother:
            return Committed(ctx._reload(attempt.name)["output"])
        ctx._note_pausing(written.pausing)
        return Committed(as_replayed(output))

    def _write_checkpoint(self, conn: Any, attempt: Any, output: Any) -> steps.Checkpoint:
        ctx = self._ctx
        return steps.checkpoint_completed(
            conn,
            execution_id=ctx.execution_id,
            token=ctx._token,
            lease=ctx._lease,
            run_index=ctx.run_index,
            name=attempt.name,
            position=attempt.position,
            kind=attempt.kind,
            output=output,
            attempt=attempt.attempt,
            failures=attempt.failures,
            exec_attempt=ctx.attempt,
            started_at=attempt.started_at,
            record_attempt=attempt.attempt > 1 or attempt.failures > 0 or attempt.marked,
            prepared=False,
        )


def _connection(database_url: str) -> Connection:
    """A new connection from the configured application engine or factory (checked to reach zart's
    database), else from zart's own engine. The caller closes it."""
    source = appconfig.app_engine()
    if source is None:
        return db.get_engine(database_url).connect()
    if isinstance(source, Connection):
        identity.check_same_database(source.engine, database_url)
        return source
    identity.check_same_database(source, database_url)
    return source.connect()
