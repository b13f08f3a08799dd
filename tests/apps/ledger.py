"""A workflow whose database step debits a ledger table of the app's own, for the exactly-once tests.

Set LEDGER_APP_DATABASE_URL in a worker's environment to run the step on an application engine of that URL
(`zart.configure(app_engine=...)`), as an app with its own engine would.
"""

from __future__ import annotations

import os
import time

from sqlalchemy import Connection, create_engine, text

import zart
from tests.workflows import entries, journaled, note
from zart import RetryPolicy

LEDGER_DDL = (
    "CREATE TABLE IF NOT EXISTS ledger_entries (id bigserial PRIMARY KEY, execution_id text NOT NULL, "
    "amount integer NOT NULL)"
)

if os.environ.get("LEDGER_APP_DATABASE_URL"):
    zart.configure(app_engine=create_engine(os.environ["LEDGER_APP_DATABASE_URL"]))


def hold_first_time(journal: str, entry: str, release: str | None) -> None:
    """On the first run only, note that we are inside and wait (for a SIGKILL, or the release file)."""
    if release is None or entries(journal, entry) > 1:
        return
    note(journal, f"{entry}-holding")
    deadline = time.monotonic() + 60
    while not os.path.exists(release) and time.monotonic() < deadline:
        time.sleep(0.02)


def debit(conn: Connection, execution_id: str, amount: int, journal: str, hold: str | None) -> dict:
    note(journal, "debit")
    conn.execute(
        text("INSERT INTO ledger_entries (execution_id, amount) VALUES (:id, :amount)"),
        {"id": execution_id, "amount": -amount},
    )
    hold_first_time(journal, "debit", hold)  # the row is written, the transaction not yet committed
    return {"debited": amount}


def after(journal: str, hold: str | None) -> str:
    note(journal, "after")
    hold_first_time(journal, "after", hold)  # the debit has committed; this step has not
    return "done"


@zart.task("ledger.debit")
def debit_workflow(ctx: zart.Context, data: dict) -> dict:
    j = data["journal"]
    ctx.step("before", journaled, j, "before", True)
    result = ctx.transaction("debit", debit, ctx.execution_id, data["amount"], j, data.get("hold_in_body"))
    ctx.step("after", after, j, data.get("hold_after"))
    return result


def debit_once_failing(conn: Connection, execution_id: str, amount: int, journal: str) -> dict:
    """Writes its row, then fails on the first attempt (after the write, before the commit)."""
    note(journal, "debit")
    conn.execute(
        text("INSERT INTO ledger_entries (execution_id, amount) VALUES (:id, :amount)"),
        {"id": execution_id, "amount": -amount},
    )
    if entries(journal, "debit") == 1:
        raise ConnectionError("the bank timed out")
    return {"debited": amount}


@zart.task("ledger.flaky-debit")
def flaky_debit_workflow(ctx: zart.Context, data: dict) -> dict:
    return ctx.transaction(
        "debit",
        debit_once_failing,
        ctx.execution_id,
        data["amount"],
        data["journal"],
        retry=RetryPolicy.fixed(max_retries=2, delay=30),
    )
