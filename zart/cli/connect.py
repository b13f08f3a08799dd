"""The service a command talks to, built from the command's settings."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import click

from zart.cli.state import CliState

if TYPE_CHECKING:
    from zart.service import ZartService


def service_for(state: CliState) -> ZartService:
    """Task names are checked against the store's catalog: the CLI never imports workflow code.

    The library logs what it copes with (an unreachable broker, say); a command reports those itself in
    one line, so Python's last-resort log handler must not print them a second time.

    A database that stops answering without closing its connections (a stopped server, a partition) would hold
    the command forever (psycopg has no read timeout), so for the rest of the command each database connection it
    holds is cut after ZART_CLI_DATABASE_TIMEOUT seconds (zart.store.deadline): the command then fails with one
    line and exit 1. Only connections are bounded, not the command: `zart wait` sleeps and listens unbounded.
    """
    from zart.service import ZartService  # imported on use: `--help` and `--version` stay quick
    from zart.store import deadline

    logging.getLogger("zart").addHandler(logging.NullHandler())
    settings = state.settings
    if settings.cli_database_timeout > 0:
        token = deadline.enter(settings.cli_database_timeout)
        click.get_current_context().call_on_close(lambda: deadline.leave(token))
    return ZartService(settings)
