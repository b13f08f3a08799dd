"""The service a command talks to, built from the command's settings."""

from __future__ import annotations

import logging

from zart.cli.state import CliState
from zart.service import ZartService


def service_for(state: CliState) -> ZartService:
    """Task names are checked against the store's catalog: the CLI never imports workflow code.

    The library logs what it copes with (an unreachable broker, say); a command reports those itself in
    one line, so Python's last-resort log handler must not print them a second time.
    """
    logging.getLogger("zart").addHandler(logging.NullHandler())
    return ZartService(state.settings)
