"""The service a command talks to, built from the command's settings."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from zart.cli.state import CliState

if TYPE_CHECKING:
    from zart.service import ZartService


def service_for(state: CliState) -> ZartService:
    """Task names are checked against the store's catalog: the CLI never imports workflow code.

    The library logs what it copes with (an unreachable broker, say); a command reports those itself in
    one line, so Python's last-resort log handler must not print them a second time.
    """
    from zart.service import ZartService  # imported on use: `--help` and `--version` stay quick

    logging.getLogger("zart").addHandler(logging.NullHandler())
    return ZartService(state.settings)
