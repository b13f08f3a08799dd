"""Vocabulary and limits shared by the store, the service, the CLI and the HTTP API (no heavy imports)."""

from __future__ import annotations

import re

EXECUTION_STATUSES = ("pending", "running", "waiting", "completed", "failed", "cancelled")
TERMINAL_STATUSES = ("completed", "failed", "cancelled")
ACTIVE_STATUSES = ("pending", "running", "waiting")

MAX_LIST_LIMIT = 500
NAME_MAX = 200
# The one rule for names (tasks, steps, events, keys, pause rules, limits, actors): no C0 control character.
# The service checks values against this very pattern and the HTTP document states it, so what a client's
# validator (or a generated test) accepts is what the server accepts. Always fullmatch: a `$`-anchored match
# would let a trailing newline through.
NAME_PATTERN = re.compile(r"^[^\x00-\x1f]*$")
NAME_RULE = f"1 to {NAME_MAX} characters, none a control character (U+0000 to U+001F)"
MAX_ID_LENGTH = 200  # execution ids, given or derived (a child's)
MAX_ACTIVE_PAUSE_RULES = 1000  # every step of an execution a rule may hold checks the rules that match it
DEFAULT_PAUSE_PAGE = 100

# a Celery queue name zart sends to: what every broker accepts
QUEUE_PATTERN = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._:@-]{0,199}$")
QUEUE_RULE = "1 to 200 characters: letters, digits and . _ : @ - (not first)"
# The built-in workflow a schedule with a Celery target fires (zart.celery.target): only a schedule
# may start it, since it dispatches whatever Celery task its input names.
SCHEDULES_ONLY_TASKS = ("zart.schedules.celery-task",)


def is_name(value: object, max_length: int = NAME_MAX) -> bool:
    """Whether `value` keeps the name rule (NAME_PATTERN, 1 to `max_length` characters)."""
    return isinstance(value, str) and 0 < len(value) <= max_length and NAME_PATTERN.fullmatch(value) is not None
