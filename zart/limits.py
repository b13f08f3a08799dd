"""Vocabulary and limits shared by the store, the service, the CLI and the HTTP API (no heavy imports)."""

from __future__ import annotations

import re
from datetime import UTC, datetime

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
# A date-time a caller gives (a schedule's bounds, a backfill window, a pause rule's expiry) lies between these:
# what is computed from it (ticks years on, a catch-up window back) stays inside what Python's datetime and
# PostgreSQL's timestamptz hold, so such a value is refused as invalid instead of failing in the arithmetic or
# the database.
EARLIEST_MOMENT = datetime(1970, 1, 1, tzinfo=UTC)
LATEST_MOMENT = datetime(9000, 1, 1, tzinfo=UTC)
MOMENT_RULE = "between 1970-01-01 and 9000-01-01 (UTC)"
MAX_ACTIVE_PAUSE_RULES = 1000  # every step of an execution a rule may hold checks the rules that match it
DEFAULT_PAUSE_PAGE = 100

# a Celery queue name zart sends to: what every broker accepts
QUEUE_PATTERN = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._:@-]{0,199}$")
# On Redis a queue is a list under its own name, beside the keys kombu keeps for unacknowledged messages and
# bindings and zart's own keys: a queue named like one of those would push onto it.
RESERVED_QUEUE_NAMES = frozenset({"unacked", "unacked_index", "unacked_mutex"})
RESERVED_QUEUE_PREFIXES = ("_kombu.", "zart:")
QUEUE_RULE = (
    "1 to 200 characters: letters, digits and . _ : @ - (not first), and not a key kombu or zart keeps in Redis "
    "(unacked, unacked_index, unacked_mutex, _kombu.*, zart:*)"
)
# The built-in workflow a schedule with a Celery target fires (zart.celery.target): only a schedule
# may start it, since it dispatches whatever Celery task its input names.
SCHEDULES_ONLY_TASKS = ("zart.schedules.celery-task",)
# Built-in workflows whose input names the Celery tasks they send (a canvas): over HTTP only an admin token
# may start one, as only an admin may create a schedule with a Celery target.
CALLER_NAMED_TASKS = ("zart.canvas",)
# Task names zart and Celery keep for their own tasks (result callbacks, doorbells, chord joins): a canvas or a
# schedule, whose task names are data, may not send one.
RESERVED_TASK_PREFIXES = ("zart.", "celery.")


def is_queue(value: object) -> bool:
    """Whether `value` is a queue name zart may send to (QUEUE_RULE)."""
    return (
        isinstance(value, str)
        and QUEUE_PATTERN.fullmatch(value) is not None
        and value not in RESERVED_QUEUE_NAMES
        and not value.startswith(RESERVED_QUEUE_PREFIXES)
    )


def is_reserved_task(name: str) -> bool:
    """Whether `name` is one of zart's or Celery's own task names, which data may not name."""
    return name.startswith(RESERVED_TASK_PREFIXES)


def is_name(value: object, max_length: int = NAME_MAX) -> bool:
    """Whether `value` keeps the name rule (NAME_PATTERN, 1 to `max_length` characters)."""
    return isinstance(value, str) and 0 < len(value) <= max_length and NAME_PATTERN.fullmatch(value) is not None


def in_moment_range(value: datetime) -> bool:
    """Whether an aware date-time lies in [EARLIEST_MOMENT, LATEST_MOMENT)."""
    return EARLIEST_MOMENT <= value < LATEST_MOMENT
